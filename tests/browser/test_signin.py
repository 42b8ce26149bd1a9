"""Sign-in lockout in a real browser: after too many wrong passwords the page says why and when."""

from __future__ import annotations

from playwright.sync_api import expect

from accounts import signin


def test_too_many_wrong_passwords_show_a_clear_lockout_message(page, both_widths, alice):
    page.goto("/login/")
    for n in range(signin.ACCOUNT_AND_ADDRESS.limit):
        page.fill("#id_username", "alice")
        page.fill("#id_password", f"wrong-{n}")
        page.click("button[type=submit]")
        expect(page.locator(".form-errors")).to_contain_text("correct username and password")

    page.fill("#id_username", "alice")
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")

    expect(page.locator(".form-errors")).to_contain_text(
        "Too many failed sign-in attempts for this account from your network. "
        "Try again in 15 minutes, or reset your password."
    )
    assert "/login/" in page.url
    both_widths(page, "login-locked")
