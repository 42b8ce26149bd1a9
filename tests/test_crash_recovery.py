"""Crash recovery (issue 4 acceptance): a real Daphne subprocess killed with SIGKILL mid-reply →
after a restart the partial text (at most ~1 s lost: the checkpoint interval) is there as
`interrupted`.

Nothing in the dying process gets to run: no `finally`, no final save. What survives is the
last partial-text checkpoint (written about once a second, doubling as the heartbeat); the next
process to look at the conversation marks the reply `interrupted` once its heartbeat is older
than STALE_AFTER."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import timedelta

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import Client
from django.utils import timezone

from chats import services
from chats.models import Message, MessageStatus
from chats.replies import STALE_AFTER
from chats.streaming import CHECKPOINT_INTERVAL
from providers.fakeserver.knobs import LOREM

TOKENS_PER_SECOND = 20
REPLY_TOKENS = 400  # 20 s of reply: far from finished when the process dies
KILL_AFTER = 2.8  # seconds after the reply started: just before the third checkpoint (worst case)
# At most one checkpoint interval of tokens may be lost (20 at 20 tokens/s); slack for
# scheduling and frame timing.
MAX_LOST_TOKENS = 2 * int(CHECKPOINT_INTERVAL * TOKENS_PER_SECOND)
FULL_REPLY = " ".join(LOREM[i % len(LOREM)] for i in range(REPLY_TOKENS))


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def _reply_row(message_id: int) -> dict:
    return Message.objects.filter(pk=message_id).values("status", "content", "heartbeat_at")[0]


async def _send_then_kill(address: str, conversation_id: int, cookie: str, process) -> dict:
    """Send a message over the websocket, let the reply stream for KILL_AFTER seconds, read the
    checkpoint, SIGKILL Daphne; returns what the browser would have seen."""
    import websockets

    loop = asyncio.get_running_loop()
    async with websockets.connect(
        f"ws://{address}/ws/chat/{conversation_id}/",
        origin=f"http://{address}",
        additional_headers={"Cookie": cookie},
    ) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert hello == {"type": "hello", "conversation": conversation_id, "snapshots": []}
        await ws.send(
            json.dumps(
                {"type": "send", "parent_id": None, "content": "Tell me everything.", "ref": "r1"}
            )
        )
        reply_id, kill_at, received = None, loop.time() + 10, []
        while (left := kill_at - loop.time()) > 0:
            try:
                frame = json.loads(await asyncio.wait_for(ws.recv(), left))
            except TimeoutError:
                break
            if frame["type"] == "started":
                reply_id, kill_at = frame["reply"], loop.time() + KILL_AFTER
            elif frame["type"] == "delta" and frame["id"] == reply_id:
                assert frame["offset"] == sum(map(len, received))
                received.append(frame["text"])
            else:
                raise AssertionError(f"unexpected frame before the kill: {frame}")
        assert reply_id is not None, "the reply never started"
        checkpoint = await sync_to_async(_reply_row)(reply_id)

        process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        # Frames already on the wire still arrive; then the connection drops without a close.
        with pytest.raises(websockets.ConnectionClosedError):
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert frame["type"] == "delta", frame  # never a `final`: nothing got to save
                received.append(frame["text"])
    return {
        "reply_id": reply_id,
        "seen": "".join(received),
        "checkpoint_before_kill": checkpoint,
        "killed_at": killed_at,
    }


def _words(text: str) -> int:
    return len(text.split())


@pytest.mark.django_db(transaction=True)
def test_a_sigkilled_daphne_leaves_the_checkpointed_partial_as_interrupted(
    alice, make_credential, fake_provider, daphne
):
    credential = make_credential(alice, "openai", name="Fake A")
    conversation = services.conversation_start(
        actor=alice, credential=credential, model="gpt-4o-mini"
    )
    fake_provider.configure(tokens_per_second=TOKENS_PER_SECOND, reply_tokens=REPLY_TOKENS)
    cookie = _session_cookie(alice)

    first, address = daphne()
    run = asyncio.run(_send_then_kill(address, conversation.pk, cookie, first))
    assert first.wait(timeout=5) == -signal.SIGKILL
    reply_id = run["reply_id"]

    # Mid-reply the checkpoint was there already (written about once a second).
    before = run["checkpoint_before_kill"]
    assert before["status"] == MessageStatus.STREAMING
    assert before["content"], "no partial text was checkpointed before the kill"

    # What the dead process left: its last checkpoint, still `streaming`.
    left = _reply_row(reply_id)
    assert left["status"] == MessageStatus.STREAMING
    partial = left["content"]
    assert partial.startswith(before["content"])
    assert FULL_REPLY.startswith(partial)
    assert run["seen"].startswith(partial)
    assert FULL_REPLY.startswith(run["seen"])

    # How much was lost: tokens the fake had sent by the kill (its schedule is absolute:
    # token i leaves at start + i/tps) and tokens the socket showed, minus the checkpoint.
    [call] = [r for r in fake_provider.requests if r.path.endswith("/chat/completions")]
    sent_by_fake = max(
        min(REPLY_TOKENS, int((run["killed_at"] - call.at) * TOKENS_PER_SECOND) + 1),
        _words(run["seen"]),
    )
    lost_seen = _words(run["seen"]) - _words(partial)
    lost_sent = sent_by_fake - _words(partial)
    print(
        f"checkpoint {_words(partial)} tokens; socket showed {_words(run['seen'])}; "
        f"fake sent ~{sent_by_fake}; lost {lost_seen} (seen) / {lost_sent} (sent)"
    )
    assert 0 <= lost_seen <= lost_sent <= MAX_LOST_TOKENS

    # Restart: the first page load after the heartbeat went stale marks the reply interrupted.
    _second, address = daphne()
    # A generous read timeout: the test is about what the page shows, not how fast a freshly
    # started Daphne answers on a loaded 2-core machine (httpx's 5 s default failed at load 13).
    with httpx.Client(
        base_url=f"http://{address}", headers={"Cookie": cookie}, timeout=60
    ) as browser:
        deadline = left["heartbeat_at"] + STALE_AFTER + timedelta(seconds=5)
        while True:
            loaded_at = timezone.now()
            page = browser.get(f"/chat/{conversation.pk}/")
            answered_at = timezone.now()
            assert page.status_code == 200
            status = _reply_row(reply_id)["status"]
            if status != MessageStatus.STREAMING:
                break
            # Left `streaming` only while its heartbeat is younger than STALE_AFTER (the
            # reply might be alive in another process); marked at the first load after that.
            assert loaded_at - left["heartbeat_at"] < STALE_AFTER + timedelta(seconds=1)
            assert timezone.now() < deadline, "the stale reply was never marked interrupted"
            time.sleep(0.25)
    assert answered_at - left["heartbeat_at"] >= STALE_AFTER

    reply = Message.objects.get(pk=reply_id)
    assert reply.status == MessageStatus.INTERRUPTED
    assert reply.content == partial
    assert reply.error_code == "interrupted"
    assert reply.heartbeat_at is None
    html = page.text
    assert f'id="message-{reply_id}"' in html
    assert 'data-status="interrupted"' in html
    assert partial.strip() in html
    assert "The server stopped while this reply was being written." in html
    assert 'data-action="continue"' in html and 'data-action="retry"' in html
