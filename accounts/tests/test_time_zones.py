"""Time zones (issue 9, bug 18): every user sees and enters times in their own zone — the one
in their profile, else their browser's — token expiry included."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from accounts.models import ApiToken

PARIS_WINTER = "Europe/Paris"  # UTC+1 in December


def tokens_page(client) -> str:
    return client.get("/settings/tokens/").content.decode()


def test_a_token_expiry_is_entered_in_the_browsers_time_zone(alice, client_for):
    """BUG: the expiry was read as server time (UTC) whatever the user's zone."""
    client = client_for(alice)
    client.cookies["wb_tz"] = PARIS_WINTER

    client.post(
        "/settings/tokens/", {"name": "CI", "scope": "read", "expires_at": "2031-12-01T09:30"}
    )

    token = ApiToken.objects.get(name="CI")
    assert token.expires_at == datetime(2031, 12, 1, 8, 30, tzinfo=UTC)
    page = tokens_page(client)
    assert "2031-12-01 09:30 CET" in page
    assert f"in your time zone ({PARIS_WINTER})" in page


def test_the_profile_zone_wins_over_the_browsers(alice, client_for):
    alice.time_zone = "Asia/Tokyo"
    alice.save()
    client = client_for(alice)
    client.cookies["wb_tz"] = PARIS_WINTER

    client.post(
        "/settings/tokens/", {"name": "CI", "scope": "read", "expires_at": "2031-12-01T09:30"}
    )

    assert ApiToken.objects.get(name="CI").expires_at == datetime(2031, 12, 1, 0, 30, tzinfo=UTC)
    assert "2031-12-01 09:30 JST" in tokens_page(client)


def test_the_profile_offers_the_browsers_zone_and_saves_a_chosen_one(alice, client_for):
    client = client_for(alice)
    client.cookies["wb_tz"] = PARIS_WINTER
    page = client.get("/settings/profile/").content.decode()
    assert re.search(
        r'<option value="" selected>Your browser’s time zone \(now Europe/Paris\)', page
    )
    assert '<option value="America/New_York">America/New York</option>' in page

    response = client.post(
        "/settings/profile/",
        {"first_name": "", "last_name": "", "email": alice.email, "time_zone": "America/New_York"},
    )

    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.time_zone == "America/New_York"


def test_an_unknown_zone_is_refused_on_the_profile_and_a_bad_cookie_is_ignored(alice, client_for):
    client = client_for(alice)
    client.cookies["wb_tz"] = "Mars/Olympus_Mons"
    response = client.post(
        "/settings/profile/",
        {"first_name": "", "last_name": "", "email": alice.email, "time_zone": "Mars/Base"},
    )
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    alice.refresh_from_db()
    assert alice.time_zone == ""
    client.post(
        "/settings/tokens/", {"name": "CI", "scope": "read", "expires_at": "2031-12-01T09:30"}
    )
    # The server's zone (UTC in tests) for a cookie that names no zone.
    assert ApiToken.objects.get(name="CI").expires_at == datetime(2031, 12, 1, 9, 30, tzinfo=UTC)


def test_the_api_sets_and_validates_the_time_zone(alice, api_for):
    api = api_for(alice)

    ok = api.patch("/api/me/", {"time_zone": "Europe/Berlin"})
    bad = api.patch("/api/me/", {"time_zone": "Nowhere/Special"})

    assert ok.status_code == 200 and ok.json()["time_zone"] == "Europe/Berlin"
    assert bad.status_code == 400
    assert "time_zone" in bad.json()["error"]["fields"]
