"""REST for the playground: comparisons CRUD, estimate, runs (JSON and Server-Sent Events), the
events of a run, stop, winner, ratings, code, the arena (pool, battles, votes, leaderboard) —
answers in the project's error shape. Runs use Echo (offline) unless the fake provider is
needed."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient

from chats.tests.test_api import parse_sse
from playground import arena, estimates, services
from playground.models import Answer, Comparison, Run
from playground.services import SlotData
from providers import services as provider_services
from providers.models import ProviderModel
from tests.api_client import assert_error, bearer


def echo_pair(user):
    echo = provider_services.credentials_ensure_echo(user=user)
    ProviderModel.objects.get_or_create(credential=echo, model_id="echo-b")
    return echo


@pytest.mark.django_db
def test_comparisons_are_created_read_changed_and_deleted(alice, api_for):
    echo = echo_pair(alice)
    api = api_for(alice)
    created = api.post(
        "/api/comparisons/",
        {
            "title": "Two echoes",
            "system_prompt": "Sys",
            "history": [{"role": "user", "content": "Q0"}, {"role": "assistant", "content": "A0"}],
            "prompt": "Q1",
            "slots": [
                {"credential": echo.pk, "model": "echo", "params": {"temperature": 0.1}},
                {"credential": echo.pk, "model": "echo-b", "system_prompt": "Own"},
            ],
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["owner"] == {"type": "user", "team_id": None}
    assert [(s["model"], s["params"], s["system_prompt"]) for s in body["slots"]] == [
        ("echo", {"temperature": 0.1}, ""),
        ("echo-b", {}, "Own"),
    ]
    pk = body["id"]
    assert api.get("/api/comparisons/").json()["results"][0]["id"] == pk
    keep = body["slots"][1]["id"]
    changed = api.patch(
        f"/api/comparisons/{pk}/",
        {
            "title": "Renamed",
            "slots": [
                {"id": keep, "credential": echo.pk, "model": "echo-b"},
                {"credential": echo.pk, "model": "echo"},
                {"credential": echo.pk, "model": "echo", "params": {"max_tokens": 3}},
            ],
        },
    ).json()
    assert changed["title"] == "Renamed" and changed["prompt"] == "Q1"
    assert changed["slots"][0]["id"] == keep and len(changed["slots"]) == 3
    estimate = api.get(f"/api/comparisons/{pk}/estimate/").json()
    assert estimate["total"] == "0E-9" or float(estimate["total"]) == 0
    assert [s["source"] for s in estimate["slots"]] == ["local"] * 3
    assert api.delete(f"/api/comparisons/{pk}/").status_code == 204
    assert not Comparison.objects.exists()


@pytest.mark.django_db
def test_bad_input_gets_a_clear_4xx_in_the_error_shape(alice, api_for):
    echo = echo_pair(alice)
    api = api_for(alice)
    pk = services.comparison_create(actor=alice, slots=[SlotData(echo, "echo")] * 2).pk
    cases = [
        ("post", "/api/comparisons/", {"slots": [{"credential": echo.pk, "model": "e"}] * 9}),
        ("post", "/api/comparisons/", {"history": [{"role": "system", "content": "x"}]}),
        ("post", "/api/comparisons/", {"slots": [{"credential": "abc", "model": "e"}]}),
        (
            "patch",
            f"/api/comparisons/{pk}/",
            {"slots": [{"credential": echo.pk, "model": "e", "params": {"temperature": 9}}]},
        ),
        ("post", f"/api/comparisons/{pk}/runs/", {}),  # no prompt yet
        (
            "patch",
            f"/api/comparisons/{pk}/",
            {"slots": [{"id": 999999, "credential": echo.pk, "model": "e"}]},
        ),
    ]
    for method, url, data in cases:
        response = getattr(api, method)(url, data)
        assert 400 <= response.status_code < 500, (url, data, response.content)
        assert set(response.json()) == {"error"}, response.content
    assert api.get("/api/comparisons/abc/").status_code == 404
    assert api.get("/api/runs/999999/").status_code == 404
    response = api.get("/api/arena/leaderboard/", {"since": "yesterday-ish"})
    assert_error(response, 400, "invalid")
    # Offsets Python takes but PostgreSQL doesn't (beyond ±16 h) were a 500 (the API fuzz).
    far = api.get("/api/arena/leaderboard/", {"since": "1608-03-25T15:20:32+21:20"})
    assert far.status_code == 200, far.content
    assert (
        api.get("/api/arena/leaderboard/", {"until": "0001-01-01T00:10:00+21:20"}).status_code
        == 400
    )


@pytest.mark.django_db
def test_a_run_answers_json_when_every_answer_is_final(alice, api_for):
    echo = echo_pair(alice)
    comparison = services.comparison_create(
        actor=alice, prompt="Echo me", slots=[SlotData(echo, "echo"), SlotData(echo, "echo-b")]
    )
    api = api_for(alice)
    response = api.post(f"/api/comparisons/{comparison.pk}/runs/", {})
    assert response.status_code == 201, response.content
    run = response.json()
    assert run["number"] == 1 and run["finished_at"] and run["wall_ms"] > 0
    assert [a["status"] for a in run["answers"]] == ["complete", "complete"]
    assert all("Echo me" in a["text"] for a in run["answers"])
    assert [a["model"] for a in run["answers"]] == ["echo", "echo-b"]
    assert all(a["cost_source"] == "local" and a["usage"] for a in run["answers"])
    listed = api.get(f"/api/comparisons/{comparison.pk}/runs/").json()["results"]
    assert [r["id"] for r in listed] == [run["id"]] and "answers" not in listed[0]
    first, second = run["answers"]
    assert (
        api.patch(f"/api/runs/{run['id']}/", {"winner_id": second["id"]}).json()["winner"]
        == second["id"]
    )
    rated = api.patch(f"/api/answers/{first['id']}/", {"rating": 4, "note": "fine"}).json()
    assert (rated["rating"], rated["note"]) == (4, "fine")
    assert api.patch(f"/api/answers/{first['id']}/", {"rating": 9}).status_code == 400
    assert api.get(f"/api/answers/{first['id']}/code/").json() == []  # Echo: nothing to call
    assert api.post(f"/api/runs/{run['id']}/stop/", {}).json() == {"stopping": []}


@pytest.mark.django_db
def test_a_soft_budget_answers_409_with_the_estimate_until_confirmed(alice, api_for, monkeypatch):
    echo = echo_pair(alice)
    comparison = services.comparison_create(
        actor=alice, prompt="hi", slots=[SlotData(echo, "echo"), SlotData(echo, "echo-b")]
    )
    note = estimates.BudgetNote("soft", "Over your soft limit.")
    monkeypatch.setattr(estimates, "budget_notes", lambda **kw: [note])
    api = api_for(alice)
    refused = api.post(f"/api/comparisons/{comparison.pk}/runs/", {})
    error = assert_error(refused, 409, "needs_confirmation")
    assert error["estimate"]["warnings"] == ["Over your soft limit."]
    assert not Run.objects.exists()
    assert api.post(f"/api/comparisons/{comparison.pk}/runs/", {"confirm": True}).status_code == 201


@pytest.fixture
async def close_thread_connections():
    yield
    await sync_to_async(connections.close_all)()


@pytest.mark.django_db(transaction=True)
async def test_a_streamed_run_sends_started_deltas_answers_and_finished(
    alice, token_for, make_credential, fake_provider, close_thread_connections
):
    fake_provider.configure(reply_tokens=20, tokens_per_second=200)

    @sync_to_async
    def setup():
        credential = make_credential(alice, "openai")
        comparison = services.comparison_create(
            actor=alice,
            prompt="Stream it",
            slots=[SlotData(credential, "gpt-4o-mini"), SlotData(credential, "gpt-4o")],
        )
        return comparison, token_for(alice, "write")

    comparison, token = await setup()
    response = await AsyncClient().post(
        f"/api/comparisons/{comparison.pk}/runs/",
        json.dumps({"stream": True}),
        content_type="application/json",
        headers={**bearer(token), "Accept": "text/event-stream"},
    )
    assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"
    events = parse_sse(b"".join([c async for c in response.streaming_content]).decode())
    names = [name for name, _ in events]
    assert names[0] == "started" and names[-1] == "finished"
    assert names.count("answer") == 2 and names.count("delta") >= 4
    run = events[-1][1]
    for answer in run["answers"]:
        text = ""
        for name, data in events:
            if name == "delta" and data["answer"] == answer["id"]:
                assert data["offset"] == len(text)
                text += data["text"]
        assert text == answer["text"] and answer["status"] == "complete"

    # The events of a finished run: where it stands, then finished.
    response = await AsyncClient().get(
        f"/api/runs/{run['id']}/events/", headers={**bearer(token), "Accept": "text/event-stream"}
    )
    events = parse_sse(b"".join([c async for c in response.streaming_content]).decode())
    assert [name for name, _ in events] == ["started", "finished"]


@pytest.mark.django_db
def test_battles_run_hide_the_names_take_one_vote_and_feed_the_leaderboard(
    alice, api_for, fresh_cache
):
    echo = echo_pair(alice)
    api = api_for(alice)
    pool = [{"credential": echo.pk, "model": "echo"}, {"credential": echo.pk, "model": "echo-b"}]
    put = api.client.put("/api/arena/pool/", json.dumps(pool), content_type="application/json")
    assert put.status_code == 200
    assert len(api.get("/api/arena/pool/").json()) == 2
    created = api.post("/api/arena/battles/", {"prompt": "Pick a number.", "tag": "Maths"})
    assert created.status_code == 201, created.content
    battle = created.json()
    assert battle["models"] is None and battle["tag"] == "maths"
    assert [a["side"] for a in battle["answers"]] == ["a", "b"]
    assert all(a["status"] == "complete" and "model" not in a for a in battle["answers"])
    voted = api.post(f"/api/arena/battles/{battle['id']}/vote/", {"vote": "b"})
    assert voted.status_code == 200 and voted.json()["models"]
    again = api.post(f"/api/arena/battles/{battle['id']}/vote/", {"vote": "a"})
    assert_error(again, 409, "conflict")
    board = api.get("/api/arena/leaderboard/", {"tag": "maths"}).json()
    assert board["votes"] == 1 and board["tags"] == ["maths"]
    assert board["standings"][0]["model"] == voted.json()["models"]["b"]
    assert board["position_bias"]["decisive"] == 1 and board["position_bias"]["left_wins"] == 0
    assert Answer.objects.filter(run__battle__pk=battle["id"]).count() == 2


@pytest.mark.django_db
def test_a_battle_without_a_pool_says_what_to_do(alice, api_for):
    response = api_for(alice).post("/api/arena/battles/", {"prompt": "hi"})
    error = assert_error(response, 400, "invalid")
    assert "two different models" in error["message"]


@pytest.mark.django_db
def test_a_read_token_may_read_but_not_run(alice, api_for):
    echo = echo_pair(alice)
    comparison = services.comparison_create(
        actor=alice, prompt="hi", slots=[SlotData(echo, "echo")] * 2
    )
    reader = api_for(alice, scope="read")
    assert reader.get(f"/api/comparisons/{comparison.pk}/").status_code == 200
    assert reader.post(f"/api/comparisons/{comparison.pk}/runs/", {}).status_code == 403
    assert reader.post("/api/arena/battles/", {"prompt": "x"}).status_code == 403
    assert not Run.objects.exists()
    arena.pool_for(owner=alice)
