"""Runs over the comparison websocket (`ws/playground/<id>/`), through the real ASGI application
and the gate, against fake providers over real HTTP — one fake server per slot where the slots
must behave differently (fast, slow, failing, stalled).

ACCEPTANCE (issue 12): every slot streams at once over one websocket; a failing or stalled slot
never delays the others and each slot has its own usage row; Stop one or all; closing the tab
loses nothing; hard budgets refuse per slot. The per-persona and foreign-id answers are in
tests/test_access_matrix.py."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from billing.models import UsageRecord
from chats.tests.test_consumers import joined, of_type
from playground import estimates, runs, services
from playground.models import Answer, Comparison, Run
from playground.services import SlotData
from providers.fakeserver import FakeProvider
from providers.models import ProviderCredential
from tests.websocket import connect

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 8


@pytest.fixture(autouse=True)
async def _no_answer_left_running():
    yield
    for kind in runs.KINDS:
        for reply in list(kind.running.values()):
            reply.stop()
            if reply.task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(reply.task), 5)
    await sync_to_async(connections.close_all)()


@pytest.fixture
def fakes(settings):
    """`fakes(n)` → n more fake provider servers on loopback (each with its own knobs), let
    through the egress guard; stopped after the test."""
    started: list[FakeProvider] = []

    def make(n: int) -> list[FakeProvider]:
        for _ in range(n):
            server = FakeProvider().start()
            started.append(server)
            settings.WORKBENCH_EGRESS_ALLOW = [
                *settings.WORKBENCH_EGRESS_ALLOW,
                f"127.0.0.1:{server.port}",
            ]
        return started[-n:]

    yield make
    for server in started:
        server.stop()


def credential_on(owner, server: FakeProvider, name: str, preset: str = "openai"):
    credential = ProviderCredential(
        name=name, preset=preset, api_key="sk-test-key-0123456789", base_url=f"{server.url}/v1"
    )
    credential.set_owner(owner)
    credential.save()
    return credential


@sync_to_async
def make_comparison(actor, slots, owner_team=None, prompt="Count to three") -> Comparison:
    return services.comparison_create(
        actor=actor, owner_team=owner_team, prompt=prompt, slots=slots
    )


@sync_to_async
def answers_of(run_id: int) -> list[Answer]:
    return list(Answer.objects.filter(run_id=run_id).order_by("position"))


@sync_to_async
def get_run(run_id: int) -> Run:
    return Run.objects.get(pk=run_id)


@sync_to_async
def usage_rows(run_id: int) -> list[UsageRecord]:
    return list(UsageRecord.objects.filter(context__run=run_id).order_by("id"))


async def run_until_done(ws, message=None, timeout=TIMEOUT) -> tuple[dict, list[dict]]:
    """Send `run`, collect frames until the one that closes the run."""
    await ws.send_json_to(message or {"type": "run"})
    frames, deadline = [], time.monotonic() + timeout
    while True:
        frame = await ws.receive_json_from(timeout=max(0.05, deadline - time.monotonic()))
        frames.append(frame)
        if frame["type"] == "error":
            raise AssertionError(frame)
        if frame["type"] == "final" and frame.get("run"):
            return frames[0], frames


async def test_every_slot_streams_at_once_over_one_socket_and_each_has_its_usage_row(alice, fakes):
    servers = fakes(3)
    texts = ["alpha beta gamma delta", "one two three four five six", "red green blue"]
    for server, text in zip(servers, texts, strict=True):
        server.configure(reply=text, tokens_per_second=20)
    credentials = [
        await sync_to_async(credential_on)(alice, s, f"Fake {i}") for i, s in enumerate(servers)
    ]
    comparison = await make_comparison(
        alice, [SlotData(c, "gpt-4o-mini", {"temperature": 0.2}) for c in credentials]
    )
    async with connect(f"/ws/playground/{comparison.pk}/", user=alice) as (ws, connected):
        assert connected
        assert (await ws.receive_json_from(timeout=TIMEOUT))["type"] == "hello"
        started, frames = await run_until_done(ws)

    assert started["type"] == "run_started" and started["html"].count('data-testid="answer"') == 3
    run = await get_run(started["run"])
    answers = await answers_of(run.pk)
    for answer, text in zip(answers, texts, strict=True):
        deltas = [f for f in of_type(frames, "delta") if f["id"] == answer.pk]
        assert joined(deltas) == text == answer.text
        assert answer.status == "complete" and answer.finish_reason == "stop"
        assert answer.cost > 0 and answer.cost_source == "provider"
        assert answer.ttft_ms is not None and answer.duration_ms > 0
    # Interleaved: the deltas of different answers alternate, they don't come one answer after
    # another.
    order = [f["id"] for f in of_type(frames, "delta")]
    switches = sum(1 for a, b in itertools.pairwise(order) if a != b)
    assert switches >= 6, order
    rows = await usage_rows(run.pk)
    assert sorted(r.context["answer"] for r in rows) == [a.pk for a in answers]
    assert {(r.feature, r.status) for r in rows} == {("playground", "ok")}
    assert run.finished_at is not None and run.cost_total == sum(a.cost for a in answers)
    for server in servers:
        (request,) = [r for r in server.requests if r.method == "POST"]
        assert request.body["temperature"] == 0.2
        assert request.body["messages"] == [{"role": "user", "content": "Count to three"}]


async def test_a_failing_slot_and_a_stalled_slot_never_delay_the_others(alice, fakes, settings):
    settings.WORKBENCH_PROVIDER_TIMEOUTS = {"connect": 2.0, "read": 1.5, "total": 20.0}
    settings.WORKBENCH_PROVIDER_MAX_ATTEMPTS = 1
    fast, failing, stalled = fakes(3)
    fast.configure(reply="quick answer here", tokens_per_second=50)
    failing.configure(status=500)
    stalled.configure(reply="this one stalls after two words", stall_after=2)
    credentials = [
        await sync_to_async(credential_on)(alice, s, n)
        for s, n in ((fast, "Fast"), (failing, "Failing"), (stalled, "Stalled"))
    ]
    comparison = await make_comparison(alice, [SlotData(c, "gpt-4o-mini") for c in credentials])
    async with connect(f"/ws/playground/{comparison.pk}/", user=alice) as (ws, _connected):
        await ws.receive_json_from(timeout=TIMEOUT)
        started_at = time.monotonic()
        started, frames = await run_until_done(ws)
        finals = {f["id"]: time.monotonic() - started_at for f in of_type(frames, "final")}

    answers = await answers_of(started["run"])
    ok, failed, stalled_answer = answers
    assert ok.status == "complete" and ok.text == "quick answer here"
    assert failed.status == "error" and failed.error_code == "provider_error" and not failed.text
    assert stalled_answer.status == "interrupted" and stalled_answer.error_code == "timeout"
    assert stalled_answer.text == "this one "
    # The fast answer's final frame came first, long before the stalled one gave up (1.5 s).
    assert next(iter(finals)) in (ok.pk, failed.pk)
    assert [f["id"] for f in of_type(frames, "final")][-1] == stalled_answer.pk
    rows = {r.context["answer"]: r for r in await usage_rows(started["run"])}
    assert set(rows) == {ok.pk, failed.pk, stalled_answer.pk}  # one usage row each
    assert (rows[ok.pk].status, rows[failed.pk].status, rows[stalled_answer.pk].status) == (
        "ok",
        "error",
        "error",
    )
    assert rows[stalled_answer.pk].output_tokens > 0  # charged for what it sent
    # Wall time is the slowest answer's, not the sum.
    run = await get_run(started["run"])
    assert run.wall_ms < stalled_answer.duration_ms + 1000
    assert "answer-error" in frames[-1]["html"] or "msg-error" in frames[-1]["html"]


async def test_stop_one_answer_then_all_keeps_their_text_as_stopped(alice, fakes):
    servers = fakes(3)
    for server in servers:
        server.configure(reply_tokens=200, tokens_per_second=40)
    credentials = [
        await sync_to_async(credential_on)(alice, s, f"Slow {i}") for i, s in enumerate(servers)
    ]
    comparison = await make_comparison(alice, [SlotData(c, "gpt-4o-mini") for c in credentials])
    async with connect(f"/ws/playground/{comparison.pk}/", user=alice) as (ws, _connected):
        await ws.receive_json_from(timeout=TIMEOUT)
        await ws.send_json_to({"type": "run"})
        started = await ws.receive_json_from(timeout=TIMEOUT)
        first, _second, third = (a.pk for a in await answers_of(started["run"]))
        while True:  # some text for every answer
            frame = await ws.receive_json_from(timeout=TIMEOUT)
            if frame["type"] == "delta" and frame["id"] == third:
                break
        await ws.send_json_to({"type": "stop", "answer_id": first})
        frame = await ws.receive_json_from(timeout=TIMEOUT)
        while not (frame["type"] == "final" and frame["id"] == first):
            frame = await ws.receive_json_from(timeout=TIMEOUT)
        assert frame["status"] == "stopped" and not frame.get("run")
        await ws.send_json_to({"type": "stop_all", "run_id": started["run"]})
        closing = None
        while closing is None:
            frame = await ws.receive_json_from(timeout=TIMEOUT)
            if frame["type"] == "final" and frame.get("run"):
                closing = frame

    answers = await answers_of(started["run"])
    assert [a.status for a in answers] == ["stopped", "stopped", "stopped"]
    assert all(a.text and len(a.text.split()) < 200 for a in answers)
    assert all(a.finish_reason == "stopped" for a in answers)
    rows = await usage_rows(started["run"])
    assert len(rows) == 3 and {r.status for r in rows} == {"stopped"}
    assert (await get_run(started["run"])).finished_at is not None


async def test_closing_the_tab_loses_nothing_the_run_finishes_on_the_server(alice, fakes):
    (server,) = fakes(1)
    server.configure(reply_tokens=30, tokens_per_second=60)
    credential = await sync_to_async(credential_on)(alice, server, "Fake")
    comparison = await make_comparison(
        alice, [SlotData(credential, "gpt-4o-mini"), SlotData(credential, "gpt-4o")]
    )
    async with connect(f"/ws/playground/{comparison.pk}/", user=alice) as (ws, _connected):
        await ws.receive_json_from(timeout=TIMEOUT)
        await ws.send_json_to({"type": "run"})
        started = await ws.receive_json_from(timeout=TIMEOUT)
        await ws.receive_json_from(timeout=TIMEOUT)  # a first delta, then the tab closes
    for reply in list(runs.COMPARE.running.values()):
        await asyncio.wait_for(asyncio.shield(reply.task), TIMEOUT)
    answers = await answers_of(started["run"])
    assert [a.status for a in answers] == ["complete", "complete"]
    assert all(len(a.text.split()) == 30 for a in answers)
    assert (await get_run(started["run"])).finished_at is not None

    # A tab opened later gets the finished run from the page; a socket's hello has nothing live.
    async with connect(f"/ws/playground/{comparison.pk}/", user=alice) as (ws, _connected):
        hello = await ws.receive_json_from(timeout=TIMEOUT)
        assert hello["snapshots"] == []
        await ws.send_json_to({"type": "sync"})
        results = await ws.receive_json_from(timeout=TIMEOUT)
        assert results["type"] == "results" and results["run"] == started["run"]
        assert 'data-done="1"' in results["html"]


async def test_a_socket_joining_mid_run_gets_the_text_so_far_then_the_rest(alice, fakes):
    (server,) = fakes(1)
    server.configure(reply_tokens=60, tokens_per_second=40)
    credential = await sync_to_async(credential_on)(alice, server, "Fake")
    comparison = await make_comparison(
        alice, [SlotData(credential, "gpt-4o-mini"), SlotData(credential, "gpt-4o")]
    )
    async with connect(f"/ws/playground/{comparison.pk}/", user=alice) as (first, _):
        await first.receive_json_from(timeout=TIMEOUT)
        await first.send_json_to({"type": "run"})
        started = await first.receive_json_from(timeout=TIMEOUT)
        await asyncio.sleep(0.4)
        async with connect(f"/ws/playground/{comparison.pk}/", user=alice) as (second, _):
            hello = await second.receive_json_from(timeout=TIMEOUT)
            assert len(hello["snapshots"]) == 2
            texts = {s["id"]: s["text"] for s in hello["snapshots"]}
            assert all(texts.values())
            frames = []
            while True:
                frame = await second.receive_json_from(timeout=TIMEOUT)
                frames.append(frame)
                if frame["type"] == "final" and frame.get("run"):
                    break
    for answer in await answers_of(started["run"]):
        deltas = [f for f in of_type(frames, "delta") if f["id"] == answer.pk]
        snapshot = {"offset": 0, "text": texts[answer.pk]}
        assert joined([snapshot, *deltas]) == answer.text


async def test_a_viewer_watches_but_cannot_run_or_stop(alice, team, vera_viewer, bob_teammate):
    from providers import services as provider_services

    credential = await sync_to_async(provider_services.credential_create)(
        actor=alice, preset="echo", name="Team echo", owner_team=team
    )
    comparison = await make_comparison(
        alice, [SlotData(credential, "echo"), SlotData(credential, "echo")], owner_team=team
    )
    async with connect(f"/ws/playground/{comparison.pk}/", user=vera_viewer) as (ws, ok):
        assert ok
        await ws.receive_json_from(timeout=TIMEOUT)
        await ws.send_json_to({"type": "run"})
        refused = await ws.receive_json_from(timeout=TIMEOUT)
        assert refused["type"] == "error" and refused["code"] == "forbidden"
    assert await sync_to_async(Run.objects.count)() == 0
    # A member runs it (the team's Echo): the viewer's socket would watch the same frames.
    async with connect(f"/ws/playground/{comparison.pk}/", user=bob_teammate) as (ws, ok):
        await ws.receive_json_from(timeout=TIMEOUT)
        started, _frames = await run_until_done(ws)
    answers = await answers_of(started["run"])
    assert [a.status for a in answers] == ["complete", "complete"]
    assert "Say" not in answers[0].text and "Count to three" in answers[0].text  # Echo echoes


async def test_the_run_message_saves_what_the_page_shows_before_running(alice, fakes):
    (server,) = fakes(1)
    credential = await sync_to_async(credential_on)(alice, server, "Fake")
    comparison = await make_comparison(
        alice, [SlotData(credential, "gpt-4o-mini"), SlotData(credential, "gpt-4o")]
    )
    slots = await sync_to_async(lambda: list(comparison.slots.order_by("position")))()
    form = {
        "title": "Edited",
        "system_prompt": "Be brief.",
        "prompt": "What the page shows",
        "slot_order": f"{slots[1].pk},{slots[0].pk}",  # reordered on the page
        f"slot-{slots[0].pk}-model_choice": f"{credential.pk}|gpt-4o-mini",
        f"slot-{slots[0].pk}-max_tokens": "5",
        f"slot-{slots[1].pk}-model_choice": f"{credential.pk}|gpt-4o",
        f"slot-{slots[1].pk}-system_prompt": "Be very brief.",
    }
    async with connect(f"/ws/playground/{comparison.pk}/", user=alice) as (ws, _):
        await ws.receive_json_from(timeout=TIMEOUT)
        started, _ = await run_until_done(ws, {"type": "run", "form": form})
    first, second = await answers_of(started["run"])
    assert (first.model, first.system_prompt) == ("gpt-4o", "Be very brief.")
    assert (second.model, second.params, second.system_prompt) == (
        "gpt-4o-mini",
        {"max_tokens": 5},
        "Be brief.",
    )
    assert second.finish_reason == "length"  # max_tokens reached (the gate enforces it too)
    assert second.text == "Hello from the fake gpt-4o-mini! "
    run = await get_run(started["run"])
    assert run.prompt == "What the page shows"
    saved = await sync_to_async(Comparison.objects.get)(pk=comparison.pk)
    assert saved.title == "Edited"


async def test_an_invalid_form_in_the_run_message_is_an_error_frame_and_runs_nothing(alice, fakes):
    (server,) = fakes(1)
    credential = await sync_to_async(credential_on)(alice, server, "Fake")
    comparison = await make_comparison(
        alice, [SlotData(credential, "gpt-4o-mini"), SlotData(credential, "gpt-4o")]
    )
    slots = await sync_to_async(lambda: list(comparison.slots.order_by("position")))()
    async with connect(f"/ws/playground/{comparison.pk}/", user=alice) as (ws, _):
        await ws.receive_json_from(timeout=TIMEOUT)
        for message in (
            {"type": "run", "form": "nope"},
            {"type": "run", "form": {f"slot-{slots[0].pk}-temperature": "7", "prompt": "x"}},
            {"type": "run", "form": {"prompt": ""}},
            {"type": "stop", "answer_id": "x"},
            {"type": "stop_all"},
            {"type": "explode"},
        ):
            await ws.send_json_to(message)
            frame = await ws.receive_json_from(timeout=TIMEOUT)
            assert frame["type"] == "error", (message, frame)
            assert frame["code"] in ("invalid", "bad_request")
    assert await sync_to_async(Run.objects.count)() == 0


async def test_a_soft_budget_asks_to_confirm_and_runs_once_confirmed(alice, fakes, monkeypatch):
    (server,) = fakes(1)
    credential = await sync_to_async(credential_on)(alice, server, "Fake")
    comparison = await make_comparison(
        alice, [SlotData(credential, "gpt-4o-mini"), SlotData(credential, "gpt-4o")]
    )
    note = estimates.BudgetNote("soft", "About $0.01; this exceeds your soft limit for OpenAI.")
    monkeypatch.setattr(estimates, "budget_notes", lambda **kw: [note])
    async with connect(f"/ws/playground/{comparison.pk}/", user=alice) as (ws, _):
        await ws.receive_json_from(timeout=TIMEOUT)
        await ws.send_json_to({"type": "run"})
        frame = await ws.receive_json_from(timeout=TIMEOUT)
        assert frame["type"] == "confirm" and "soft limit for OpenAI" in frame["html"]
        assert await sync_to_async(Run.objects.count)() == 0
        started, _ = await run_until_done(ws, {"type": "run", "confirm": True})
    assert [a.status for a in await answers_of(started["run"])] == ["complete", "complete"]


async def test_a_hard_budget_refuses_that_slot_only_and_names_the_budget(alice, fakes, monkeypatch):
    from decimal import Decimal

    from billing.models import Budget

    ok_server, capped_server = fakes(2)
    ok_server.configure(reply="still answers")
    ok_credential = await sync_to_async(credential_on)(alice, ok_server, "Open")
    capped = await sync_to_async(credential_on)(alice, capped_server, "Capped")

    @sync_to_async
    def spent_budget():  # on the capped credential only: $0.0001 can't afford even a short reply
        budget = Budget(name="Capped monthly", limit=Decimal("0.0001"), credential=capped)
        budget.set_owner(alice)
        budget.save()

    await spent_budget()
    # The gate refuses the slot as it starts (the run's own estimate would warn first).
    monkeypatch.setattr(estimates, "budget_notes", lambda **kw: [])
    comparison = await make_comparison(
        alice, [SlotData(ok_credential, "gpt-4o-mini"), SlotData(capped, "gpt-4o")]
    )
    async with connect(f"/ws/playground/{comparison.pk}/", user=alice) as (ws, _):
        await ws.receive_json_from(timeout=TIMEOUT)
        started, _frames = await run_until_done(ws)
    open_answer, refused = await answers_of(started["run"])
    assert (open_answer.status, open_answer.text) == ("complete", "still answers")
    assert (refused.status, refused.error_code) == ("error", "budget_exceeded")
    assert "Capped monthly" in refused.error_message
    assert refused.cost == 0
    assert not [r for r in capped_server.requests if r.method == "POST"]  # never reached it
    rows = {r.context["answer"]: r for r in await usage_rows(started["run"])}
    assert rows[refused.pk].error_code == "budget_exceeded" and rows[open_answer.pk].status == "ok"


async def test_a_reasoning_model_thinks_aloud_and_its_thinking_is_kept(alice, fakes):
    thinker, plain = fakes(2)
    thinker.configure(
        reasoning="Let me weigh both options first.", reply="Option B.", tokens_per_second=80
    )
    plain.configure(reply="Option A.")
    credentials = [
        await sync_to_async(credential_on)(alice, server, name)
        for server, name in ((thinker, "Thinker"), (plain, "Plain"))
    ]
    comparison = await make_comparison(alice, [SlotData(c, "gpt-4o-mini") for c in credentials])
    async with connect(f"/ws/playground/{comparison.pk}/", user=alice) as (ws, _):
        await ws.receive_json_from(timeout=TIMEOUT)
        started, frames = await run_until_done(ws)
    thought, answered = await answers_of(started["run"])
    reasoning = [f for f in of_type(frames, "reasoning") if f["id"] == thought.pk]
    assert joined(reasoning) == "Let me weigh both options first." == thought.reasoning
    assert thought.text == "Option B." and thought.reasoning_ms is not None
    assert (answered.text, answered.reasoning) == ("Option A.", "")
    final = next(f for f in frames if f["type"] == "final" and f["id"] == thought.pk)
    assert "Thought for" in final["html"] and "weigh both options" in final["html"]
