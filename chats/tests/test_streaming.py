"""The reply runner (chats.streaming) against the fake provider server: faults end in the right
status with the partial text kept and exactly one usage row; Retry and Continue; frames are
coalesced; the partial text is checkpointed (the heartbeat) while streaming; the statements per
reply are flat in history and reply length.

ACCEPTANCE "Fault tests on the fake server" (issue 4); the SIGKILL-a-real-Daphne case lives in
tests/test_crash_recovery.py."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.db.backends import utils as db_utils
from django.utils import timezone

from billing.models import UsageRecord
from chats import frames, replies, services, streaming
from chats.models import Conversation, Message, MessageStatus
from chats.tests.test_consumers import (  # noqa: F401 - the fixture is used by every test here
    TIMEOUT,
    _no_reply_left_running,
    chat_path,
    fake_text,
    get_message,
    joined,
    of_type,
    receive_until,
    send_and_finish,
    wait_for_reply,
)
from providers import egress_allow
from providers.gate import settlement
from tests.websocket import connect

pytestmark = pytest.mark.django_db(transaction=True)

REPLY = "one two three four five six seven eight"


@pytest.fixture
def local_conversation(alice, make_credential):
    """On a local OpenAI-compatible server (the fake): $0, tokens reported by the server."""
    credential = make_credential(alice, "openai_compatible")
    return services.conversation_start(actor=alice, credential=credential, model="fake-model")


@pytest.fixture
def priced_conversation(alice, make_credential):
    """On "OpenAI" (the fake standing in for it): a priced model, so every call costs something."""
    credential = make_credential(alice, "openai")
    return services.conversation_start(actor=alice, credential=credential, model="gpt-4o-mini")


@sync_to_async
def usage_rows(message_id: int) -> list[UsageRecord]:
    return list(UsageRecord.objects.filter(context__message=message_id).order_by("id"))


@sync_to_async
def get_conversation(pk: int) -> Conversation:
    return Conversation.objects.get(pk=pk)


async def one_reply(user, conversation, message: dict | None = None):
    """Open a socket, do one action (default: send a first message), wait for the final frame.
    Returns (started-or-resumed frame, delta frames, final frame)."""
    message = message or {"type": "send", "parent_id": None, "content": "Count, please"}
    async with connect(chat_path(conversation), user=user) as (ws, connected):
        assert connected
        assert (await ws.receive_json_from(timeout=TIMEOUT))["type"] == "hello"
        return await send_and_finish(ws, message)


def chat_posts(fake) -> list:
    return [r for r in fake.requests if r.method == "POST"]


# --- Faults -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3])
async def test_a_stream_that_breaks_off_after_k_chunks_is_interrupted_with_its_partial_text(
    k, alice, priced_conversation, fake_provider
):
    fake_provider.configure(reply=REPLY, disconnect_after=k)

    _started, deltas, final = await one_reply(alice, priced_conversation)

    partial = "".join(REPLY.split(" ")[i] + " " for i in range(k))
    reply = await get_message(final["id"])
    assert final["status"] == MessageStatus.INTERRUPTED == reply.status
    assert reply.content == partial == joined(deltas)
    assert reply.error_code == "stream_interrupted"
    [row] = await usage_rows(reply.pk)
    assert row.status == "error" and row.error_code == "stream_interrupted"
    assert row.output_tokens > 0 and row.cost > 0  # the partial text is charged
    assert reply.usage_id == row.pk and reply.cost == row.cost
    assert reply.output_tokens == row.output_tokens
    assert reply.conversation.cost_total == row.cost
    assert len(chat_posts(fake_provider)) == 1  # no retry after the first token
    # The page offers Continue and Retry, and says what happened.
    assert 'data-action="continue"' in final["html"]
    assert 'data-action="retry"' in final["html"]
    assert "stream_interrupted" in final["html"]


async def test_a_stalled_stream_times_out_as_interrupted_with_its_partial_text(
    alice, local_conversation, fake_provider, settings
):
    settings.WORKBENCH_PROVIDER_TIMEOUTS = {"connect": 2.0, "read": 0.5, "total": 20.0}
    fake_provider.configure(reply=REPLY, stall_after=2)

    began = time.monotonic()
    _, deltas, final = await one_reply(alice, local_conversation)
    took = time.monotonic() - began

    reply = await get_message(final["id"])
    assert final["status"] == MessageStatus.INTERRUPTED == reply.status
    assert reply.content == "one two " == joined(deltas)
    assert reply.error_code == "timeout"
    assert 0.5 <= took < 3, f"the idle timeout took {took:.2f}s"
    [row] = await usage_rows(reply.pk)
    assert row.status == "error" and row.error_code == "timeout" and row.output_tokens > 0
    assert 'data-action="continue"' in final["html"]


async def test_a_500_before_the_first_token_is_an_error_with_retry_and_retry_then_succeeds(
    alice, local_conversation, fake_provider
):
    fake_provider.configure(status=500)
    async with connect(chat_path(local_conversation), user=alice) as (ws, connected):
        assert connected
        await ws.receive_json_from(timeout=TIMEOUT)
        _, deltas, final = await send_and_finish(
            ws, {"type": "send", "parent_id": None, "content": "Hello?"}
        )
        failed = await get_message(final["id"])
        assert final["status"] == MessageStatus.ERROR == failed.status
        assert failed.error_code == "provider_error"
        assert failed.content == "" and deltas == []
        assert 'data-action="retry"' in final["html"]
        assert 'data-action="continue"' not in final["html"]  # nothing to continue
        assert "provider_error" in final["html"]
        [row] = await usage_rows(failed.pk)
        assert row.status == "error" and row.error_code == "provider_error"
        assert row.output_tokens == 0 and row.attempts == len(chat_posts(fake_provider))

        fake_provider.reset()  # the provider is back
        started, deltas, final = await send_and_finish(
            ws, {"type": "retry", "message_id": failed.pk, "ref": "again"}
        )

    retried = await get_message(final["id"])
    assert started["type"] == "started" and started["ref"] == "again"
    assert started["after"] == failed.parent_id
    assert retried.pk != failed.pk and retried.parent_id == failed.parent_id  # a sibling
    assert final["status"] == MessageStatus.COMPLETE == retried.status
    assert retried.content == joined(deltas) and retried.content.startswith("Hello from the fake")
    assert '<span class="sib-count">2/2</span>' in final["html"]
    assert (await get_message(failed.pk)).status == MessageStatus.ERROR  # kept, as sibling 1/2
    assert len(await usage_rows(retried.pk)) == 1


async def test_continue_appends_to_an_interrupted_reply_and_accumulates_its_usage(
    alice, priced_conversation, fake_provider
):
    fake_provider.configure(reply=REPLY)
    fake_provider.enqueue(disconnect_after=3)
    _, _, broken = await one_reply(alice, priced_conversation)
    partial = (await get_message(broken["id"])).content
    assert partial == "one two three "
    [first_row] = await usage_rows(broken["id"])

    resumed, deltas, final = await one_reply(
        alice, priced_conversation, {"type": "continue", "message_id": broken["id"], "ref": "c"}
    )

    assert resumed == {"type": "resumed", "id": broken["id"], "ref": "c"}
    assert deltas and deltas[0]["offset"] == len(partial)  # the live tail goes after the text
    assert final["id"] == broken["id"] and final["status"] == MessageStatus.COMPLETE
    reply = await get_message(broken["id"])
    assert reply.status == MessageStatus.COMPLETE and reply.error_code == ""
    assert reply.content == partial + REPLY
    assert joined([{"offset": 0, "text": partial}, *deltas]) == reply.content
    # The model got the partial answer as the start of its own turn.
    sent = chat_posts(fake_provider)[-1].body["messages"]
    assert sent[-1] == {"role": "assistant", "content": partial}
    assert sent[-2]["role"] == "user"
    # One message, two calls: tokens and cost add up.
    first_row, second_row = await usage_rows(reply.pk)
    assert second_row.status == "ok"
    assert reply.output_tokens == first_row.output_tokens + second_row.output_tokens
    assert reply.input_tokens == first_row.input_tokens + second_row.input_tokens
    assert reply.cost == first_row.cost + second_row.cost
    assert 'data-action="continue"' not in final["html"]


async def test_continuing_a_reply_charges_the_conversation_once_for_each_call(
    alice, priced_conversation, fake_provider
):
    """BUG: `_save_sync` passes the message's accumulated cost (prior + new) to `reply_finish`,
    which adds all of it to `cost_total` — the first call's cost, already folded in when the
    reply was interrupted, is counted twice."""
    fake_provider.configure(reply=REPLY)
    fake_provider.enqueue(disconnect_after=3)
    _, _, broken = await one_reply(alice, priced_conversation)
    await one_reply(alice, priced_conversation, {"type": "continue", "message_id": broken["id"]})

    rows = await usage_rows(broken["id"])
    assert len(rows) == 2
    conversation = await get_conversation(priced_conversation.pk)
    reply = await get_message(broken["id"])
    assert reply.cost == sum(row.cost for row in rows)
    assert conversation.cost_total == sum(row.cost for row in rows)


async def test_an_error_on_continue_keeps_the_text_already_there(
    alice, local_conversation, fake_provider
):
    fake_provider.configure(reply=REPLY)
    fake_provider.enqueue(disconnect_after=2)
    _, _, broken = await one_reply(alice, local_conversation)
    fake_provider.configure(status=400)  # not retried

    _, deltas, final = await one_reply(
        alice, local_conversation, {"type": "continue", "message_id": broken["id"]}
    )

    reply = await get_message(broken["id"])
    assert reply.content == "one two " and deltas == []
    assert reply.status in (MessageStatus.INTERRUPTED, MessageStatus.ERROR)
    assert final["status"] == reply.status
    assert reply.error_code == "bad_request"


# --- Frames and checkpoints -------------------------------------------------------------------------


async def test_deltas_are_coalesced_into_few_frames_that_add_up_to_the_text(
    alice, local_conversation, fake_provider
):
    fake_provider.configure(tokens_per_second=500, reply_tokens=300)  # 0.6 s

    _, deltas, final = await one_reply(alice, local_conversation)

    reply = await get_message(final["id"])
    assert reply.content == fake_text(reply_tokens=300)
    assert "".join(d["text"] for d in deltas) == reply.content
    assert [d["offset"] for d in deltas] == [
        sum(len(d["text"]) for d in deltas[:i]) for i in range(len(deltas))
    ]
    assert 1 < len(deltas) < 60, f"{len(deltas)} frames for 300 tokens"


async def test_the_partial_text_is_checkpointed_while_streaming_as_the_heartbeat(
    alice, local_conversation, fake_provider, monkeypatch
):
    monkeypatch.setattr(settlement, "CHECKPOINT_INTERVAL", 0.2)
    fake_provider.configure(tokens_per_second=20, reply_tokens=30)  # 1.5 s
    async with connect(chat_path(local_conversation), user=alice) as (ws, _):
        await ws.receive_json_from(timeout=TIMEOUT)
        await ws.send_json_to({"type": "send", "parent_id": None, "content": "Go"})
        reply_id = (await receive_until(ws, "started"))[-1]["reply"]
        placeholder_heartbeat = (await get_message(reply_id)).heartbeat_at

        await asyncio.sleep(0.6)
        early = await get_message(reply_id)
        await asyncio.sleep(0.45)
        later = await get_message(reply_id)
        frames_ = await receive_until(ws, "final")

    text = fake_text(reply_tokens=30)
    assert early.status == later.status == MessageStatus.STREAMING
    assert early.content and text.startswith(early.content)
    assert len(later.content) > len(early.content) and text.startswith(later.content)
    assert placeholder_heartbeat < early.heartbeat_at < later.heartbeat_at
    assert timezone.now() - later.heartbeat_at < timedelta(seconds=1)
    done = await get_message(reply_id)
    assert done.status == MessageStatus.COMPLETE and done.content == text
    assert done.heartbeat_at is None
    assert frames_[-1]["status"] == MessageStatus.COMPLETE


async def test_a_reply_waiting_for_its_first_token_still_heartbeats(
    alice, local_conversation, fake_provider, monkeypatch
):
    monkeypatch.setattr(settlement, "CHECKPOINT_INTERVAL", 0.15)
    fake_provider.configure(ttft=0.8, reply=REPLY)
    async with connect(chat_path(local_conversation), user=alice) as (ws, _):
        await ws.receive_json_from(timeout=TIMEOUT)
        await ws.send_json_to({"type": "send", "parent_id": None, "content": "Go"})
        reply_id = (await receive_until(ws, "started"))[-1]["reply"]
        first = (await get_message(reply_id)).heartbeat_at
        await asyncio.sleep(0.5)
        quiet = await get_message(reply_id)
        await receive_until(ws, "final")
    assert quiet.content == "" and quiet.status == MessageStatus.STREAMING
    assert quiet.heartbeat_at > first


async def test_a_reply_running_here_is_never_marked_stale_but_a_dead_one_is(
    alice, local_conversation, fake_provider, monkeypatch
):
    # Every streaming reply looks stale at once, and nothing checkpoints during this reply.
    monkeypatch.setattr(replies, "STALE_AFTER", timedelta(0))
    monkeypatch.setattr(settlement, "CHECKPOINT_INTERVAL", 60)
    fake_provider.configure(tokens_per_second=40, reply_tokens=20)  # 0.5 s

    @sync_to_async
    def dead_reply():
        question = Message.objects.create(conversation=local_conversation, role="user", content="Q")
        return Message.objects.create(
            conversation=local_conversation,
            parent=question,
            role="assistant",
            content="left behind by a dead process",
            status=MessageStatus.STREAMING,
            heartbeat_at=timezone.now() - timedelta(minutes=1),
        )

    dead = await dead_reply()
    async with connect(chat_path(local_conversation), user=alice) as (ws, _):
        hello = await ws.receive_json_from(timeout=TIMEOUT)
        assert hello["snapshots"] == []  # the dead one was marked on connect
        await ws.send_json_to({"type": "send", "parent_id": None, "content": "Go"})
        reply_id = (await receive_until(ws, "started"))[-1]["reply"]
        await receive_until(ws, "delta")
        async with connect(chat_path(local_conversation), user=alice) as (other, _):
            hello = await other.receive_json_from(timeout=TIMEOUT)
            assert [s["id"] for s in hello["snapshots"]] == [reply_id]
        final = (await receive_until(ws, "final"))[-1]
    assert final["status"] == MessageStatus.COMPLETE
    assert (await get_message(reply_id)).status == MessageStatus.COMPLETE
    dead = await get_message(dead.pk)
    assert dead.status == MessageStatus.INTERRUPTED
    assert dead.content == "left behind by a dead process"


# --- Statements per reply -----------------------------------------------------------------------------


class StatementCounter:
    """Every SQL statement any thread runs while installed (the runner's ORM work runs in
    asgiref's worker thread, which `CaptureQueriesContext` on this thread would not see)."""

    def __init__(self, monkeypatch):
        self.statements: list[str] = []
        self.active = False
        original = db_utils.CursorWrapper._execute_with_wrappers

        def counting(cursor, sql, params, many, executor):
            if self.active:
                self.statements.append(sql)
            return original(cursor, sql, params, many, executor)

        monkeypatch.setattr(db_utils.CursorWrapper, "_execute_with_wrappers", counting)

    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for sql in self.statements:
            kind = re.match(r"\s*(\w+)", sql).group(1).upper()
            counts[kind] = counts.get(kind, 0) + 1
        return counts


@sync_to_async
def build_history(user, credential, length: int) -> tuple[int, int | None]:
    conversation = services.conversation_start(
        actor=user, credential=credential, model="fake-model"
    )
    parent = None
    for i in range(length):
        parent = Message.objects.create(
            conversation=conversation,
            parent=parent,
            role="user" if i % 2 == 0 else "assistant",
            content=f"message {i} " + "lorem ipsum " * 10,
        )
    return conversation.pk, parent.pk if parent else None


async def statements_for_one_reply(user, conversation_id, parent_id, counter) -> int:
    """What a websocket "send" runs: access check + message_send, the started frame, the
    runner through the gate, the final save and rendering."""
    from chats import selectors

    def begin():
        conversation = selectors.conversation_for_reply(user=user, pk=conversation_id)
        return services.message_send(
            actor=user, conversation=conversation, parent_id=parent_id, content="next"
        )

    counter.statements.clear()
    counter.active = True
    try:
        plan = await sync_to_async(begin)()
        started = await sync_to_async(frames.started_frame)(plan)
        reply = await streaming.begin(plan, started=started, render=frames.final_fields)
        await asyncio.wait_for(asyncio.shield(reply.task), TIMEOUT)
    finally:
        counter.active = False
    assert (await get_message(plan.message_id)).status == MessageStatus.COMPLETE
    return len(counter.statements)


async def test_the_statements_per_reply_are_flat_in_history_and_reply_length(
    alice, make_credential, fake_provider, monkeypatch
):
    monkeypatch.setattr(settlement, "CHECKPOINT_INTERVAL", 60)  # replies here are < 1 s
    # The egress allowlist's app entries are read at most every 5 s per process, not per reply.
    monkeypatch.setattr(egress_allow, "CACHE_SECONDS", 3600)
    credential = await sync_to_async(make_credential)(alice, "openai_compatible")
    counter = StatementCounter(monkeypatch)
    # Each on a conversation of its own, in the same state (the first reply writes the title).
    warm_up, short_history, long_history, other_short_history = [
        await build_history(alice, credential, length) for length in (2, 2, 60, 2)
    ]
    # Warm up (price data, caches) so that only the reply's own work is counted.
    fake_provider.configure(reply_tokens=5)
    await statements_for_one_reply(alice, *warm_up, counter)

    short = await statements_for_one_reply(alice, *short_history, counter)
    short_kinds = counter.kinds()
    long = await statements_for_one_reply(alice, *long_history, counter)
    fake_provider.configure(reply_tokens=400)
    long_reply = await statements_for_one_reply(alice, *other_short_history, counter)

    assert short == long == long_reply, (short, long, long_reply, short_kinds)
    # The constant (issue 11's goal: at most 8; it was 23): the conversation with its grounding
    # state (the access check); the tree with the path's texts; both messages and the
    # conversation's count (one write); the call's slot, budget check and opened usage row
    # (one); the settled row, its rollup and the freed slot (one); the final save, which also
    # returns what the final frame shows (one).
    assert short <= 6, counter.statements


async def test_checkpoints_are_about_one_per_interval_not_one_per_token(
    alice, make_credential, fake_provider, monkeypatch
):
    monkeypatch.setattr(settlement, "CHECKPOINT_INTERVAL", 0.1)
    monkeypatch.setattr(egress_allow, "CACHE_SECONDS", 3600)
    credential = await sync_to_async(make_credential)(alice, "openai_compatible")
    counter = StatementCounter(monkeypatch)
    conversation_id, parent_id = await build_history(alice, credential, 0)
    fake_provider.configure(tokens_per_second=80, reply_tokens=80)  # ~1 s

    await statements_for_one_reply(alice, conversation_id, parent_id, counter)

    checkpoints = [
        sql
        for sql in counter.statements
        if sql.startswith('UPDATE "chats_message"') and '"heartbeat_at"' in sql
    ]
    assert 5 <= len(checkpoints) <= 14, len(checkpoints)  # ~10 for 80 tokens
    # The crash-proof ledger checkpoints the usage row on the same interval (issue 8), so a
    # reply's statements are the flat constant plus about two per interval, never per token.
    ledger_checkpoints = [
        sql
        for sql in counter.statements
        if sql.startswith('UPDATE "billing_usagerecord"') and '"heartbeat_at"' in sql
    ]
    assert len(ledger_checkpoints) <= len(checkpoints) + 1, len(ledger_checkpoints)
    rest = len(counter.statements) - len(checkpoints) - len(ledger_checkpoints)
    # The flat constant (test above), + 2 for the user's first call ever (it creates their slot
    # rows and takes one again), and a little slack.
    assert rest <= 10, counter.kinds()


# --- Progressive rendering (issue 9, bug 6) ------------------------------------------------------

MARKDOWN_REPLY = (
    "Steps:\n\n1. one\n2. two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
    "```python\nprint('hi')\n```\n\nDone, with $x^2$."
)


def _page_apply(page: dict, html: dict) -> None:
    if html["v"] <= page["v"]:
        return
    assert html["from"] <= len(page["blocks"])
    del page["blocks"][html["from"] :]
    page["blocks"] += html["blocks"]
    page["tail"], page["v"] = html["tail"], html["v"]


def _content_of(article_html: str) -> str:
    match = re.search(r'<div class="content markdown">(.*?)</div>\s*<template', article_html, re.S)
    assert match, article_html[:300]
    return match.group(1)


async def test_deltas_carry_the_reply_rendered_so_far_and_the_last_one_is_the_final_rendering(
    alice, local_conversation, fake_provider
):
    fake_provider.configure(reply=MARKDOWN_REPLY, tokens_per_second=30)  # ~1.5 s
    async with connect(chat_path(local_conversation), user=alice) as (ws, _):
        await ws.receive_json_from(timeout=TIMEOUT)
        await ws.send_json_to({"type": "send", "parent_id": None, "content": "Go"})
        frames = await receive_until(ws, "final")
    deltas = of_type(frames, "delta")
    rendered = [d for d in deltas if "html" in d]
    assert len(rendered) >= 3, "the reply was not rendered while it streamed"
    page = {"v": 0, "blocks": [], "tail": ""}
    shapes = []
    for frame in rendered:
        _page_apply(page, frame["html"])
        shapes.append("".join(page["blocks"]) + page["tail"])
    # Rendered while it streamed (the list arrives in the first quarter of the reply); every
    # prefix's rendering is tested in test_progressive.py.
    assert any("<ol>" in shape for shape in shapes[:-1])
    assert "|---|" not in shapes[-1] and "```" not in shapes[-1]
    final_content = _content_of(frames[-1]["html"])
    assert "".join(page["blocks"]) + page["tail"] == final_content  # nothing left to jump
    assert "<math" in final_content


async def test_a_watcher_joining_mid_reply_gets_the_rendering_so_far_in_its_snapshot(
    alice, local_conversation, fake_provider
):
    fake_provider.configure(reply=MARKDOWN_REPLY * 3, tokens_per_second=40)
    async with connect(chat_path(local_conversation), user=alice) as (first, _):
        await first.receive_json_from(timeout=TIMEOUT)
        await first.send_json_to({"type": "send", "parent_id": None, "content": "Go"})

        def has_list(frame):
            html = frame.get("html") or {"blocks": [], "tail": ""}
            return "<ol>" in "".join(html["blocks"]) + html["tail"]

        while not any(has_list(d) for d in of_type(await receive_until(first, "delta"), "delta")):
            pass
        async with connect(chat_path(local_conversation), user=alice) as (second, _):
            hello = await second.receive_json_from(timeout=TIMEOUT)
            [snapshot] = hello["snapshots"]
            assert snapshot["html"]["from"] == 0
            assert "<ol>" in "".join(snapshot["html"]["blocks"]) + snapshot["html"]["tail"]
            page = {"v": 0, "blocks": [], "tail": ""}
            _page_apply(page, snapshot["html"])
            frames = await receive_until(second, "final")
            for frame in of_type(frames, "delta"):
                if "html" in frame:
                    _page_apply(page, frame["html"])
            await receive_until(first, "final")
    shown = "".join(page["blocks"]) + page["tail"]
    assert shown == _content_of(frames[-1]["html"])


def test_rendering_runs_off_the_event_loop_and_no_more_often_than_it_costs(monkeypatch):
    """The renderer runs in a worker thread; its cost sets when the next rendering may run, and a
    big tail is sent less often (bytes per second)."""
    import threading

    reply = streaming.Reply(
        services.ReplyPlan(
            conversation_id=1, message_id=1, user_id=1, team_id=None, credential_id=1, request=None
        )
    )
    threads = []

    def big(renderer, text):
        threads.append(threading.get_ident())
        return {"v": len(text), "from": 0, "blocks": [], "tail": "x" * 100_000}, {"v": len(text)}

    monkeypatch.setattr(streaming, "_render_sync", big)

    async def scenario():
        started = time.monotonic()
        payload = await streaming._render(reply, "abc")
        return threading.get_ident(), started, payload

    loop_thread, started, payload = asyncio.run(scenario())
    assert threads and threads[0] != loop_thread
    assert payload["v"] == 3 and reply.rendered == {"v": 3}
    assert reply.render_due - started >= 100_000 / streaming.RENDER_BYTES_PER_SECOND
