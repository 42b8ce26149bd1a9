"""Behaviour of the REST API for me, teams, members and tokens. Status codes per persona for every
route are in tests/test_access_matrix.py; these tests look at bodies, tokens and state."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import yaml
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from accounts import services
from accounts.authentication import FAILED_LIMIT, FAILED_WINDOW
from accounts.models import ApiToken, Membership, Role, Team, ThrottleWindow
from conftest import PASSWORD


@pytest.fixture(autouse=True)
def _fresh_cache(db):
    """The failed-token throttle counts in the (database) cache; start every test from zero."""
    cache.clear()
    yield
    cache.clear()


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


def api(client: Client, method: str, url: str, data=None, **kwargs):
    if method == "get":
        return client.get(url, data or {}, **kwargs)
    body = json.dumps(data) if data is not None else None
    return getattr(client, method)(url, body, content_type="application/json", **kwargs)


def assert_error(response, status: int, code: str) -> dict:
    """Every API error has exactly the shape {"error": {"code", "message", ...}}."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


# --- The error body -----------------------------------------------------------------------------


def test_no_credentials_is_401_with_the_error_shape_and_a_bearer_challenge(db):
    response = Client().get("/api/me/")

    error = assert_error(response, 401, "not_authenticated")
    assert set(error) == {"code", "message"}
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_bad_token_is_401_with_the_error_shape(alice, token_for):
    token_for(alice)
    response = Client().get("/api/me/", headers=bearer("wb_this-is-not-a-token"))

    error = assert_error(response, 401, "authentication_failed")
    assert "token" in error["message"].lower()


def test_a_read_only_token_writing_is_403_saying_why(alice, token_for):
    response = api(
        Client(), "post", "/api/teams/", {"name": "Nope"}, headers=bearer(token_for(alice))
    )

    error = assert_error(response, 403, "permission_denied")
    assert "read-only" in error["message"]


def test_a_foreign_id_is_404_with_the_error_shape(team, charlie_outsider, client_for):
    response = client_for(charlie_outsider).get(f"/api/teams/{team.pk}/")

    error = assert_error(response, 404, "not_found")
    assert "Acme" not in json.dumps(error)


def test_invalid_input_is_400_with_the_fields_that_failed(alice, client_for):
    response = api(client_for(alice), "post", "/api/teams/", {})

    error = assert_error(response, 400, "invalid")
    assert set(error) == {"code", "message", "fields"}
    assert list(error["fields"]) == ["name"]
    assert error["message"].startswith("name: ")


def test_a_service_validation_error_is_400_naming_the_field(team, alice, bob_teammate, client_for):
    response = api(
        client_for(alice),
        "post",
        f"/api/teams/{team.pk}/invitations/",
        {"user": "BOB_TEAMMATE@example.com"},
    )

    error = assert_error(response, 400, "invalid")
    assert error["fields"] == {"user": ["“BOB_TEAMMATE@example.com” is already a member of Acme."]}


def test_a_service_error_without_a_field_is_400_under_non_field_errors(team, alice, client_for):
    own = team.memberships.get(user=alice)

    response = api(client_for(alice), "delete", f"/api/teams/{team.pk}/members/{own.pk}/")

    error = assert_error(response, 400, "invalid")
    assert list(error["fields"]) == ["non_field_errors"]
    assert "last owner" in error["message"]
    assert Membership.objects.filter(pk=own.pk).exists()


