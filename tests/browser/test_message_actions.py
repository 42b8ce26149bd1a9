"""Message actions and the keyboard in a real browser (issue 9): thumbs up/down with a note on a
reply (per user), "Copy code" for a reply's last code block, the global shortcuts and the `?`
sheet (a modal dialog: focus stays inside, Esc closes it, `?` doesn't fire while typing)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from chats import services
from chats.models import Message
from providers.models import ProviderModel, Rating

NARROW = {"width": 390, "height": 844}
WIDE = {"width": 1280, "height": 800}
MOD = "Control"  # Chromium on Linux

REPLY = "Two ways:\n\n```python\nprint('first')\n```\n\nor\n\n```sh\necho second\n```\n"


@pytest.fixture
def shots(screenshot):
    def take(page, name: str) -> None:
        size = page.viewport_size
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            for label, viewport in (("1280", WIDE), ("390", NARROW)):
                page.set_viewport_size(viewport)
                page.wait_for_timeout(50)
                screenshot(page, f"{name}-{label}-{scheme}", full_page=False)
        page.emulate_media(color_scheme="light")
        page.set_viewport_size(size)

    return take


@pytest.fixture
def answered(alice, team, make_credential):
    """A team chat with one finished reply holding two code blocks."""
    acme = make_credential(team, "openai", name="Acme OpenAI")
    ProviderModel.objects.create(credential=acme, model_id="gpt-4o-mini", kind="chat")
    conversation = services.conversation_start(
        actor=alice, owner_team=team, credential=acme, model="gpt-4o-mini", title="Code"
    )
    question = Message.objects.create(
        conversation=conversation, role="user", content="How do I print?", author=alice
    )
    reply = Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        content=REPLY,
        model="gpt-4o-mini",
        preset="openai",
        credential=acme,
    )
    return conversation, reply


def open_chat(page, conversation):
    page.goto(f"/chat/{conversation.pk}/")
    expect(page.locator("#connection")).to_have_text("Live")


def clipboard(page) -> str:
    return page.evaluate("navigator.clipboard.readText()")


def test_thumbs_and_a_note_are_mine_and_copy_code_takes_the_last_block(
    browser, live_server_url, transactional_db, login, shots, alice, bob_teammate, answered
):
    conversation, reply = answered
    context = browser.new_context(base_url=live_server_url, viewport=WIDE)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server_url)
    page = context.new_page()
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    login(page, alice)
    open_chat(page, conversation)
    article = page.locator(f"#message-{reply.pk}")

    article.get_by_role("button", name="Copy last code").click()
    expect(article.get_by_role("button", name="Copied")).to_be_visible()
    assert clipboard(page) == "echo second"

    good = article.get_by_role("button", name="Good reply")
    bad = article.get_by_role("button", name="Bad reply")
    expect(good).to_have_attribute("aria-pressed", "false")
    bad.click()
    bad = article.get_by_role("button", name="Bad reply")  # the fragment was swapped
    expect(bad).to_have_attribute("aria-pressed", "true")
    note = article.get_by_label("Note on this reply (optional, only you see it)")
    expect(note).to_be_visible()  # offered at once
    note.fill("Used the wrong shell")
    note.press("Enter")
    expect(article.get_by_text("Your note")).to_be_visible()
    rating = Rating.objects.get(user=alice, message=reply)
    assert (rating.value, rating.note, rating.model) == (-1, "Used the wrong shell", "gpt-4o-mini")
    shots(page, "chat-rating")

    # bob, in the same team chat, sees none of it and rates for himself.
    with browser.new_context(base_url=live_server_url) as other:
        bob_page = other.new_page()
        login(bob_page, bob_teammate)
        open_chat(bob_page, conversation)
        bob_article = bob_page.locator(f"#message-{reply.pk}")
        expect(bob_article.get_by_role("button", name="Bad reply")).to_have_attribute(
            "aria-pressed", "false"
        )
        assert "Used the wrong shell" not in bob_page.content()
        bob_article.get_by_role("button", name="Good reply").click()
        expect(bob_article.get_by_role("button", name="Good reply")).to_have_attribute(
            "aria-pressed", "true"
        )

    # A reload keeps alice's rating; pressing it again takes it back.
    page.reload()
    bad = article.get_by_role("button", name="Bad reply")
    expect(bad).to_have_attribute("aria-pressed", "true")
    bad.click()
    expect(article.get_by_role("button", name="Bad reply")).to_have_attribute(
        "aria-pressed", "false"
    )
    assert list(Rating.objects.values_list("user__username", "value")) == [("bob_teammate", 1)]
    assert not errors, errors
    context.close()


def test_a_reply_that_arrives_over_the_socket_can_be_rated_at_once(page, login, alice, team):
    login(page, alice)
    page.goto("/chat/")
    page.fill("#new-content", "Rate me")
    page.locator("#new-content").press("Enter")
    page.wait_for_url(re.compile(r"/chat/\d+/$"))
    reply = page.locator("#messages article.msg.role-assistant")
    expect(reply).to_have_attribute("data-status", "complete")
    reply.get_by_role("button", name="Good reply").click()
    expect(reply.get_by_role("button", name="Good reply")).to_have_attribute("aria-pressed", "true")
    assert Rating.objects.get(user=alice).value == 1


def test_the_shortcuts_work_and_the_help_sheet_is_a_trapped_dialog(
    browser, live_server_url, transactional_db, login, shots, alice, answered, fake_provider
):
    conversation, _ = answered
    context = browser.new_context(base_url=live_server_url, viewport=WIDE)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server_url)
    page = context.new_page()
    login(page, alice)
    open_chat(page, conversation)
    composer = page.locator("#composer-input")

    # `?` while typing is a question mark, not the sheet.
    composer.click()
    page.keyboard.type("Why?")
    expect(composer).to_have_value("Why?")
    help_sheet = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(help_sheet).to_be_hidden()

    # Outside a text field it opens the sheet: modal, focus inside, Tab stays in, Esc closes and
    # gives the focus back.
    page.locator("h1, .chat-title").first.click()
    page.keyboard.press("?")
    expect(help_sheet).to_be_visible()
    expect(help_sheet).to_contain_text("Copy the last reply's last code block")
    for key in ("Tab", "Tab", "Tab", "Shift+Tab", "Shift+Tab"):
        page.keyboard.press(key)
        assert page.evaluate(
            "document.getElementById('shortcuts-help').contains(document.activeElement)"
        )
    shots(page, "shortcuts-help")
    page.keyboard.press("Escape")
    expect(help_sheet).to_be_hidden()
    page.keyboard.press(f"{MOD}+/")
    expect(help_sheet).to_be_visible()
    help_sheet.get_by_role("button", name="Close").click()
    expect(help_sheet).to_be_hidden()

    # Shift+Esc focuses the message box from anywhere; the Mod shortcuts work while typing.
    page.locator("body").click()
    page.keyboard.press("Shift+Escape")
    expect(composer).to_be_focused()
    page.keyboard.press(f"{MOD}+Shift+C")
    page.wait_for_function(
        "async () => (await navigator.clipboard.readText()).startsWith('Two ways')"
    )
    assert clipboard(page) == REPLY
    page.keyboard.press(f"{MOD}+Shift+;")
    page.wait_for_function("async () => (await navigator.clipboard.readText()) === 'echo second'")

    # Ctrl+K: search; Ctrl+Shift+S hides and shows the conversation list.
    page.keyboard.press(f"{MOD}+k")
    expect(page.locator("#chat-search")).to_be_focused()
    page.keyboard.press(f"{MOD}+Shift+S")
    expect(page.locator(".chat-list")).to_be_hidden()
    page.reload()
    expect(page.locator(".chat-list")).to_be_hidden()  # remembered
    page.keyboard.press(f"{MOD}+Shift+S")
    expect(page.locator(".chat-list")).to_be_visible()

    # Regenerate the last reply, stop it with Esc.
    fake_provider.configure(tokens_per_second=20, reply_tokens=200)
    expect(page.locator("#connection")).to_have_text("Live")
    page.locator("body").click()
    page.keyboard.press(f"{MOD}+Shift+G")
    streaming = page.locator("#messages article.msg.role-assistant[data-status=streaming]")
    expect(streaming).to_have_count(1)
    page.keyboard.press("Escape")
    expect(page.locator("#messages article.msg.role-assistant")).to_have_attribute(
        "data-status", "stopped"
    )
    assert Message.objects.filter(conversation=conversation, role="assistant").count() == 2

    # Ctrl+Shift+O: a new chat.
    page.keyboard.press(f"{MOD}+Shift+O")
    page.wait_for_url(re.compile(r"/chat/$"))
    context.close()
