"""Everyday chat in a real browser (issue 9, the bugs of the engineer on `chat-everyday`): a new
chat created by its first message with its audience on show, the phone layout, the models table
after a connection test, settings saved without CSP errors, flash messages that float, centred
auth cards."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from chats.models import Conversation, Message
from providers.models import ProviderCredential

PHONE = {"width": 390, "height": 844}


def test_a_new_chat_is_made_by_its_first_message_and_says_who_can_see_it(
    page, login, screenshot, alice, team, bob_teammate
):
    login(page, alice)
    page.goto("/chat/")
    # The current team is Personal: that is the preselected audience, spelled out.
    visibility = page.get_by_test_id("visibility")
    expect(visibility.get_by_role("radio", name=re.compile("Personal"))).to_be_checked()
    expect(visibility).to_contain_text("Team “Acme” — visible to 2 members")
    expect(page.locator("#new-content")).to_be_focused()
    screenshot(page, "chat-new-1280")

    # Clicking "New chat" again and again leaves nothing behind.
    page.get_by_test_id("new-chat").click()
    page.get_by_test_id("new-chat").click()
    assert not Conversation.objects.exists()

    visibility.get_by_role("radio", name=re.compile("Acme")).check()
    page.fill("#new-content", "Plan the offsite")
    page.locator("#new-content").press("Enter")
    page.wait_for_url(re.compile(r"/chat/\d+/$"))

    conversation = Conversation.objects.get()
    assert conversation.owner_team == team
    expect(page.get_by_test_id("audience")).to_have_text(
        re.compile("Team chat — visible to 2 members of “Acme”")
    )
    reply = page.locator("#messages article.msg.role-assistant")
    expect(reply).to_have_attribute("data-status", "complete")
    expect(reply.locator(".content")).to_contain_text("Plan the offsite")  # Echo
    # Not a live region (it read out every 40 ms frame); the announcer says when a reply ends.
    assert page.locator("#messages").get_attribute("aria-live") is None
    page.fill("#composer-input", "And the agenda?")
    page.get_by_test_id("send").click()
    expect(page.locator("#chat-announcer")).to_have_text("Reply finished.")
    expect(page.locator(".conversations li")).to_have_count(1)
    screenshot(page, "chat-team-header-1280")
    assert Message.objects.filter(conversation=conversation).count() == 4


def test_the_phone_layout_has_a_labelled_menu_and_a_conversation_drawer(
    browser, live_server_url, login, screenshot, alice, transactional_db
):
    context = browser.new_context(base_url=live_server_url, viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        login(page, alice)
        main_nav = page.get_by_role("navigation", name="Main navigation")
        expect(main_nav).to_be_hidden()
        menu = page.get_by_role("button", name="Menu")
        expect(menu).to_have_attribute("aria-expanded", "false")
        screenshot(page, "home-390")

        menu.click()
        expect(menu).to_have_attribute("aria-expanded", "true")
        for label in ("Chat", "Playground", "Usage"):
            expect(main_nav.get_by_role("link", name=label)).to_be_visible()
        last = page.get_by_role("navigation", name="Settings and tools").get_by_role(
            "link", name="API"
        )
        last.scroll_into_view_if_needed()
        expect(last).to_be_in_viewport()
        screenshot(page, "menu-open-390")

        main_nav.get_by_role("link", name="Chat").click()
        expect(page.get_by_role("heading", name="New chat")).to_be_visible()
        expect(page.locator("#conversation-drawer")).to_be_hidden()
        screenshot(page, "chat-new-390")
        box = page.locator("#new-content").bounding_box()
        assert box["width"] > 300  # the composer gets the width, not the list

        page.fill("#new-content", "From my phone")
        page.get_by_test_id("new-chat-send").click()
        page.wait_for_url(re.compile(r"/chat/\d+/$"))
        expect(page.locator("#messages article.msg.role-assistant")).to_have_attribute(
            "data-status", "complete"
        )
        screenshot(page, "chat-conversation-390")

        toggle = page.locator(".chat > .list-toggle")
        toggle.click()
        drawer = page.locator("#conversation-drawer")
        expect(drawer).to_be_visible()
        expect(drawer.locator(".conversations li")).to_have_count(1)
        expect(toggle).to_have_attribute("aria-expanded", "true")
        screenshot(page, "chat-drawer-390")
        page.keyboard.press("Escape")
        expect(drawer).to_be_hidden()
        # Every control is at least 24 px square (WCAG 2.2 target size).
        small = page.evaluate(
            """() => [...document.querySelectorAll('button, a, summary, input, select')]
              .filter(el => el.offsetParent !== null)
              .map(el => [el.getBoundingClientRect(), el])
              .filter(([r]) => r.width > 0 && (r.height < 24 || r.width < 24))
              .filter(([, el]) => !el.closest('p, li, dd, td, .help'))
              .map(([r, el]) => el.outerHTML.slice(0, 80))"""
        )
        assert not small, small
        # Pages with tables scroll the table, never the page sideways.
        for url in ("/settings/teams/", "/settings/tokens/", "/settings/providers/"):
            page.goto(url)
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], url
    finally:
        context.close()
    assert not errors, errors


def test_a_connection_test_fills_the_models_table_without_a_reload(
    page, login, screenshot, alice, make_credential, fake_provider
):
    """BUG 14: "connected", yet "No models listed" until a reload."""
    credential = make_credential(alice, "openai_compatible", name="GPU box", api_key="")
    login(page, alice)
    page.goto(f"/settings/providers/{credential.pk}/")
    expect(page.locator("#catalogue")).to_contain_text("No models listed.")

    page.get_by_role("button", name="Test connection").click()

    expect(page.locator("#test-result")).to_contain_text("connected")
    models = page.get_by_test_id("models")
    expect(models.locator("code", has_text=re.compile(r"^gpt-4o-mini$"))).to_be_visible()
    expect(page.locator("#catalogue")).to_contain_text("Listed just now.")
    screenshot(page, "providers-tested-1280")


def test_editing_a_base_url_says_when_the_key_is_cleared(
    page, login, screenshot, alice, make_credential
):
    credential = make_credential(alice, "openai", name="Work")
    login(page, alice)
    page.goto(f"/settings/providers/{credential.pk}/edit/")
    base_url = page.locator("#id_base_url")
    base_url.fill(base_url.input_value() + "/")  # a trailing slash is the same endpoint
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".messages")).to_have_text("Saved “Work”.")
    credential.refresh_from_db()
    assert credential.has_key

    page.goto(f"/settings/providers/{credential.pk}/edit/")
    page.fill("#id_base_url", "https://proxy.example.com/v1")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".messages")).to_contain_text("the stored API key was cleared")
    expect(page.locator("#test-result")).to_have_text(re.compile("^untested"))
    screenshot(page, "providers-key-cleared-1280")
    assert not ProviderCredential.objects.get(pk=credential.pk).has_key


def test_saving_chat_settings_raises_no_csp_error_and_flash_messages_float(
    page, login, screenshot, alice
):
    """BUG 21: a CSP "inline style" error in the console on saving settings; a flash message
    pushed the chat layout down."""
    login(page, alice)
    page.goto("/chat/")
    page.fill("#new-content", "hello")
    page.get_by_test_id("new-chat-send").click()
    page.wait_for_url(re.compile(r"/chat/\d+/$"))
    layout_top = "document.querySelector('.chat-layout').getBoundingClientRect().top + scrollY"
    head_top = page.evaluate(layout_top)

    page.locator(".chat-settings > summary").click()
    page.fill("#id_temperature", "0.4")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#settings-form .badge.ok")).to_have_text("saved")

    page.locator("details.rename > summary").click()
    page.get_by_role("button", name="Let echo write a title").click()
    flash = page.locator("#flash > .messages")
    expect(flash).to_contain_text("Titled “")
    assert abs(page.evaluate(layout_top) - head_top) < 2  # the message floats over the page
    screenshot(page, "chat-flash-1280")
    flash.get_by_role("button", name="Dismiss").click()
    expect(flash).to_have_count(0)
    assert not page.console_errors


def test_the_login_card_is_centred_on_a_wide_screen(page, screenshot, db):
    page.set_viewport_size({"width": 1920, "height": 1000})
    page.goto("/login/")
    box = page.locator(".auth .card").bounding_box()
    assert abs((box["x"] + box["width"] / 2) - 960) < 2
    screenshot(page, "login-1920")