def test_inviting_an_unknown_user_answers_exactly_as_inviting_a_known_one(
    team, alice, charlie_outsider, client_for
):
    """The review added alice to a throwaway team and got her email back; unknown names got a
    distinct error. Now: the same status and the same fields, and no email anywhere."""
    client = client_for(alice)

    known = api(client, "post", f"/api/teams/{team.pk}/invitations/", {"user": "charlie_outsider"})
    by_mail = api(
        client,
        "post",
        f"/api/teams/{team.pk}/invitations/",
        {"user": "charlie_outsider@example.com"},
    )
    unknown = api(client, "post", f"/api/teams/{team.pk}/invitations/", {"user": "ghost"})

    bodies = [r.json() for r in (known, by_mail, unknown)]
    assert [r.status_code for r in (known, by_mail, unknown)] == [201, 201, 201]
    assert [set(b) for b in bodies] == [set(bodies[0])] * 3
    assert [b["status"] for b in bodies] == ["pending"] * 3
    assert bodies[0]["user"] == "charlie_outsider"
    assert b"charlie_outsider@example.com" not in known.content
    assert b"charlie_outsider" not in by_mail.content.replace(b"charlie_outsider@", b"")
    assert not team.memberships.filter(user=charlie_outsider).exists()
    listed = client.get(f"/api/teams/{team.pk}/invitations/")
    assert sorted(i["user"] for i in listed.json()["results"]) == [
        "charlie_outsider",
        "charlie_outsider@example.com",
        "ghost",
    ]


# --- GET /api/me/ with a token: the lean path --------------------------------------------------------


def test_a_repeated_token_get_of_me_skips_drf_and_answers_the_same_bytes(
    alice, bob_teammate, token_for, monkeypatch
):
    from accounts import api as accounts_api

    through_drf = []
    drf = accounts_api._me_drf
    monkeypatch.setattr(
        accounts_api, "_me_drf", lambda request: through_drf.append(1) or drf(request)
    )
    alice.first_name, alice.time_zone = "Zoë “Al”", "Europe/Paris"
    alice.save()
    services.team_create(user=bob_teammate, name="Ünïcode team")
    services.team_create(user=alice, name="Another")
    headers = bearer(token_for(alice, scope="read"))
    client = Client()
    first = client.get("/api/me/", headers=headers)  # authenticates (DRF) and caches the check
    second = client.get("/api/me/", headers=headers)
    assert through_drf == [1]
    assert first.status_code == second.status_code == 200
    assert second.content == first.content  # same serializer, same renderer
    for header in ("Content-Type", "Allow", "Vary"):
        assert second[header] == first[header]
    body = second.json()
    assert body["username"] == "alice" and body["token_scope"] == "read"
    assert body["first_name"] == "Zoë “Al”"
    assert [(team["name"], team["role"], team["member_count"]) for team in body["teams"]] == [
        ("Acme", "owner", 2),
        ("Another", "owner", 1),
    ]


def test_what_the_lean_me_does_not_answer_goes_to_drf_unchanged(alice, token_for, monkeypatch):
    from accounts import api as accounts_api

    through_drf = []
    drf = accounts_api._me_drf
    monkeypatch.setattr(
        accounts_api, "_me_drf", lambda request: through_drf.append(1) or drf(request)
    )
    raw = token_for(alice, scope="write")
    client = Client()
    assert client.get("/api/me/", headers=bearer(raw)).status_code == 200  # now cached
    # An Accept DRF negotiates (406), query parameters, writes, a revoked token: DRF decides.
    assert client.get("/api/me/", headers={**bearer(raw), "Accept": "text/html"}).status_code == 406
    assert client.get("/api/me/?format=json", headers=bearer(raw)).status_code == 200
    renamed = api(client, "patch", "/api/me/", {"first_name": "Al"}, headers=bearer(raw))
    assert renamed.status_code == 200 and renamed.json()["first_name"] == "Al"
    assert client.get("/api/me/", headers=bearer(raw)).json()["first_name"] == "Al"
    services.token_revoke(user=alice, token=ApiToken.objects.get(user=alice))
    assert client.get("/api/me/", headers=bearer(raw)).status_code == 401
    assert len(through_drf) == 5


# --- Tokens: scopes, revocation, expiry --------------------------------------------------------


