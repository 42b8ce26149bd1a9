"""Behaviour of the providers REST API: credentials CRUD with Bearer tokens, connection tests, the
model catalogue, completions as JSON and as Server-Sent Events, and the usage ledger. Status codes
per persona for every route are also in tests/test_access_matrix.py; these tests look at bodies
and state."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient

from billing.models import UsageRecord
from providers.models import ProviderCredential
from tests.api_client import assert_error, bearer

KEY = "sk-test-key-0123456789"
FAKE_REPLY = "Hello from the fake gpt-4o-mini! How can I help you today?"


@pytest.fixture(autouse=True)
def _api_test_defaults(fresh_cache, one_attempt):
    """Throttle counters start at zero; errors come on the first attempt (no retry backoff)."""


def completion_body(credential, **extra) -> dict:
    return {
        "credential": credential.pk,
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hi there"}],
        **extra,
    }


@pytest.fixture
def team_credential(team, make_credential):
    return make_credential(team, "openai", name="Acme OpenAI")


# --- Credentials CRUD ----------------------------------------------------------------------------


def test_a_user_creates_a_personal_credential_and_never_sees_the_key_again(
    alice, api_for, fake_provider
):
    api = api_for(alice)

    response = api.post(
        "/api/credentials/",
        {"preset": "openai", "name": "Work", "api_key": KEY, "base_url": f"{fake_provider.url}/v1"},
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "Work"
    assert body["preset"] == "openai"
    assert body["preset_label"] == "OpenAI"
    assert body["owner"] == {"type": "user", "team_id": None, "team_name": None}
    assert body["has_key"] is True
    assert body["api_key_masked"] == "sk-…6789"
    assert body["can_manage"] is True
    assert body["is_local"] is False
    assert "api_key" not in body
    assert KEY not in response.content.decode()
    credential = ProviderCredential.objects.get(pk=body["id"])
    assert credential.owner_user == alice
    assert credential.api_key == KEY


def test_an_owner_creates_a_team_credential_by_team_id(alice, team, api_for):
    response = api_for(alice).post(
        "/api/credentials/",
        {
            "preset": "anthropic",
            "name": "Acme Claude",
            "api_key": "sk-ant-api03-abcdefgh4321",
            "owner_team": team.pk,
        },
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["owner"] == {"type": "team", "team_id": team.pk, "team_name": "Acme"}
    assert body["name"] == "Acme Claude"
    assert body["api_key_masked"] == "sk-…4321"
    assert ProviderCredential.objects.get(pk=body["id"]).owner_team == team


def test_the_name_may_be_omitted_and_defaults_to_the_providers_label(alice, api_for):
    """BUG: the serializer leaves `name` out of validated_data when omitted, and
    credential_create() requires it → 500 instead of a credential named "Anthropic"."""
    response = api_for(alice).post(
        "/api/credentials/", {"preset": "anthropic", "api_key": "sk-ant-api03-abcdefgh4321"}
    )

    assert response.status_code == 201, response.content
    assert response.json()["name"] == "Anthropic"


def test_a_member_cannot_create_a_team_credential(team, bob_teammate, api_for):
    response = api_for(bob_teammate).post(
        "/api/credentials/",
        {"preset": "openai", "name": "x", "api_key": KEY, "owner_team": team.pk},
    )

    assert_error(response, 403, "permission_denied")
    assert not ProviderCredential.objects.exists()


def test_a_foreign_team_id_is_not_found(team, charlie_outsider, api_for):
    response = api_for(charlie_outsider).post(
        "/api/credentials/",
        {"preset": "openai", "name": "x", "api_key": KEY, "owner_team": team.pk},
    )

    assert_error(response, 404, "not_found")
    assert not ProviderCredential.objects.exists()


def test_creating_without_a_needed_key_or_with_a_bad_url_is_a_field_error(alice, api_for):
    api = api_for(alice)

    no_key = assert_error(
        api.post("/api/credentials/", {"preset": "openai", "name": "x"}), 400, "invalid"
    )
    assert no_key["fields"] == {"api_key": ["OpenAI needs an API key."]}
    no_url = assert_error(
        api.post("/api/credentials/", {"preset": "openai_compatible", "name": "x"}), 400, "invalid"
    )
    assert set(no_url["fields"]) == {"base_url"}
    bad_url = assert_error(
        api.post(
            "/api/credentials/",
            {"preset": "openai_compatible", "name": "x", "base_url": "ftp://box/v1"},
        ),
        400,
        "invalid",
    )
    assert "only http and https" in bad_url["fields"]["base_url"][0]
    bad_preset = assert_error(
        api.post("/api/credentials/", {"preset": "skynet", "api_key": KEY}), 400, "invalid"
    )
    assert set(bad_preset["fields"]) == {"preset"}
    assert not ProviderCredential.objects.exists()


def test_the_list_shows_own_credentials_and_the_session_teams(
    alice, team, charlie_outsider, api_for, client_for, make_credential
):
    mine = make_credential(alice, "openai", name="Mine")
    acme = make_credential(team, "openai", name="Acme's")
    make_credential(charlie_outsider, "openai", name="Charlie's")

    with_token = api_for(alice).get("/api/credentials/")
    assert with_token.status_code == 200
    body = with_token.json()
    assert set(body) >= {"count", "next", "previous", "results"}
    assert [c["id"] for c in body["results"]] == [mine.pk]  # no session, no current team

    session = client_for(alice)
    session.post(f"/teams/{team.pk}/switch/", {"next": "/"})
    in_team = session.get("/api/credentials/").json()
    assert {c["id"] for c in in_team["results"]} == {mine.pk, acme.pk}
    assert KEY not in json.dumps(in_team)


def test_detail_permissions_follow_the_role(
    alice, team, bob_teammate, vera_viewer, charlie_outsider, api_for, team_credential
):
    url = f"/api/credentials/{team_credential.pk}/"

    assert api_for(alice).get(url).json()["can_manage"] is True

    bob = api_for(bob_teammate)
    got = bob.get(url)
    assert got.status_code == 200
    assert got.json()["can_manage"] is False
    assert got.json()["api_key_masked"] == "sk-…6789"
    assert_error(bob.patch(url, {"name": "Bob's"}), 403, "permission_denied")
    assert_error(bob.delete(url), 403, "permission_denied")

    vera = api_for(vera_viewer)
    assert vera.get(url).status_code == 200
    assert_error(vera.patch(url, {"name": "Vera's"}), 403, "permission_denied")
    assert_error(vera.delete(url), 403, "permission_denied")

    charlie = api_for(charlie_outsider)
    for response in (
        charlie.get(url),
        charlie.patch(url, {"name": "Charlie's"}),
        charlie.delete(url),
    ):
        assert_error(response, 404, "not_found")

    team_credential.refresh_from_db()
    assert team_credential.name == "Acme OpenAI"


def _in_team(client_for, user, team):
    """A browser session of `user` with `team` as the current team (the team switcher)."""
    session = client_for(user)
    session.post(f"/teams/{team.pk}/switch/", {"next": "/"})
    return session


def _post_json(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def test_a_personal_credentials_calls_are_personal_whatever_the_current_team(
    alice, team, vera_viewer, client_for, make_credential
):
    """Issue 7: a viewer's personal call landed in the team's ledger (and members' personal
    calls, error text included, became visible to the team's viewers)."""
    for user in (vera_viewer, alice):
        credential = make_credential(user, "openai", name=f"{user.username}'s own")
        response = _post_json(
            _in_team(client_for, user, team), "/api/completions", completion_body(credential)
        )
        assert response.status_code == 200, response.content
        assert UsageRecord.objects.get(pk=response.json()["usage_id"]).team_id is None
    assert not UsageRecord.objects.filter(team=team).exists()


def test_billing_a_team_with_a_personal_credential_needs_use_and_an_explicit_choice(
    team, bob_teammate, vera_viewer, charlie_outsider, api_for, make_credential
):
    bobs = make_credential(bob_teammate, "openai", name="bob's own")
    billed = api_for(bob_teammate).post("/api/completions", completion_body(bobs, team=team.pk))
    assert billed.status_code == 200, billed.content
    assert UsageRecord.objects.get(pk=billed.json()["usage_id"]).team == team

    veras = make_credential(vera_viewer, "openai", name="vera's own")
    assert_error(
        api_for(vera_viewer).post("/api/completions", completion_body(veras, team=team.pk)),
        403,
        "permission_denied",
    )
    charlies = make_credential(charlie_outsider, "openai", name="charlie's own")
    assert_error(
        api_for(charlie_outsider).post("/api/completions", completion_body(charlies, team=team.pk)),
        404,
        "not_found",
    )
    assert UsageRecord.objects.filter(team=team).count() == 1


def test_a_credential_can_be_deleted_after_another_deleted_one_had_usage_that_day(
    alice, api_for, make_credential
):
    """Issue 7: the second delete failed with 500 — both rollup rows became (day, alice, no
    team, NULL credential, model), which the unique constraint refuses. A leaked key must always
    be deletable; the day's totals stay whole."""
    from billing.models import DailyUsage

    api = api_for(alice)
    first, second = (make_credential(alice, "openai", name=name) for name in ("one", "two"))
    for credential in (first, second, second):
        assert api.post("/api/completions", completion_body(credential)).status_code == 200
    totals = DailyUsage.objects.filter(user=alice).values_list("calls", "input_tokens", "cost")
    expected = [sum(column) for column in zip(*totals, strict=True)]

    assert api.delete(f"/api/credentials/{first.pk}/").status_code == 204
    assert api.delete(f"/api/credentials/{second.pk}/").status_code == 204

    [row] = DailyUsage.objects.filter(user=alice)
    assert row.credential_id is None
    assert [row.calls, row.input_tokens, row.cost] == expected
    assert UsageRecord.objects.filter(credential_name="two").count() == 2  # history kept


def test_an_admin_can_delete_credentials_whose_rollups_collide(alice, make_credential, client):
    from billing.models import DailyUsage
    from billing.services import usage_record

    credentials = [make_credential(alice, "openai", name=f"key {i}") for i in range(3)]
    for credential in credentials:
        usage_record(
            user=alice,
            team_id=None,
            credential=credential,
            credential_name=credential.name,
            preset="openai",
            provider_id="openai",
            model="gpt-4o-mini",
            status="ok",
            input_tokens=10,
            output_tokens=5,
            cost=None,
            cost_source="unpriced",
        )
    alice.is_staff = alice.is_superuser = True
    alice.save()
    client.force_login(alice)
    response = client.post(
        f"/admin/providers/providercredential/{credentials[0].pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    response = client.post(
        "/admin/providers/providercredential/",
        {
            "action": "delete_selected",
            "_selected_action": [c.pk for c in credentials[1:]],
            "post": "yes",
        },
    )
    assert response.status_code == 302
    assert not ProviderCredential.objects.exists()
    [row] = DailyUsage.objects.filter(user=alice)
    assert (row.credential_id, row.calls, row.input_tokens, row.unpriced_calls) == (None, 3, 30, 3)


def test_a_member_may_use_a_team_credential_but_a_viewer_may_not(
    team, bob_teammate, vera_viewer, api_for, team_credential
):
    used = api_for(bob_teammate).post("/api/completions", completion_body(team_credential))
    assert used.status_code == 200, used.content
    assert UsageRecord.objects.get(pk=used.json()["usage_id"]).team == team

    assert_error(
        api_for(vera_viewer).post("/api/completions", completion_body(team_credential)),
        403,
        "permission_denied",
    )
    assert UsageRecord.objects.count() == 1


def test_an_owner_updates_a_credential_and_an_empty_key_keeps_the_stored_one(
    alice, api_for, make_credential
):
    credential = make_credential(alice, "openai", name="Work")
    url = f"/api/credentials/{credential.pk}/"
    api = api_for(alice)

    renamed = api.patch(url, {"name": "Work main", "api_key": "", "is_active": False})
    assert renamed.status_code == 200, renamed.content
    assert renamed.json()["name"] == "Work main"
    assert renamed.json()["is_active"] is False
    assert renamed.json()["api_key_masked"] == "sk-…6789"

    moved = api.patch(url, {"base_url": "https://proxy.example.com/v1"})
    assert moved.json()["base_url"] == "https://proxy.example.com/v1"
    assert moved.json()["has_key"] is False
    assert moved.json()["api_key_masked"] == ""

    rekeyed = api.patch(url, {"api_key": "sk-proxy-key-98765"})
    assert rekeyed.json()["api_key_masked"] == "sk-…8765"
    assert "sk-proxy-key-98765" not in rekeyed.content.decode()
    credential.refresh_from_db()
    assert credential.api_key == "sk-proxy-key-98765"

    bad = assert_error(api.patch(url, {"base_url": "gopher://x"}), 400, "invalid")
    assert "base_url" in bad["fields"]


def test_an_owner_deletes_a_credential_and_its_usage_stays(alice, api_for, make_credential):
    credential = make_credential(alice, "openai", name="Old")
    api = api_for(alice)
    usage_id = api.post("/api/completions", completion_body(credential)).json()["usage_id"]

    response = api.delete(f"/api/credentials/{credential.pk}/")

    assert response.status_code == 204
    assert not ProviderCredential.objects.filter(pk=credential.pk).exists()
    row = UsageRecord.objects.get(pk=usage_id)
    assert row.credential_id is None
    assert row.credential_name == "Old"
    assert api.get(f"/api/credentials/{credential.pk}/").status_code == 404


@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume asynchronous iterators")
def test_the_key_is_in_no_response(
    alice, team, api_for, client_for, make_credential, fake_provider
):
    """Every read of a credential, including a failed test whose provider echoes the key back."""
    credential = make_credential(alice, "openai")
    api = api_for(alice)
    fake_provider.configure(echo_auth=True)
    responses = [
        api.get("/api/credentials/"),
        api.get(f"/api/credentials/{credential.pk}/"),
        api.post(f"/api/credentials/{credential.pk}/test/"),
        api.post(f"/api/credentials/{credential.pk}/models/"),
        api.post("/api/completions", completion_body(credential)),
        api.post("/api/completions", completion_body(credential, stream=True)),
        api.get("/api/usage/"),
    ]

    for response in responses:
        content = b"".join(response) if response.streaming else response.content
        assert b"0123456789" not in content, response.request["PATH_INFO"]


# --- Connection test and catalogue ---------------------------------------------------------------


def test_a_connection_test_returns_the_recorded_result(
    alice, api_for, make_credential, fake_provider
):
    credential = make_credential(alice, "openai")
    api = api_for(alice)

    ok = api.post(f"/api/credentials/{credential.pk}/test/")
    assert ok.status_code == 200
    assert ok.json()["last_test_ok"] is True
    assert ok.json()["last_test_message"].endswith("3 models available.")
    assert ok.json()["models_fetched_at"]

    fake_provider.configure(echo_auth=True)
    failed = api.post(f"/api/credentials/{credential.pk}/test/")
    assert failed.status_code == 200
    assert failed.json()["last_test_ok"] is False
    assert failed.json()["last_test_message"].startswith("auth_failed:")


def test_a_viewer_cannot_run_a_connection_test(team, vera_viewer, api_for, team_credential):
    assert_error(
        api_for(vera_viewer).post(f"/api/credentials/{team_credential.pk}/test/"),
        403,
        "permission_denied",
    )


def test_the_catalogue_lists_models_with_prices_unpriced_and_local(
    alice, api_for, make_credential, fake_provider
):
    fake_provider.configure(
        models={"openai": ["gpt-4o-mini", "mystery-model-x", "text-embedding-3-small"]}
    )
    paid = make_credential(alice, "openai")
    local = make_credential(alice, "openai_compatible", api_key="", is_local=True)
    api = api_for(alice)
    url = f"/api/credentials/{paid.pk}/models/"

    assert api.get(url).json() == []  # nothing listed yet
    refreshed = api.post(url)
    assert refreshed.status_code == 200, refreshed.content
    assert refreshed.json() == api.get(url).json()
    models = {m["id"]: m for m in refreshed.json()}

    assert set(models) == {"gpt-4o-mini", "mystery-model-x", "text-embedding-3-small"}
    mini = models["gpt-4o-mini"]
    assert set(mini) == {
        "id", "kind", "label", "family", "size_bytes", "context_window", "local", "price_source",
        "input_per_mtok", "output_per_mtok", "per_request", "details",
    }  # fmt: skip
    assert (mini["kind"], mini["local"], mini["price_source"]) == ("chat", False, "genai-prices")
    assert (mini["input_per_mtok"], mini["output_per_mtok"]) == ("0.15", "0.6")
    mystery = models["mystery-model-x"]
    assert (mystery["price_source"], mystery["input_per_mtok"], mystery["output_per_mtok"]) == (
        "unpriced",
        None,
        None,
    )
    assert models["text-embedding-3-small"]["kind"] == "embedding"

    local_models = api.post(f"/api/credentials/{local.pk}/models/").json()
    assert local_models
    assert all(
        m["local"] and m["price_source"] == "local" and m["input_per_mtok"] is None
        for m in local_models
    )


def test_a_failed_refresh_is_a_provider_error(alice, api_for, make_credential, fake_provider):
    credential = make_credential(alice, "openai")
    fake_provider.configure(echo_auth=True)

    error = assert_error(
        api_for(alice).post(f"/api/credentials/{credential.pk}/models/"), 502, "auth_failed"
    )

    assert KEY not in error["message"]


def test_an_outsider_cannot_see_or_refresh_the_catalogue(
    charlie_outsider, api_for, team_credential, fake_provider
):
    charlie = api_for(charlie_outsider)
    assert_error(charlie.get(f"/api/credentials/{team_credential.pk}/models/"), 404, "not_found")
    assert_error(charlie.post(f"/api/credentials/{team_credential.pk}/models/"), 404, "not_found")
    assert fake_provider.requests == []


# --- Completions: JSON -----------------------------------------------------------------------------


def test_a_completion_returns_text_usage_cost_and_timing(
    alice, api_for, make_credential, fake_provider
):
    credential = make_credential(alice, "openai")

    response = api_for(alice).post(
        "/api/completions", completion_body(credential, system="Be brief.", temperature=0.2)
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["text"] == FAKE_REPLY
    assert body["finish_reason"] == "stop"
    assert body["usage"] == {
        "input_tokens": 4,
        "output_tokens": 11,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "estimated": False,
    }
    assert body["cost"]["source"] == "provider"
    assert body["cost"]["usd"] == "0.0000072"  # (4 × $0.15 + 11 × $0.60) / 1M, a plain decimal
    assert body["cost"]["display"] == "$0.0000072"
    assert set(body["timing"]) == {
        "ttft_ms",
        "ttft_with_retries_ms",
        "retry_wait_ms",
        "reasoning_ms",
        "duration_ms",
        "tokens_per_second",
    }
    assert body["timing"]["duration_ms"] > 0
    assert body["attempts"] == 1
    row = UsageRecord.objects.get(pk=body["usage_id"])
    assert (row.user, row.credential, row.model, row.status, row.feature) == (
        alice,
        credential,
        "gpt-4o-mini",
        "ok",
        "api",
    )
    [sent] = fake_provider.requests
    assert sent.body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent.body["temperature"] == 0.2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model": None}, "model"),
        ({"messages": []}, "messages"),
        ({"temperature": 3}, "temperature"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages"),
        ({"max_tokens": 0}, "max_tokens"),
    ],
)
def test_an_invalid_completion_request_names_the_field(
    alice, api_for, make_credential, fake_provider, change, field
):
    body = completion_body(make_credential(alice, "openai"))
    for key, value in change.items():
        if value is None:
            del body[key]
        else:
            body[key] = value

    error = assert_error(api_for(alice).post("/api/completions", body), 400, "invalid")

    assert set(error["fields"]) == {field}
    assert fake_provider.requests == []
    assert not UsageRecord.objects.exists()


def test_a_rate_limit_maps_to_429_with_the_usage_row(
    alice, api_for, make_credential, fake_provider
):
    credential = make_credential(alice, "openai")
    fake_provider.enqueue(status=429, retry_after=7)

    error = assert_error(
        api_for(alice).post("/api/completions", completion_body(credential)), 429, "rate_limited"
    )

    assert error["retry_after"] == 7
    row = UsageRecord.objects.get(pk=error["usage_id"])
    assert (row.status, row.error_code) == ("error", "rate_limited")


def test_a_rejected_key_maps_to_502_auth_failed_without_the_key(
    alice, api_for, make_credential, fake_provider
):
    credential = make_credential(alice, "openai")
    fake_provider.enqueue(echo_auth=True)

    response = api_for(alice).post("/api/completions", completion_body(credential))

    error = assert_error(response, 502, "auth_failed")
    assert UsageRecord.objects.get(pk=error["usage_id"]).error_code == "auth_failed"
    assert "0123456789" not in response.content.decode()


def test_an_inactive_credential_is_a_conflict(alice, api_for, make_credential, fake_provider):
    credential = make_credential(alice, "openai", is_active=False)

    error = assert_error(
        api_for(alice).post("/api/completions", completion_body(credential)), 409, "inactive"
    )

    assert error["usage_id"]
    assert fake_provider.requests == []


def test_a_foreign_credential_id_in_the_body_is_not_found(
    alice, charlie_outsider, api_for, make_credential, fake_provider
):
    charlies = make_credential(charlie_outsider, "openai")

    assert_error(
        api_for(alice).post("/api/completions", completion_body(charlies)), 404, "not_found"
    )
    assert_error(
        api_for(alice).post(
            "/api/completions", {**completion_body(charlies), "credential": 999999}
        ),
        404,
        "not_found",
    )
    assert fake_provider.requests == []
    assert not UsageRecord.objects.exists()


def test_a_read_only_token_cannot_call_a_model(alice, api_for, make_credential, fake_provider):
    credential = make_credential(alice, "openai")
    reader = api_for(alice, "read")

    assert_error(
        reader.post("/api/completions", completion_body(credential)), 403, "permission_denied"
    )
    assert_error(reader.post(f"/api/credentials/{credential.pk}/test/"), 403, "permission_denied")
    assert reader.get(f"/api/credentials/{credential.pk}/").status_code == 200
    assert fake_provider.requests == []


def test_the_echo_credential_works_through_the_api(alice, api_for, client_for, fake_provider):
    client_for(alice).get("/settings/providers/")  # creates the personal Echo credential
    echo = ProviderCredential.objects.get(owner_user=alice, preset="echo")

    response = api_for(alice).post(
        "/api/completions",
        {
            "credential": echo.pk,
            "model": "echo",
            "system": "SYS-PROMPT",
            "messages": [{"role": "user", "content": "USER-TEXT"}],
        },
    )

    body = response.json()
    assert "SYS-PROMPT" in body["text"]
    assert "USER-TEXT" in body["text"]
    assert body["cost"]["source"] == "local"
    assert body["cost"]["usd"] == "0"
    assert body["cost"]["display"] == "$0.00 local"
    assert fake_provider.requests == []


# --- Completions: Server-Sent Events -------------------------------------------------------------


def parse_sse(raw: str) -> list[tuple[str, dict]]:
    events = []
    for block in raw.split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


@pytest.fixture
async def close_thread_connections():
    """Async tests reach the database from asgiref's single sync thread; close its connection
    afterwards (the root conftest's helper closes the main thread's), so the test database can
    be dropped at the end of the session."""
    yield
    await sync_to_async(connections.close_all)()


async def stream_completion(user, token_for, body: dict):
    token = await sync_to_async(token_for)(user, "write")
    # Per request: AsyncClient(headers=...) does not reach the ASGI scope.
    response = await AsyncClient().post(
        "/api/completions", json.dumps(body), content_type="application/json", headers=bearer(token)
    )
    chunks = [chunk async for chunk in response.streaming_content]
    return response, b"".join(chunks).decode(), chunks


@pytest.mark.django_db(transaction=True)
async def test_a_streamed_completion_sends_deltas_then_one_finished_event(
    alice, token_for, make_credential, fake_provider, close_thread_connections
):
    credential = await sync_to_async(make_credential)(alice, "openai")
    # Paced like a real model, so tokens arrive one by one (a burst would be coalesced).
    fake_provider.configure(tokens_per_second=100)

    response, raw, chunks = await stream_completion(
        alice, token_for, completion_body(credential, stream=True)
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache"
    events = parse_sse(raw)
    names = [name for name, _ in events]
    assert names[-1] == "finished"
    assert names.count("finished") == 1
    assert set(names[:-1]) == {"delta"}
    assert len(names) > 2  # streamed token by token, not in one piece
    assert len(chunks) > 2
    assert "".join(data["text"] for name, data in events if name == "delta") == FAKE_REPLY
    finished = events[-1][1]
    assert "text" not in finished
    assert finished["usage"]["output_tokens"] == 11
    assert finished["cost"]["source"] == "provider"
    row = await UsageRecord.objects.aget(pk=finished["usage_id"])
    assert row.status == "ok"


@pytest.mark.django_db(transaction=True)
async def test_a_provider_failure_mid_request_ends_the_stream_with_an_error_event(
    alice, token_for, make_credential, fake_provider, close_thread_connections
):
    credential = await sync_to_async(make_credential)(alice, "openai")
    fake_provider.enqueue(status=500)

    response, raw, _ = await stream_completion(
        alice, token_for, completion_body(credential, stream=True)
    )

    assert response.status_code == 200  # the stream had started; the error is an event
    events = parse_sse(raw)
    [(name, error)] = events
    assert name == "error"
    assert error["code"] == "provider_error"
    assert error["message"]
    row = await UsageRecord.objects.aget(pk=error["usage_id"])
    assert (row.status, row.error_code) == ("error", "provider_error")


@pytest.mark.django_db(transaction=True)
async def test_an_in_band_error_after_some_tokens_keeps_the_deltas_then_errors(
    alice, token_for, make_credential, fake_provider, close_thread_connections
):
    credential = await sync_to_async(make_credential)(alice, "openai")
    fake_provider.enqueue(error_event_after=3)

    _, raw, _ = await stream_completion(alice, token_for, completion_body(credential, stream=True))

    events = parse_sse(raw)
    # Deltas that arrive together leave as one event (coalescing): the text is what counts.
    assert [name for name, _ in events][-1] == "error"
    assert {name for name, _ in events[:-1]} == {"delta"}
    assert "".join(data["text"] for _, data in events[:-1]) == "Hello from the "


@pytest.mark.django_db(transaction=True)
async def test_a_client_that_accepts_only_event_streams_gets_the_stream(
    alice, token_for, make_credential, fake_provider, close_thread_connections
):
    """BUG: the Try-it box (providers/static/providers/try.js) and ordinary SSE clients send
    `Accept: text/event-stream`; DRF's content negotiation knows only JSON renderers and answers
    406 "Could not satisfy the request Accept header." before the view runs."""
    credential = await sync_to_async(make_credential)(alice, "openai")
    token = await sync_to_async(token_for)(alice, "write")

    response = await AsyncClient().post(
        "/api/completions",
        json.dumps(completion_body(credential, stream=True)),
        content_type="application/json",
        headers={**bearer(token), "Accept": "text/event-stream"},
    )

    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/event-stream"
    raw = b"".join([chunk async for chunk in response.streaming_content]).decode()
    assert [name for name, _ in parse_sse(raw)][-1] == "finished"


def test_errors_come_as_json_even_to_a_client_that_accepts_event_streams(
    alice, api_for, make_credential, fake_provider
):
    """Same bug: a validation error must still be the JSON error body (try.js reads it)."""
    credential = make_credential(alice, "openai")
    api = api_for(alice)

    response = api.client.post(
        "/api/completions",
        json.dumps(completion_body(credential, stream=True, temperature=3)),
        content_type="application/json",
        headers={"Accept": "text/event-stream"},
    )

    error = assert_error(response, 400, "invalid")
    assert set(error["fields"]) == {"temperature"}


# --- Usage -----------------------------------------------------------------------------------------


def test_usage_lists_own_rows_and_a_teams_rows_for_its_members(
    alice,
    team,
    bob_teammate,
    vera_viewer,
    charlie_outsider,
    api_for,
    make_credential,
    team_credential,
):
    personal = make_credential(alice, "openai", name="Alice's")
    alice_api = api_for(alice)
    own_id = alice_api.post("/api/completions", completion_body(personal)).json()["usage_id"]
    team_id = (
        api_for(bob_teammate)
        .post("/api/completions", completion_body(team_credential))
        .json()["usage_id"]
    )

    own = alice_api.get("/api/usage/")
    assert own.status_code == 200
    body = own.json()
    assert set(body) >= {"count", "next", "previous", "results"}
    assert [row["id"] for row in body["results"]] == [own_id]
    assert body["results"][0]["credential_name"] == "Alice's"
    assert body["results"][0]["user"] == "alice"

    for user in (alice, bob_teammate, vera_viewer):
        rows = api_for(user).get("/api/usage/", {"team": team.pk}).json()["results"]
        assert [row["id"] for row in rows] == [team_id], user
        assert rows[0]["user"] == "bob_teammate"

    assert [row["id"] for row in api_for(bob_teammate).get("/api/usage/").json()["results"]] == [
        team_id
    ]
    assert api_for(vera_viewer).get("/api/usage/").json()["results"] == []
    assert_error(api_for(charlie_outsider).get("/api/usage/", {"team": team.pk}), 404, "not_found")
    assert api_for(charlie_outsider).get("/api/usage/").json()["results"] == []


def test_usage_is_paginated(alice, api_for, make_credential, fake_provider):
    credential = make_credential(alice, "openai")
    api = api_for(alice)
    for _ in range(3):
        api.post("/api/completions", completion_body(credential))

    first = api.get("/api/usage/", {"page_size": 2}).json()

    assert first["count"] == 3
    assert len(first["results"]) == 2
    assert first["previous"] is None
    assert first["next"]
    second = api.get("/api/usage/", {"page_size": 2, "page": 2}).json()
    assert len(second["results"]) == 1
    ids = [row["id"] for row in first["results"] + second["results"]]
    assert ids == sorted(ids, reverse=True)  # newest first


# --- Broken and thinking completions (issue 8) -------------------------------------------------------

LOREM_20 = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor"


def test_a_json_completion_that_breaks_off_returns_its_partial_text_with_the_error(
    alice, api_for, make_credential, fake_provider
):
    credential = make_credential(alice, "openai")
    fake_provider.enqueue(reply_tokens=20, disconnect_after=3)

    error = assert_error(
        api_for(alice).post("/api/completions", completion_body(credential)),
        502,
        "stream_interrupted",
    )

    assert error["partial_text"] == "lorem ipsum dolor "
    assert error["partial_reasoning"] == ""
    row = UsageRecord.objects.get(pk=error["usage_id"])
    assert row.output_tokens > 0 and row.tokens_estimated


def test_a_json_completion_that_stalls_returns_its_partial_text_with_the_timeout(
    alice, api_for, make_credential, fake_provider, settings
):
    settings.WORKBENCH_PROVIDER_TIMEOUTS = {"connect": 2.0, "read": 0.5, "total": 20.0}
    credential = make_credential(alice, "openai")
    fake_provider.enqueue(reply_tokens=20, reasoning="Hmm.", stall_after=3)

    error = assert_error(
        api_for(alice).post("/api/completions", completion_body(credential)), 504, "timeout"
    )

    assert error["partial_reasoning"] == "Hmm."
    assert error["partial_text"] == "lorem ipsum "
    assert error["message"].startswith("The provider stopped sending the reply")


def test_a_json_completion_returns_reasoning_and_every_kind_of_token(
    alice, api_for, make_credential, fake_provider
):
    credential = make_credential(alice, "openai")
    fake_provider.enqueue(
        reasoning="Let me think. ", reply="Forty-two.", prompt_tokens=1200, cache_read_tokens=1000
    )

    body = api_for(alice).post("/api/completions", completion_body(credential)).json()

    assert (body["reasoning"], body["text"]) == ("Let me think. ", "Forty-two.")
    usage = body["usage"]
    assert (usage["input_tokens"], usage["cache_read_tokens"]) == (1200, 1000)
    assert (usage["output_tokens"], usage["reasoning_tokens"]) == (4, 3)
    assert body["timing"]["reasoning_ms"] is not None
    assert body["timing"]["ttft_with_retries_ms"] == body["timing"]["ttft_ms"]


@pytest.mark.django_db(transaction=True)
async def test_a_streamed_completion_sends_reasoning_events_before_the_deltas(
    alice, token_for, make_credential, fake_provider, close_thread_connections
):
    credential = await sync_to_async(make_credential)(alice, "anthropic")
    fake_provider.enqueue(reasoning="First, a thought. ", reply="Then an answer.")

    _, raw, _ = await stream_completion(
        alice, token_for, completion_body(credential, model="claude-3-5-haiku-latest", stream=True)
    )

    events = parse_sse(raw)
    names = [name for name, _ in events]
    assert names[0] == "reasoning" and names[-1] == "finished"
    assert names.index("delta") > max(i for i, n in enumerate(names) if n == "reasoning")
    assert "".join(d["text"] for n, d in events if n == "reasoning") == "First, a thought. "
    assert "".join(d["text"] for n, d in events if n == "delta") == "Then an answer."
    assert events[-1][1]["usage"]["reasoning_tokens"] > 0
