"""Invitations in a real browser: a manager invites (the same answer for anyone), the invitee sees
the count, accepts and lands in the team."""

from __future__ import annotations

from playwright.sync_api import expect

from accounts.models import Role


def test_alice_invites_charlie_who_accepts_and_joins(
    page, browser, live_server_url, login, both_widths, alice, team, charlie_outsider
):
    login(page, alice)
    page.goto(f"/settings/teams/{team.pk}/")
    for who in ("ghost@example.com", "charlie_outsider"):
        page.fill("#id_user", who)
        page.select_option("#id_role", "viewer")
        page.get_by_role("button", name="Send invitation").click()
        expect(page.locator(".messages")).to_contain_text(f"Invitation to “{who}” sent as viewer")
    pending = page.get_by_test_id("pending-invitations")
    expect(pending).to_contain_text("ghost@example.com")
    expect(pending).to_contain_text("charlie_outsider")
    both_widths(page, "team-invitations")

    charlie_context = browser.new_context(base_url=live_server_url)
    charlie = charlie_context.new_page()
    try:
        login(charlie, charlie_outsider)
        badge = charlie.get_by_test_id("invitations-badge")
        expect(badge).to_contain_text("1")
        badge.click()
        expect(charlie.get_by_test_id("my-invitations")).to_contain_text("Acme")
        expect(charlie.get_by_test_id("my-invitations")).to_contain_text("Invited by alice")
        both_widths(charlie, "my-invitations")
        charlie.get_by_role("button", name="Accept").click()
        expect(charlie.get_by_test_id("team-name")).to_have_text("Acme")
        expect(charlie.locator(".messages")).to_contain_text("You joined “Acme” as viewer.")
        expect(charlie.get_by_test_id("invitations-badge")).to_have_count(0)
    finally:
        charlie_context.close()

    assert team.memberships.get(user=charlie_outsider).role == Role.VIEWER
    page.reload()
    expect(
        page.locator(f"#membership-{team.memberships.get(user=charlie_outsider).pk}")
    ).to_be_visible()
    expect(page.get_by_test_id("pending-invitations")).not_to_contain_text("charlie_outsider")