def test_a_read_token_can_read_me_but_not_write(alice, token_for):
    headers = bearer(token_for(alice, scope="read"))
    client = Client()

    me = client.get("/api/me/", headers=headers)
    assert me.status_code == 200
    assert me.json()["username"] == "alice"
    assert me.json()["token_scope"] == "read"

    assert_error(
        api(client, "post", "/api/teams/", {"name": "New"}, headers=headers),
        403,
        "permission_denied",
    )
    assert_error(
        api(client, "patch", "/api/me/", {"first_name": "Al"}, headers=headers),
        403,
        "permission_denied",
    )
    assert_error(
        api(client, "post", "/api/tokens/", {"name": "more"}, headers=headers),
        403,
        "permission_denied",
    )
    assert not Team.objects.filter(name="New").exists()
    alice.refresh_from_db()
    assert alice.first_name == ""
    assert ApiToken.objects.filter(user=alice).count() == 1


def test_a_read_token_sees_the_teams_of_its_user(team, alice, token_for):
    response = Client().get("/api/teams/", headers=bearer(token_for(alice)))

    assert response.status_code == 200
    assert [(t["name"], t["role"]) for t in response.json()["results"]] == [("Acme", "owner")]


def test_a_write_token_can_create_a_team_owned_by_its_user(alice, token_for):
    response = api(
        Client(),
        "post",
        "/api/teams/",
        {"name": "  Research "},
        headers=bearer(token_for(alice, "write")),
    )

    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "Research"
    assert body["role"] == "owner"
    assert body["member_count"] == 1
    team = Team.objects.get(pk=body["id"])
    assert team.memberships.get().user == alice


def test_a_revoked_token_is_refused(alice):
    token, raw = services.token_create(user=alice, name="CI", scope="write")
    client = Client()
    assert client.get("/api/me/", headers=bearer(raw)).status_code == 200

    services.token_revoke(user=alice, token=token)

    assert_error(client.get("/api/me/", headers=bearer(raw)), 401, "authentication_failed")


def test_revoking_through_the_api_refuses_the_token_at_once(alice, client_for):
    token, raw = services.token_create(user=alice, name="CI")

    assert api(client_for(alice), "delete", f"/api/tokens/{token.pk}/").status_code == 204

    assert_error(Client().get("/api/me/", headers=bearer(raw)), 401, "authentication_failed")
    listed = client_for(alice).get(f"/api/tokens/{token.pk}/").json()
    assert listed["status"] == "revoked"


def test_an_expired_token_is_refused(alice):
    token, raw = services.token_create(
        user=alice, name="CI", expires_at=timezone.now() + timedelta(days=1)
    )
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    assert_error(Client().get("/api/me/", headers=bearer(raw)), 401, "authentication_failed")


def test_the_bearer_keyword_is_case_insensitive(alice, token_for):
    response = Client().get("/api/me/", headers={"Authorization": f"bearer {token_for(alice)}"})
    assert response.status_code == 200


def test_using_a_token_records_when_it_was_last_used(alice):
    token, raw = services.token_create(user=alice, name="CI")

    Client().get("/api/me/", headers=bearer(raw))

    token.refresh_from_db()
    assert token.last_used_at is not None


# --- Throttling failed token attempts ----------------------------------------------------------


def test_failed_token_attempts_are_throttled_per_address(alice):
    attacker = Client(REMOTE_ADDR="203.0.113.7")
    for attempt in range(FAILED_LIMIT):
        response = attacker.get("/api/me/", headers=bearer(f"wb_guess-{attempt}"))
        assert response.status_code == 401, attempt

    throttled = assert_error(
        attacker.get("/api/me/", headers=bearer("wb_guess-again")), 429, "throttled"
    )
    assert "Too many" in throttled["message"]
    assert attacker.get("/api/me/", headers=bearer("wb_x"))["Retry-After"] == "60"
    # Other addresses are not affected.
    assert_error(
        Client(REMOTE_ADDR="198.51.100.1").get("/api/me/", headers=bearer("wb_nope")),
        401,
        "authentication_failed",
    )


