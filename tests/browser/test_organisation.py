"""Organising conversations and sharing one, in a real browser (issue 9 acceptance: pin /
archive / folder; a share link opened by an outsider; revoke)."""

from __future__ import annotations

import re
from decimal import Decimal

from playwright.sync_api import expect

from chats import services
from chats.models import Message
from providers import services as provider_services


def _conversation(user, title: str, answer: str = "Sure."):
    # (credential_create, not credentials_ensure_echo: its model listing can't run beside
    # Playwright's event loop; the page creates Echo's catalogue when it needs it.)
    echo = provider_services.credential_create(actor=user, preset="echo", name="Echo (local)")
    conversation = services.conversation_start(
        actor=user, credential=echo, model="echo", title=title
    )
    question = Message.objects.create(
        conversation=conversation, role="user", content=f"About {title}", author=user
    )
    Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        content=answer,
        model="gpt-4o-mini",
        credential_name="Alice's work key",
        cost=Decimal("0.0031"),
        cost_source="provider",
    )
    return conversation


def _item(page, title):
    return page.locator(".conversations li", has=page.locator(".c-title", has_text=title))


def _menu(page, title):
    item = _item(page, title)
    item.locator(".item-menu > summary").click()
    return item.locator(".item-menu .menu-panel")


def test_alice_pins_archives_files_and_bulk_deletes_conversations(page, login, screenshot, alice):
    for title in ("Groceries", "Paper notes", "Holiday", "Old draft", "Older draft"):
        _conversation(alice, title)
    login(page, alice)
    page.goto("/chat/")
    titles = page.locator(".conversations .c-title")
    expect(titles.first).to_have_text("Older draft")  # newest activity first

    # Pin "Groceries": it jumps to the top (htmx swaps the list in place).
    _menu(page, "Groceries").get_by_role("button", name="Pin to the top").click()
    expect(titles.first).to_have_text(re.compile("Groceries"))
    expect(_item(page, "Groceries").get_by_title("Pinned")).to_be_visible()

    # A folder, and "Paper notes" filed in it.
    page.locator(".new-folder > summary").click()
    page.fill("#new-folder-name", "Research")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".messages")).to_contain_text("Folder “Research” created.")
    expect(page.get_by_test_id("folder-head")).to_contain_text("Research")
    expect(page.get_by_text("No conversations in this folder yet")).to_be_visible()
    page.get_by_role("navigation", name="Folders").get_by_role("link", name="All chats").click()
    menu = _menu(page, "Paper notes")
    menu.get_by_label("Folder").select_option(label="Research")
    with page.expect_response(lambda r: r.url.endswith("/move/")):
        menu.get_by_role("button", name="Move").click()
    page.get_by_role("navigation", name="Folders").get_by_role("link", name="Research").click()
    expect(titles).to_have_text(["Paper notes"])
    screenshot(page, "chat-folder-1280")

    # Archive "Holiday": gone from the list, found under Archived.
    page.get_by_role("navigation", name="Folders").get_by_role("link", name="All chats").click()
    _menu(page, "Holiday").get_by_role("button", name="Archive").click()
    expect(_item(page, "Holiday")).to_have_count(0)
    page.get_by_test_id("archived-view").click()
    expect(titles).to_have_text(["Holiday"])
    screenshot(page, "chat-archived-1280")

    # Rename from the list.
    page.get_by_role("navigation", name="Folders").get_by_role("link", name="All chats").click()
    menu = _menu(page, "Old draft")
    menu.get_by_label("Title").fill("First draft")
    menu.get_by_role("button", name="Rename").click()
    expect(_item(page, "First draft")).to_have_count(1)

    # Bulk delete two, after a confirmation.
    page.get_by_role("button", name="Select").click()
    _item(page, "First draft").get_by_role("checkbox").check()
    _item(page, "Older draft").get_by_role("checkbox").check()
    # (screenshot below, after the dialogs)
    # Cancelling the confirmation sends nothing (it used to reach htmx anyway).
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete selected").click()
    page.wait_for_timeout(300)
    expect(titles).to_have_count(4)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete selected").click()
    expect(page.locator(".messages")).to_contain_text("Deleted 2 conversations.")
    expect(titles).to_have_count(2)  # Groceries (pinned) and Paper notes
    screenshot(page, "chat-after-bulk-delete-1280")

    # Search shows where it matched.
    page.fill("#chat-search", "paper")
    expect(page.get_by_test_id("snippet")).to_contain_text("About Paper notes")
    expect(page.get_by_test_id("snippet").locator("mark")).to_have_text("Paper")
    screenshot(page, "chat-search-snippet-1280")


def test_a_share_link_works_for_an_outsider_and_stops_when_revoked(
    page, browser, live_server_url, login, screenshot, alice
):
    conversation = _conversation(alice, "Kyoto trip", answer="Take an **umbrella**.")
    login(page, alice)
    page.goto(f"/chat/{conversation.pk}/")
    page.locator(".chat-menu > summary").click()
    page.get_by_role("menuitem", name="Share…").click()
    expect(page.get_by_test_id("no-link")).to_be_visible()
    page.get_by_role("button", name="Create link").click()
    url = page.locator("#share-url").input_value()
    assert re.fullmatch(rf"{re.escape(live_server_url)}/chat/shared/[A-Za-z0-9_-]{{32}}/", url)
    screenshot(page, "chat-share-1280")

    # An outsider: a fresh browser with no account.
    outsider = browser.new_context(viewport={"width": 390, "height": 844})
    stranger = outsider.new_page()
    try:
        stranger.goto(url)
        expect(stranger.get_by_test_id("shared-title")).to_have_text("Kyoto trip")
        expect(stranger.locator("article.role-assistant strong")).to_have_text("umbrella")
        expect(stranger.get_by_text("gpt-4o-mini")).to_be_visible()
        content = stranger.content()
        assert "Alice's work key" not in content and "$0.0031" not in content
        assert f"/chat/{conversation.pk}/" not in content
        stranger.screenshot(
            path="artifacts/screenshots/chat-shared-390.png", full_page=True, caret="initial"
        )

        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Revoke link").click()
        expect(page.get_by_test_id("no-link")).to_be_visible()
        response = stranger.goto(url)
        assert response.status == 404
    finally:
        outsider.close()
