"""The model picker in a real browser (issue 9, bug 16 and "a real model picker"): a searchable
combobox operated from the keyboard, each model told apart by its credential with its context
window and price, favourites first, a default per user and per team, the model last used, and
the team/credential rules (a team chat runs on the team's keys; a team default is its admins')."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from chats import services
from chats.models import Conversation
from providers.models import DefaultModel, ModelPreference, ProviderModel

NARROW = {"width": 390, "height": 844}
WIDE = {"width": 1280, "height": 800}


@pytest.fixture
def keys(alice, team, make_credential):
    """alice's two OpenAI keys that both list gpt-4o (Home also gpt-4o-mini), and Acme's key."""
    work = make_credential(alice, "openai", name="Work")
    home = make_credential(alice, "openai", name="Home")
    acme = make_credential(team, "openai", name="Acme OpenAI")
    for credential, model in (
        (work, "gpt-4o"),
        (home, "gpt-4o"),
        (home, "gpt-4o-mini"),
        (acme, "gpt-4o-mini"),
    ):
        ProviderModel.objects.create(credential=credential, model_id=model, kind="chat")
    return work, home, acme


@pytest.fixture
def shots(screenshot):
    """Both widths, light and dark, of the viewport as it is (an open list stays open)."""

    def take(page, name: str) -> None:
        size = page.viewport_size
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            for label, viewport in (("1280", WIDE), ("390", NARROW)):
                page.set_viewport_size(viewport)
                page.wait_for_timeout(50)  # one layout and paint
                screenshot(page, f"{name}-{label}-{scheme}", full_page=False)
        page.emulate_media(color_scheme="light")
        page.set_viewport_size(size)

    return take


def options_text(page) -> list[str]:
    return page.get_by_role("listbox").get_by_role("option").all_inner_texts()


def test_the_picker_is_searched_and_operated_from_the_keyboard_with_favourites_and_a_default(
    page, login, shots, alice, team, keys
):
    work, _, acme = keys
    login(page, alice)
    page.goto("/chat/")
    expect(page.locator("#new-model")).to_be_hidden()  # the combobox took over from the select
    box = page.get_by_role("combobox", name="Model")
    # Nothing used yet: the first of alice's own models (by credential name), named once.
    expect(box).to_have_value("echo — Echo (local)")

    box.focus()
    page.keyboard.press("ArrowDown")
    listbox = page.get_by_role("listbox")
    expect(listbox).to_be_visible()
    expect(box).to_have_attribute("aria-expanded", "true")
    texts = options_text(page)
    assert len(texts) == 4, texts  # echo, 2 × gpt-4o, gpt-4o-mini; never Acme's in a personal chat
    assert not any("Acme" in text for text in texts)
    assert sum(text.startswith("gpt-4o\n") for text in texts) == 2
    shots(page, "picker-open")

    page.keyboard.type("4o work")
    expect(listbox.get_by_role("option")).to_have_count(1)
    expect(listbox.get_by_role("option")).to_contain_text(
        re.compile(r"Work · OpenAI · 128k context · \$\d+\.\d\d in / \$\d+\.\d\d out per 1M tokens")
    )
    expect(page.get_by_role("status").filter(has_text="1 of 4 models")).to_be_visible()
    page.keyboard.type(" nothing")
    expect(listbox.get_by_role("option")).to_have_count(0)
    expect(page.get_by_text("No model matches “4o work nothing”.")).to_be_visible()
    for _ in " nothing":
        page.keyboard.press("Backspace")
    active = box.get_attribute("aria-activedescendant")
    expect(page.locator(f"#{active}")).to_contain_text("Work · OpenAI")
    page.keyboard.press("Enter")  # chooses; doesn't send the form
    expect(listbox).to_be_hidden()
    expect(box).to_have_value("gpt-4o — Work · OpenAI")
    assert page.locator("#new-model").input_value() == f"{work.pk}|gpt-4o"
    assert not Conversation.objects.exists()

    # Esc closes the list and leaves the choice alone.
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Escape")
    expect(listbox).to_be_hidden()
    expect(box).to_have_value("gpt-4o — Work · OpenAI")

    # Star it and make it the default of alice's personal chats.
    star = page.get_by_role("button", name="Favourite")
    with page.expect_response(re.compile(r"/models/favourite/$")):
        star.click()
    expect(star).to_have_attribute("aria-pressed", "true")
    default = page.get_by_role("button", name="Default")
    with page.expect_response(re.compile(r"/models/default/$")):
        default.click()
    expect(default).to_have_attribute("aria-pressed", "true")
    assert ModelPreference.objects.get(user=alice, credential=work).favourite
    row = DefaultModel.objects.get(owner_user=alice)
    assert (row.credential, row.model) == (work, "gpt-4o")

    # Elsewhere (a pick that isn't saved), then a fresh page starts on the default again, with the
    # favourite listed first.
    box.click()
    page.keyboard.type("mini")
    page.keyboard.press("Enter")
    page.reload()
    expect(box).to_have_value("gpt-4o — Work · OpenAI")
    box.click()
    expect(listbox.get_by_role("group").first).to_have_accessible_name("★ Favourites")
    expect(listbox.get_by_role("group").first.get_by_role("option")).to_have_count(1)
    assert options_text(page)[0].startswith("★ gpt-4o default\n")
    page.keyboard.press("Escape")

    # A team chat: only Acme's models, and alice (owner) may set the team's default.
    page.get_by_test_id("visibility").get_by_role("radio", name=re.compile("Acme")).check()
    expect(box).to_have_value("gpt-4o-mini — Acme OpenAI")
    box.click()
    assert all("Acme OpenAI" in text or "Echo" in text for text in options_text(page))
    page.keyboard.press("Escape")
    expect(default).to_be_visible()
    shots(page, "picker-team")
    page.fill("#new-content", "Plan the offsite")
    page.locator("#new-content").press("Enter")
    page.wait_for_url(re.compile(r"/chat/\d+/$"))
    conversation = Conversation.objects.get()
    assert (conversation.owner_team, conversation.credential) == (team, acme)
    expect(page.locator("#messages article.msg.role-assistant")).to_have_attribute(
        "data-status", "complete"
    )


def test_changing_the_model_of_a_conversation_updates_the_placeholder_and_is_remembered(
    page, login, shots, alice, keys
):
    work, home, _ = keys
    conversation = services.conversation_start(
        actor=alice, credential=work, model="gpt-4o", title="Plans"
    )
    login(page, alice)
    page.goto(f"/chat/{conversation.pk}/")
    expect(page.locator("#connection")).to_have_text("Live")
    box = page.get_by_role("combobox", name="Model")
    expect(box).to_have_value("gpt-4o — Work · OpenAI")
    expect(page.locator("#composer-input")).to_have_attribute("placeholder", "Message gpt-4o…")
    expect(page.locator(f"#{box.get_attribute('aria-describedby')}")).to_contain_text(
        "128k context"
    )

    box.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.type("mini")
    with page.expect_response(lambda r: r.url.endswith(f"/chat/{conversation.pk}/settings/")):
        page.keyboard.press("Enter")
    expect(box).to_have_value("gpt-4o-mini — Home · OpenAI")
    # Bug 16: the placeholder follows the model (it used to keep the old one).
    expect(page.locator("#composer-input")).to_have_attribute("placeholder", "Message gpt-4o-mini…")
    conversation.refresh_from_db()
    assert (conversation.credential, conversation.model) == (home, "gpt-4o-mini")
    last = ModelPreference.objects.filter(user=alice).order_by("-last_used_at").first()
    assert (last.credential, last.model) == (home, "gpt-4o-mini")
    shots(page, "picker-conversation")

    # Esc in the picker closes its list only (it stops no reply and leaves the page as it is).
    box.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Escape")
    expect(page.get_by_role("listbox")).to_be_hidden()
    expect(box).to_be_focused()


def test_a_member_sees_the_teams_default_and_cannot_change_it(
    page, login, alice, team, bob_teammate, keys
):
    _, _, acme = keys
    from providers import services as provider_services

    provider_services.model_default_set(user=alice, credential=acme, model="gpt-4o-mini", team=team)
    login(page, bob_teammate)
    page.goto("/chat/")
    page.get_by_test_id("visibility").get_by_role("radio", name=re.compile("Acme")).check()
    box = page.get_by_role("combobox", name="Model")
    expect(box).to_have_value("gpt-4o-mini — Acme OpenAI")
    expect(page.get_by_role("button", name="Favourite")).to_be_visible()
    expect(page.get_by_role("button", name="Default")).to_be_hidden()
    box.click()
    expect(page.get_by_role("option", name=re.compile("gpt-4o-mini default"))).to_be_visible()
    assert not any("Work" in text or "Home" in text for text in options_text(page))