def test_a_valid_token_is_never_throttled_by_someone_elses_failures(alice, token_for):
    """Behind one NAT address, a broken script's failures must not lock out a working one."""
    good = token_for(alice)
    shared = Client(REMOTE_ADDR="203.0.113.70")
    for attempt in range(FAILED_LIMIT + 5):
        shared.get("/api/me/", headers=bearer(f"wb_guess-{attempt}"))
    assert_error(shared.get("/api/me/", headers=bearer("wb_guess")), 429, "throttled")

    response = shared.get("/api/me/", headers=bearer(good))

    assert response.status_code == 200
    assert response.json()["username"] == "alice"


def test_rotating_x_forwarded_for_does_not_escape_the_throttle(alice, token_for):
    attacker = Client(REMOTE_ADDR="203.0.113.71")
    for attempt in range(FAILED_LIMIT):
        attacker.get(
            "/api/me/",
            headers={**bearer(f"wb_guess-{attempt}"), "X-Forwarded-For": f"10.0.0.{attempt}"},
        )

    response = attacker.get(
        "/api/me/", headers={**bearer("wb_guess-11"), "X-Forwarded-For": "10.9.9.9"}
    )

    assert_error(response, 429, "throttled")


def test_spoofing_a_victims_address_in_x_forwarded_for_does_not_throttle_the_victim(
    alice, token_for
):
    victim_address = "198.51.100.23"
    attacker = Client(REMOTE_ADDR="203.0.113.72")
    for attempt in range(FAILED_LIMIT + 3):
        attacker.get(
            "/api/me/",
            headers={**bearer(f"wb_guess-{attempt}"), "X-Forwarded-For": victim_address},
        )

    victim = Client(REMOTE_ADDR=victim_address)
    assert_error(victim.get("/api/me/", headers=bearer("wb_typo")), 401, "authentication_failed")
    assert victim.get("/api/me/", headers=bearer(token_for(alice))).status_code == 200


def test_behind_one_trusted_proxy_the_client_is_the_address_the_proxy_appended(alice, settings):
    """The proxy appends its peer to whatever the client sent: only that last entry counts."""
    settings.WORKBENCH_TRUSTED_PROXIES = 1
    proxy = "10.0.0.2"
    for attempt in range(FAILED_LIMIT):
        Client(REMOTE_ADDR=proxy).get(
            "/api/me/",
            headers={
                **bearer(f"wb_guess-{attempt}"),
                "X-Forwarded-For": f"1.2.3.{attempt}, 203.0.113.73",
            },
        )

    attacker_again = Client(REMOTE_ADDR=proxy).get(
        "/api/me/", headers={**bearer("wb_x"), "X-Forwarded-For": "9.9.9.9, 203.0.113.73"}
    )
    someone_else = Client(REMOTE_ADDR=proxy).get(
        "/api/me/", headers={**bearer("wb_x"), "X-Forwarded-For": "203.0.113.73, 198.51.100.5"}
    )

    assert_error(attacker_again, 429, "throttled")
    assert_error(someone_else, 401, "authentication_failed")


