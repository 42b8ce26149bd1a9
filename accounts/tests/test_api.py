"""Behaviour of the REST API for me, teams, members and tokens. Status codes per persona for every
route are in tests/test_access_matrix.py; these tests look at bodies, tokens and state."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import yaml
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from accounts import services
from accounts.authentication import FAILED_LIMIT, FAILED_WINDOW
from accounts.models import ApiToken, Membership, Role, Team


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
        f"/api/teams/{team.pk}/members/",
        {"user": "BOB_TEAMMATE@example.com"},
    )

    error = assert_error(response, 400, "invalid")
    assert error["fields"] == {"user": ["bob_teammate is already a member of Acme."]}


def test_a_service_error_without_a_field_is_400_under_non_field_errors(team, alice, client_for):
    own = team.memberships.get(user=alice)

    response = api(client_for(alice), "delete", f"/api/teams/{team.pk}/members/{own.pk}/")

    error = assert_error(response, 400, "invalid")
    assert list(error["fields"]) == ["non_field_errors"]
    assert "last owner" in error["message"]
    assert Membership.objects.filter(pk=own.pk).exists()


def test_an_unknown_member_is_400_naming_what_was_typed(team, alice, client_for):
    response = api(client_for(alice), "post", f"/api/teams/{team.pk}/members/", {"user": "ghost"})

    error = assert_error(response, 400, "invalid")
    assert "ghost" in error["fields"]["user"][0]


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


def test_failed_token_attempts_are_throttled_per_address(alice, token_for):
    good = token_for(alice)
    attacker = Client(REMOTE_ADDR="203.0.113.7")
    for attempt in range(FAILED_LIMIT):
        response = attacker.get("/api/me/", headers=bearer(f"wb_guess-{attempt}"))
        assert response.status_code == 401, attempt

    throttled = assert_error(
        attacker.get("/api/me/", headers=bearer("wb_guess-again")), 429, "throttled"
    )
    assert "Too many" in throttled["message"]
    assert attacker.get("/api/me/", headers=bearer("wb_x"))["Retry-After"] == "60"

    # Even the right token is refused from that address while the window lasts...
    assert_error(attacker.get("/api/me/", headers=bearer(good)), 429, "throttled")
    # ...but other addresses are not affected.
    assert (
        Client(REMOTE_ADDR="198.51.100.1").get("/api/me/", headers=bearer(good)).status_code == 200
    )


def test_fewer_failures_than_the_limit_do_not_block_a_valid_token(alice, token_for):
    good = token_for(alice)
    client = Client(REMOTE_ADDR="203.0.113.8")
    for attempt in range(FAILED_LIMIT - 1):
        assert client.get("/api/me/", headers=bearer(f"wb_guess-{attempt}")).status_code == 401

    assert client.get("/api/me/", headers=bearer(good)).status_code == 200


def test_the_lockout_ends_once_the_window_has_passed(alice, token_for, monkeypatch):
    """Retry-After says 60 seconds; after 61 the right token must work again."""
    good = token_for(alice)
    client = Client(REMOTE_ADDR="203.0.113.10")
    for attempt in range(FAILED_LIMIT):
        assert client.get("/api/me/", headers=bearer(f"wb_guess-{attempt}")).status_code == 401
    response = client.get("/api/me/", headers=bearer(good))
    assert response.status_code == 429
    wait = int(response["Retry-After"])
    assert wait == FAILED_WINDOW

    # Let the clock of the (database) cache run on past the window.
    later = timezone.now() + timedelta(seconds=wait + 1)
    monkeypatch.setattr("django.core.cache.backends.db.tz_now", lambda: later)

    assert client.get("/api/me/", headers=bearer(good)).status_code == 200


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


def test_a_write_token_can_update_my_profile(alice, token_for):
    response = api(
        Client(),
        "patch",
        "/api/me/",
        {"first_name": "Alice", "email": "alice@new.example.com", "username": "mallory"},
        headers=bearer(token_for(alice, "write")),
    )

    assert response.status_code == 200
    alice.refresh_from_db()
    assert (alice.first_name, alice.email) == ("Alice", "alice@new.example.com")
    assert alice.username == "alice"  # read-only field, ignored


def test_taking_someone_elses_email_through_the_api_is_a_clear_field_error(
    alice, charlie_outsider, client_for
):
    response = api(
        client_for(alice), "patch", "/api/me/", {"email": "CHARLIE_OUTSIDER@example.com"}
    )

    error = assert_error(response, 400, "invalid")
    assert error["fields"] == {"email": ["An account with this email already exists."]}
    alice.refresh_from_db()
    assert alice.email == "alice@example.com"


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


@pytest.mark.parametrize("url", ["/api/teams/", "/api/tokens/", "/api/teams/{team}/members/"])
def test_list_endpoints_are_paginated(url, team, alice, client_for):
    services.token_create(user=alice, name="CI")

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
            f"/api/teams/{team.pk}/members/",
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


def test_an_owner_adds_a_member_by_email_through_the_api(team, alice, charlie_outsider, client_for):
    response = api(
        client_for(alice),
        "post",
        f"/api/teams/{team.pk}/members/",
        {"user": "Charlie_Outsider@Example.com"},
    )

    assert response.status_code == 201
    body = response.json()
    assert body["user"]["username"] == "charlie_outsider"
    assert body["role"] == Role.MEMBER
    assert team.memberships.filter(user=charlie_outsider, role=Role.MEMBER).exists()
