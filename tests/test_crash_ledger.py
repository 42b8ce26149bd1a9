"""A crash-proof ledger (issue 8, item 7): a real Daphne killed with SIGKILL, or stopped with
SIGTERM (what the run command's Ctrl-C sends), while a chat reply, an SSE completion and a JSON
completion stream → exactly one usage row per call that reached the provider, none left
`running`, and every message in a final state. A graceful stop also saves every live reply
with all the text it received.

SIGKILL: nothing in the dying process runs; the rows it opened stay `running` with their last
checkpoint, and the next read of the ledger (after WORKBENCH_LEDGER_STALE_SECONDS) settles them
`interrupted`. SIGTERM: Daphne's shutdown waits for our hook (workbench/asgi.py), which ends every
live reply and call as `interrupted` and settles its row before the process exits."""

from __future__ import annotations

import asyncio
import json
import signal
import time

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import Client

from billing.models import CallStatus, UsageRecord
from chats import replies, services
from chats.models import Message, MessageStatus
from tests import servers
from tests.api_client import bearer

pytestmark = pytest.mark.django_db(transaction=True)

STALE_SECONDS = 2
TOKENS_PER_SECOND = 20
REPLY_TOKENS = 400  # 20 s: far from finished when the server goes


@pytest.fixture
def daphne(transactional_db, fake_provider, tmp_path):
    started: list = []
    env = servers.daphne_env(
        WORKBENCH_EGRESS_ALLOW=f"127.0.0.1:{fake_provider.port}",
        WORKBENCH_LEDGER_STALE_SECONDS=str(STALE_SECONDS),
    )

    def start():
        process, port = servers.start_daphne(env, tmp_path / f"daphne-{len(started)}.log")
        started.append(process)
        return process, f"127.0.0.1:{port}"

    yield start
    servers.stop(*started)


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def completion_body(credential, **extra) -> dict:
    return {
        "credential": credential.pk,
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Tell me everything."}],
        **extra,
    }


async def chat_until_killed(address, conversation_id, cookie, seen: list, ready: asyncio.Event):
    import websockets

    async with websockets.connect(
        f"ws://{address}/ws/chat/{conversation_id}/",
        origin=f"http://{address}",
        additional_headers={"Cookie": cookie},
    ) as ws:
        json.loads(await asyncio.wait_for(ws.recv(), 10))  # hello
        await ws.send(json.dumps({"type": "send", "parent_id": None, "content": "Go on."}))
        try:
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if frame["type"] == "started":
                    seen.append({"reply": frame["reply"], "text": ""})
                elif frame["type"] == "delta":
                    seen[0]["text"] += frame["text"][len(seen[0]["text"]) - frame["offset"] :]
                    if len(seen[0]["text"].split()) >= 10:
                        ready.set()
                elif frame["type"] == "final":
                    seen.append(frame)
        except (websockets.ConnectionClosed, TimeoutError):
            return


async def sse_until_killed(address, token, body, seen: list, ready: asyncio.Event):
    async with httpx.AsyncClient(base_url=f"http://{address}", timeout=30) as client:
        try:
            async with client.stream(
                "POST", "/api/completions", json=body, headers=bearer(token)
            ) as response:
                async for line in response.aiter_lines():
                    seen.append(line)
                    if sum(line.startswith("event: delta") for line in seen) >= 10:
                        ready.set()
        except httpx.HTTPError:
            return


async def json_until_killed(address, token, body, seen: list):
    async with httpx.AsyncClient(base_url=f"http://{address}", timeout=30) as client:
        try:
            response = await client.post("/api/completions", json=body, headers=bearer(token))
            seen.append(response.status_code)
        except httpx.HTTPError as exc:
            seen.append(type(exc).__name__)


@sync_to_async
def ledger() -> list[UsageRecord]:
    return list(UsageRecord.objects.order_by("id"))