def test_failures_racing_in_parallel_are_all_counted(alice, transactional_db):
    """Each failure reserves its count atomically: a burst of parallel guesses can't all read
    "below the limit" and slip through."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    def guess(n):
        try:
            return (
                Client(REMOTE_ADDR="203.0.113.74")
                .get("/api/me/", headers=bearer(f"wb_parallel-{n}"))
                .status_code
            )
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(guess, range(4 * FAILED_LIMIT)))

    assert statuses.count(401) == FAILED_LIMIT
    assert statuses.count(429) == 3 * FAILED_LIMIT


def test_fewer_failures_than_the_limit_do_not_block_a_valid_token(alice, token_for):
    good = token_for(alice)
    client = Client(REMOTE_ADDR="203.0.113.8")
    for attempt in range(FAILED_LIMIT - 1):
        assert client.get("/api/me/", headers=bearer(f"wb_guess-{attempt}")).status_code == 401

    assert client.get("/api/me/", headers=bearer(good)).status_code == 200


def test_the_throttle_ends_once_the_window_has_passed(alice):
    """Retry-After says 60 seconds; once the window is over, failures count from zero again."""
    client = Client(REMOTE_ADDR="203.0.113.10")
    for attempt in range(FAILED_LIMIT):
        assert client.get("/api/me/", headers=bearer(f"wb_guess-{attempt}")).status_code == 401
    response = client.get("/api/me/", headers=bearer("wb_guess"))
    assert response.status_code == 429
    assert int(response["Retry-After"]) == FAILED_WINDOW

    # Let the window run out.
    ThrottleWindow.objects.update(window_ends=timezone.now() - timedelta(seconds=1))

    assert client.get("/api/me/", headers=bearer("wb_guess")).status_code == 401


def test_requests_without_a_bearer_token_do_not_count_as_failures(alice, token_for):
    good = token_for(alice)
    client = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(FAILED_LIMIT + 1):
        assert (
            client.get("/api/me/", headers={"Authorization": "Basic YWxpY2U6eA=="}).status_code
            == 401
        )
        assert client.get("/api/me/").status_code == 401

    assert client.get("/api/me/", headers=bearer(good)).status_code == 200


def test_a_write_token_can_update_my_display_names(alice, token_for):
    response = api(
        Client(),
        "patch",
        "/api/me/",
        {"first_name": "Alice", "last_name": "Liddell"},
        headers=bearer(token_for(alice, "write")),
    )

    assert response.status_code == 200
    alice.refresh_from_db()
    assert (alice.first_name, alice.last_name) == ("Alice", "Liddell")


@pytest.mark.parametrize(
    "change",
    [
        {"email": "mallory@evil.example"},
        {"email": "mallory@evil.example", "current_password": PASSWORD},
        {"username": "mallory"},
        {"password": "new-password-123456"},
        {"first_name": "Mallory", "email": "mallory@evil.example"},
    ],
)
def test_a_token_can_never_change_what_controls_logging_in(alice, token_for, change):
    """The takeover: a read-write token changed the email, then a password reset to that
    address logged the holder in as the victim."""
    response = api(Client(), "patch", "/api/me/", change, headers=bearer(token_for(alice, "write")))

    error = assert_error(response, 403, "permission_denied")
    assert "API tokens can't change the email" in error["message"]
    alice.refresh_from_db()
    assert (alice.email, alice.username, alice.first_name) == ("alice@example.com", "alice", "")
    assert alice.check_password(PASSWORD)
    assert mail.outbox == []


def test_changing_the_email_with_a_session_needs_the_current_password(alice, client_for):
    client = client_for(alice)

    missing = api(client, "patch", "/api/me/", {"email": "new@example.com"})
    wrong = api(
        client, "patch", "/api/me/", {"email": "new@example.com", "current_password": "nope"}
    )

    for response in (missing, wrong):
        error = assert_error(response, 400, "invalid")
        assert error["fields"] == {"current_password": ["Your current password is not correct."]}
    alice.refresh_from_db()
    assert alice.email == "alice@example.com"
    assert mail.outbox == []


def test_changing_the_email_tells_the_old_address(
    alice, client_for, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api(
            client_for(alice),
            "patch",
            "/api/me/",
            {"email": "alice@new.example.com", "current_password": PASSWORD, "first_name": "Al"},
        )

    assert response.status_code == 200
    assert response.json()["email"] == "alice@new.example.com"
    assert "current_password" not in response.json()
    alice.refresh_from_db()
    assert (alice.email, alice.first_name) == ("alice@new.example.com", "Al")
    [notice] = mail.outbox
    assert notice.to == ["alice@example.com"]
    assert "alice@new.example.com" in notice.body
    assert "http://127.0.0.1:8000" in notice.body  # the configured site, not the request's host


def test_a_failed_email_change_changes_no_name_either(alice, client_for):
    response = api(
        client_for(alice),
        "patch",
        "/api/me/",
        {"first_name": "Al", "email": "x@example.com", "current_password": "wrong"},
    )

    assert response.status_code == 400
    alice.refresh_from_db()
    assert (alice.first_name, alice.email) == ("", "alice@example.com")


def test_taking_someone_elses_email_through_the_api_is_a_clear_field_error(
    alice, charlie_outsider, client_for
):
    response = api(
        client_for(alice),
        "patch",
        "/api/me/",
        {"email": "CHARLIE_OUTSIDER@example.com", "current_password": PASSWORD},
    )

    error = assert_error(response, 400, "invalid")
    assert error["fields"] == {"email": ["An account with this email already exists."]}
    alice.refresh_from_db()
    assert alice.email == "alice@example.com"


@pytest.mark.parametrize("scope", ["read", "write"])
def test_a_token_can_not_create_list_or_revoke_tokens(alice, scope):
    """A token that expires in seconds must not mint a never-expiring one, see its siblings or
    revoke the owner's other tokens."""
    _, raw = services.token_create(
        user=alice, name="short", scope=scope, expires_at=timezone.now() + timedelta(minutes=5)
    )
    other, _ = services.token_create(user=alice, name="CI", scope="write")
    client = Client(headers=bearer(raw))

    created = api(client, "post", "/api/tokens/", {"name": "forever", "scope": "write"})
    listed = client.get("/api/tokens/")
    shown = client.get(f"/api/tokens/{other.pk}/")
    revoked = api(client, "delete", f"/api/tokens/{other.pk}/")

    for response in (created, listed, shown, revoked):
        error = assert_error(response, 403, "permission_denied")
        if scope == "write" or response is listed or response is shown:
            assert "API tokens can't create, list or revoke tokens" in error["message"]
    assert ApiToken.objects.filter(user=alice).count() == 2
    other.refresh_from_db()
    assert other.revoked_at is None


