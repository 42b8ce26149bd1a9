"""The UI shell in a real browser: log in, switch team, navigate, theme, no CSP violations."""

from __future__ import annotations

import re

from playwright.sync_api import expect


def test_alice_logs_in_switches_team_and_sees_every_area(
    page, login, screenshot, alice, team, bob_teammate
):
    login(page, alice)
    expect(page.get_by_test_id("current-team")).to_have_text("Personal")
    screenshot(page, "home")

    page.click("#team-switcher summary")
    page.get_by_role("menuitem", name=re.compile("Acme")).click()
    expect(page.get_by_test_id("current-team")).to_have_text("Acme")
    expect(page.locator(".messages")).to_contain_text("Now working in “Acme”")
    screenshot(page, "team-switched")

    for label in ["Chat", "Playground", "Prompts", "Collections", "Evaluations", "Usage"]:
        page.get_by_role("navigation", name="Main navigation").get_by_role(
            "link", name=label
        ).click()
        if label == "Chat":  # a new-chat composer, not an empty state
            expect(page.get_by_role("heading", name="New chat")).to_be_visible()
        else:
            expect(page.get_by_test_id("empty-state")).to_be_visible()
        # The team choice sticks across pages.
        expect(page.get_by_test_id("current-team")).to_have_text("Acme")
    screenshot(page, "area-empty-state")

    page.goto(f"/settings/teams/{team.pk}/")
    expect(
        page.locator(f"#membership-{team.memberships.get(user=bob_teammate).pk}")
    ).to_contain_text("bob_teammate")
    screenshot(page, "team-detail")


def test_a_viewer_sees_the_team_but_no_controls_to_change_it(
    page, login, screenshot, vera_viewer, team
):
    login(page, vera_viewer)
    page.goto(f"/settings/teams/{team.pk}/")
    expect(page.get_by_test_id("team-name")).to_have_text("Acme")
    expect(page.get_by_text("you can see this team but not change it")).to_be_visible()
    expect(page.locator("#invite-member")).to_have_count(0)
    expect(page.get_by_role("button", name="Rename")).to_have_count(0)
    screenshot(page, "viewer-team-detail")


def test_the_theme_toggle_switches_to_dark_and_remembers_it(page, login, alice, screenshot):
    login(page, alice)
    page.emulate_media(color_scheme="light")
    page.get_by_role("button", name="Switch light/dark theme").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    screenshot(page, "home-dark")


def test_a_new_user_signs_up_and_creates_a_token_shown_once(
    page, screenshot, both_widths, sent_mail, db
):
    page.goto("/signup/")
    both_widths(page, "signup")
    page.fill("#id_username", "dana")
    page.fill("#id_email", "dana@example.com")
    page.fill("#id_password1", "a sturdy passphrase 42")
    page.fill("#id_password2", "a sturdy passphrase 42")
    page.click("button[type=submit]")
    expect(page.get_by_test_id("signup-sent")).to_contain_text("dana@example.com")
    both_widths(page, "signup-sent")

    link = None
    for _ in range(50):  # the mail is written after the sign-up commits
        if match := re.search(r"http://[^/\s]+(/signup/confirm/\S+/)", sent_mail()):
            link = match[1]
            break
        page.wait_for_timeout(100)
    assert link, "no confirmation email"
    page.goto(link)
    both_widths(page, "signup-confirm")
    page.get_by_role("button", name="Create my account").click()
    expect(page.locator(".messages")).to_contain_text("Welcome, dana")

    page.goto("/settings/tokens/")
    expect(page.get_by_text("No tokens yet")).to_be_visible()
    page.fill("#id_name", "CI script")
    page.select_option("#id_scope", "write")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token-value").text_content().strip()
    assert token.startswith("wb_")
    screenshot(page, "token-created")
    page.reload()
    expect(page.get_by_test_id("new-token")).to_have_count(0)
    assert token not in page.content()