async def run_then_stop(signum, address, process, conversation, credential, cookie, token):
    chat_seen, sse_seen, json_seen = [], [], []
    chat_ready, sse_ready = asyncio.Event(), asyncio.Event()
    tasks = [
        asyncio.create_task(
            chat_until_killed(address, conversation.pk, cookie, chat_seen, chat_ready)
        ),
        asyncio.create_task(
            sse_until_killed(
                address, token, completion_body(credential, stream=True), sse_seen, sse_ready
            )
        ),
        asyncio.create_task(
            json_until_killed(address, token, completion_body(credential), json_seen)
        ),
    ]
    await asyncio.wait_for(asyncio.gather(chat_ready.wait(), sse_ready.wait()), 20)
    # Every call has checkpointed at least once (about a second after it started): that is
    # what a SIGKILL leaves to settle from.
    deadline = time.monotonic() + 10
    while True:
        rows = await ledger()
        if len(rows) == 3 and all(row.output_tokens for row in rows):
            break
        assert time.monotonic() < deadline, [(r.feature, r.output_tokens) for r in rows]
        await asyncio.sleep(0.1)
    process.send_signal(signum)
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    return chat_seen, sse_seen, json_seen


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_every_call_in_flight_has_exactly_one_settled_row_after_the_server_goes(
    signum, alice, make_credential, fake_provider, token_for, daphne
):
    credential = make_credential(alice, "openai")
    conversation = services.conversation_start(
        actor=alice, credential=credential, model="gpt-4o-mini"
    )
    fake_provider.configure(tokens_per_second=TOKENS_PER_SECOND, reply_tokens=REPLY_TOKENS)
    cookie, token = session_cookie(alice), token_for(alice, "write")

    process, address = daphne()
    stopped_at = time.monotonic()
    chat_seen, sse_seen, _ = asyncio.run(
        run_then_stop(signum, address, process, conversation, credential, cookie, token)
    )
    exit_code = process.wait(timeout=15)
    gone_at = time.monotonic()
    stop_took = time.monotonic() - stopped_at
    calls = [r for r in fake_provider.requests if r.path.endswith("/chat/completions")]
    assert len(calls) == 3  # chat, SSE, JSON: each reached the provider once

    reply_id = chat_seen[0]["reply"]
    seen_text = chat_seen[0]["text"]
    if signum == signal.SIGTERM:
        assert exit_code == 0, f"Daphne did not stop cleanly ({exit_code}, {stop_took:.1f}s)"
        # Saved on the way out: no sweep, no restart needed.
        rows = asyncio.run(ledger())
        reply = Message.objects.get(pk=reply_id)
        assert reply.status == MessageStatus.INTERRUPTED
        assert reply.error_code == "interrupted"
        # Every character the browser saw, and whatever arrived after the last frame.
        assert reply.content.startswith(seen_text) and len(reply.content) >= len(seen_text)
        assert reply.heartbeat_at is None and reply.usage_id is not None
    else:
        assert exit_code == -signal.SIGKILL
        left = asyncio.run(ledger())
        assert [r.status for r in left] == [CallStatus.RUNNING] * 3
        # Restart; once the heartbeats are stale, reading the ledger settles the orphans, and
        # reading the conversation marks the reply.
        _, address = daphne()
        # Both heartbeats must be stale: the ledger's (STALE_SECONDS here) and the reply's
        # (replies.STALE_AFTER), counted from the exit, not from the restart (whose time varies).
        stale_for = max(STALE_SECONDS, replies.STALE_AFTER.total_seconds()) + 0.5
        time.sleep(max(0.0, gone_at + stale_for - time.monotonic()))
        with httpx.Client(base_url=f"http://{address}", timeout=10) as http:
            listed = http.get("/api/usage/", headers=bearer(token))
            assert listed.status_code == 200
            assert {row["status"] for row in listed.json()["results"]} == {"interrupted"}
            http.get(f"/chat/{conversation.pk}/", headers={"Cookie": cookie})
        rows = asyncio.run(ledger())
        reply = Message.objects.get(pk=reply_id)
        assert reply.status == MessageStatus.INTERRUPTED and reply.content
        assert seen_text.startswith(reply.content)  # the last checkpoint

    assert len(rows) == 3, [(r.feature, r.status) for r in rows]
    assert {r.feature for r in rows} == {"chat", "api"}
    for row in rows:
        assert row.status == CallStatus.INTERRUPTED, (row.feature, row.status, row.error_code)
        assert row.heartbeat_at is None
        assert row.input_tokens > 0 and row.output_tokens > 0 and row.tokens_estimated
        assert row.cost > 0 and row.cost_source == "estimated"
    assert not Message.objects.filter(status=MessageStatus.STREAMING).exists()
    assert sse_seen, "the SSE client saw nothing"