# --- Session authentication and CSRF ------------------------------------------------------------


def test_a_session_write_without_a_csrf_token_is_refused(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    assert client.get("/api/me/").status_code == 200
    error = assert_error(
        api(client, "post", "/api/teams/", {"name": "Sneaky"}), 403, "permission_denied"
    )
    assert "CSRF" in error["message"]
    assert_error(api(client, "patch", "/api/me/", {"first_name": "Eve"}), 403, "permission_denied")
    assert not Team.objects.filter(name="Sneaky").exists()


def test_a_session_write_with_the_csrf_token_is_accepted(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get("/")  # the page sets the CSRF cookie
    csrf = client.cookies["csrftoken"].value

    response = api(client, "post", "/api/teams/", {"name": "Legit"}, headers={"X-CSRFToken": csrf})

    assert response.status_code == 201
    assert Team.objects.filter(name="Legit").exists()


# --- Token plaintext ----------------------------------------------------------------------------


def test_the_token_plaintext_appears_only_in_the_create_response(alice, client_for):
    client = client_for(alice)

    created = api(client, "post", "/api/tokens/", {"name": "CI", "scope": "write"})

    assert created.status_code == 201
    body = created.json()
    raw = body["token"]
    assert raw.startswith(body["prefix"])
    assert body["prefix"].startswith("wb_")
    assert body["scope"] == "write"
    assert body["status"] == "active"
    # The plaintext works...
    assert Client().get("/api/me/", headers=bearer(raw)).status_code == 200
    # ...and is never shown again.
    for url in ("/api/tokens/", f"/api/tokens/{body['id']}/", "/api/me/"):
        response = client.get(url)
        assert response.status_code == 200
        assert raw.encode() not in response.content, url
        assert b'"token"' not in response.content, url
    listed = client.get("/api/tokens/").json()["results"]
    assert [t["prefix"] for t in listed] == [body["prefix"]]


def test_a_token_created_through_the_api_may_carry_an_expiry(alice, client_for):
    expires = (timezone.now() + timedelta(days=3)).isoformat()

    created = api(
        client_for(alice), "post", "/api/tokens/", {"name": "short", "expires_at": expires}
    )

    assert created.status_code == 201
    assert created.json()["scope"] == "read"
    assert created.json()["expires_at"] is not None


def test_a_token_cannot_be_created_already_expired(alice, client_for):
    past = (timezone.now() - timedelta(days=1)).isoformat()

    response = api(client_for(alice), "post", "/api/tokens/", {"name": "old", "expires_at": past})

    error = assert_error(response, 400, "invalid")
    assert "expires_at" in error["fields"]
    assert not ApiToken.objects.exists()


def test_someone_elses_token_is_not_found(alice, charlie_outsider, client_for):
    token, _ = services.token_create(user=alice, name="CI")

    assert_error(client_for(charlie_outsider).get(f"/api/tokens/{token.pk}/"), 404, "not_found")
    assert_error(
        api(client_for(charlie_outsider), "delete", f"/api/tokens/{token.pk}/"), 404, "not_found"
    )
    token.refresh_from_db()
    assert token.revoked_at is None


# --- Pagination ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["/api/teams/", "/api/tokens/", "/api/teams/{team}/members/", "/api/teams/{team}/invitations/"],
)
def test_list_endpoints_are_paginated(url, team, alice, client_for):
    services.token_create(user=alice, name="CI")
    services.invitation_create(actor=alice, team=team, identifier="someone", role="member")

    response = client_for(alice).get(url.format(team=team.pk))

    assert response.status_code == 200
    body = response.json()
    assert {"count", "next", "previous", "results"} <= set(body)
    assert body["count"] == len(body["results"]) == 1


def test_page_size_can_be_chosen_and_pages_link_onwards(alice, client_for):
    for n in range(3):
        services.token_create(user=alice, name=f"token {n}")
    client = client_for(alice)

    first = client.get("/api/tokens/", {"page_size": 2}).json()
    assert first["count"] == 3
    assert len(first["results"]) == 2
    assert first["next"] is not None
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 1
    assert second["next"] is None
    names = [t["name"] for t in first["results"] + second["results"]]
    assert sorted(names) == ["token 0", "token 1", "token 2"]


# --- Schema -------------------------------------------------------------------------------------


def test_the_schema_is_valid_yaml_and_json_declaring_bearer_auth(db):
    client = Client()
    as_yaml = yaml.safe_load(client.get("/api/schema/").content)
    response = client.get("/api/schema/", {"format": "json"})
    as_json = json.loads(response.content)

    assert as_yaml == as_json
    assert as_json["openapi"].startswith("3.")
    scheme = as_json["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    assert {"/api/me/", "/api/teams/", "/api/tokens/"} <= set(as_json["paths"])
    me_security = as_json["paths"]["/api/me/"]["get"]["security"]
    assert {"bearerAuth": []} in me_security


# --- A viewer through the API -------------------------------------------------------------------


def test_a_viewer_sees_the_team_but_cannot_change_it(team, vera_viewer, client_for, db):
    client = client_for(vera_viewer)
    members_before = set(team.memberships.values_list("user__username", "role"))

    seen = client.get(f"/api/teams/{team.pk}/").json()
    assert (seen["name"], seen["role"], seen["member_count"]) == ("Acme", "viewer", 2)
    assert [t["name"] for t in client.get("/api/teams/").json()["results"]] == ["Acme"]

    assert_error(
        api(client, "patch", f"/api/teams/{team.pk}/", {"name": "Vera's"}), 403, "permission_denied"
    )
    assert_error(api(client, "delete", f"/api/teams/{team.pk}/"), 403, "permission_denied")
    assert_error(
        api(
            client,
            "post",
            f"/api/teams/{team.pk}/invitations/",
            {"user": "vera_viewer", "role": "owner"},
        ),
        403,
        "permission_denied",
    )

    team.refresh_from_db()
    assert team.name == "Acme"
    assert set(team.memberships.values_list("user__username", "role")) == members_before


def test_a_viewer_can_leave_through_the_api(team, vera_viewer, client_for):
    own = team.memberships.get(user=vera_viewer)

    response = api(client_for(vera_viewer), "delete", f"/api/teams/{team.pk}/members/{own.pk}/")

    assert response.status_code == 204
    assert not Membership.objects.filter(pk=own.pk).exists()
    assert_error(client_for(vera_viewer).get(f"/api/teams/{team.pk}/"), 404, "not_found")


def test_an_invitee_accepts_through_the_api_and_joins_with_the_invited_role(
    team, alice, charlie_outsider, client_for
):
    invited = api(
        client_for(alice),
        "post",
        f"/api/teams/{team.pk}/invitations/",
        {"user": "Charlie_Outsider@Example.com", "role": "viewer"},
    )
    assert invited.status_code == 201
    assert not team.memberships.filter(user=charlie_outsider).exists()
    charlie = client_for(charlie_outsider)

    [mine] = charlie.get("/api/invitations/").json()["results"]
    assert mine["team"] == {"id": team.pk, "name": "Acme"}
    assert (mine["role"], mine["invited_by"]) == ("viewer", "alice")
    accepted = api(charlie, "post", f"/api/invitations/{mine['id']}/accept/")

    assert accepted.status_code == 200
    assert (accepted.json()["name"], accepted.json()["role"]) == ("Acme", "viewer")
    assert team.memberships.get(user=charlie_outsider).role == Role.VIEWER
    assert charlie.get("/api/invitations/").json()["results"] == []
    assert_error(api(charlie, "post", f"/api/invitations/{mine['id']}/accept/"), 400, "invalid")


def test_an_invitee_declines_through_the_api(team, alice, charlie_outsider, client_for):
    invitation = services.invitation_create(
        actor=alice, team=team, identifier="charlie_outsider", role="member"
    )

    response = api(
        client_for(charlie_outsider), "post", f"/api/invitations/{invitation.pk}/decline/"
    )

    assert response.status_code == 204
    assert not team.memberships.filter(user=charlie_outsider).exists()
    seen_by_team = client_for(alice).get(f"/api/teams/{team.pk}/invitations/{invitation.pk}/")
    assert seen_by_team.json()["status"] == "pending"  # a decline reveals nothing


@pytest.mark.parametrize("answer", ["accept", "decline"])
def test_a_token_cannot_answer_an_invitation(team, alice, charlie_outsider, token_for, answer):
    invitation = services.invitation_create(
        actor=alice, team=team, identifier="charlie_outsider", role="member"
    )
    client = Client(headers=bearer(token_for(charlie_outsider, "write")))

    response = api(client, "post", f"/api/invitations/{invitation.pk}/{answer}/")

    error = assert_error(response, 403, "permission_denied")
    assert "joining a team is the person's decision" in error["message"]
    invitation.refresh_from_db()
    assert invitation.status == "pending"


def test_members_see_each_others_emails_only_if_they_manage_the_team(
    team, alice, bob_teammate, vera_viewer, client_for
):
    def emails_seen_by(user):
        results = client_for(user).get(f"/api/teams/{team.pk}/members/").json()["results"]
        return {m["user"]["username"]: m["user"]["email"] for m in results}

    assert emails_seen_by(alice) == {
        "alice": "alice@example.com",
        "bob_teammate": "bob_teammate@example.com",
        "vera_viewer": "vera_viewer@example.com",
    }
    assert emails_seen_by(vera_viewer) == {
        "alice": None,
        "bob_teammate": None,
        "vera_viewer": "vera_viewer@example.com",
    }
    bob = team.memberships.get(user=bob_teammate)
    assert (
        client_for(vera_viewer)
        .get(f"/api/teams/{team.pk}/members/{bob.pk}/")
        .json()["user"]["email"]
        is None
    )


def test_members_can_no_longer_be_added_without_their_consent(
    team, alice, charlie_outsider, client_for
):
    response = api(
        client_for(alice), "post", f"/api/teams/{team.pk}/members/", {"user": "charlie_outsider"}
    )

    assert_error(response, 405, "method_not_allowed")
    assert not team.memberships.filter(user=charlie_outsider).exists()
