"""One user can't freeze everyone (issue 8, item 1).

Local token counting — for every call whose provider reports no usage (Echo, many local hosts,
errors, stops) — once ran on the process's one shared database thread, in time that grew with
the square of any run of text without spaces: a 60,000-character word took 78 s, during which no
one could open a chat. Counting is now bounded, linear and in its own thread; these tests hold
another user's chat to normal time while a 200,000-character word is being counted."""

from __future__ import annotations

import asyncio
import random
import string
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from billing.models import UsageRecord
from chats import services, streaming
from chats.models import Message, MessageStatus
from providers import services as provider_services
from providers import tokens
from tests.websocket import connect

pytestmark = pytest.mark.django_db(transaction=True)

# "Normal time" for a handshake and for a first token, on a loaded 2-core CI machine. Counting
# the message below the old way took minutes; a probe over this limit fails the test.
NORMAL = 3.0
# Lower-case letters only: the tokenizer's pre-split keeps the whole run as one piece (mixed case
# would be cut at every capital), which is what made the old count quadratic.
HUGE_WORD = "".join(random.Random(8).choices(string.ascii_lowercase, k=200_000))


@pytest.fixture(autouse=True)
async def _tidy():
    yield
    for reply in list(streaming.RUNNING.values()):
        reply.stop()
        if reply.task is not None:
            await asyncio.wait_for(asyncio.shield(reply.task), 10)
    await sync_to_async(connections.close_all)()


@sync_to_async
def echo_conversation(user):
    credential = provider_services.credential_create(actor=user, preset="echo", name="Echo")
    return services.conversation_start(actor=user, credential=credential, model="echo")


async def frames_until(ws, kind: str, timeout: float) -> tuple[list[dict], float]:
    """Frames up to the first of type `kind`, and how long that took."""
    started, seen = time.monotonic(), []
    while True:
        left = timeout - (time.monotonic() - started)
        if left <= 0:
            raise TimeoutError(f"no {kind!r} frame within {timeout:.1f}s (got {seen[-3:]})")
        frame = await ws.receive_json_from(timeout=left)
        seen.append(frame)
        if frame["type"] == kind:
            return seen, time.monotonic() - started


async def probe(user, conversation, question: str) -> tuple[float, float]:
    """Another user opens their chat and asks something: (handshake s, first token s)."""
    started = time.monotonic()
    async with connect(f"/ws/chat/{conversation.pk}/", user=user, timeout=NORMAL) as (ws, ok):
        assert ok, "the handshake was refused or took too long"
        await frames_until(ws, "hello", NORMAL)
        handshake = time.monotonic() - started
        await ws.send_json_to({"type": "send", "parent_id": None, "content": question})
        _, first_token = await frames_until(ws, "delta", NORMAL)
        frames, _ = await frames_until(ws, "final", 10)
        assert frames[-1]["status"] == MessageStatus.COMPLETE
    return handshake, first_token


async def test_another_users_chat_stays_responsive_while_a_200000_character_word_is_counted(
    alice, charlie_outsider
):
    heavy = await echo_conversation(alice)
    light = await echo_conversation(charlie_outsider)
    baseline = await probe(charlie_outsider, light, "Warm-up: how fast is a normal chat here?")

    # The event loop itself must stay free too: a ticker notes its longest wait.
    lag, stop_ticking = [0.0], asyncio.Event()

    async def ticker():
        while not stop_ticking.is_set():
            before = time.monotonic()
            await asyncio.sleep(0.01)
            lag[0] = max(lag[0], time.monotonic() - before - 0.01)

    ticking = asyncio.create_task(ticker())
    probes = []
    async with connect(f"/ws/chat/{heavy.pk}/", user=alice) as (ws, ok):
        assert ok
        await frames_until(ws, "hello", NORMAL)
        sent_at = time.monotonic()
        # Echo reports no usage: the 200,000-character question and the reply that repeats it
        # are counted locally.
        await ws.send_json_to({"type": "send", "parent_id": None, "content": HUGE_WORD})
        started, _ = await frames_until(ws, "started", NORMAL)
        reply_id = started[-1]["reply"]
        final_task = asyncio.create_task(frames_until(ws, "final", 60))
        # Probe while that reply streams, is counted and is saved — at least twice.
        while not final_task.done() or len(probes) < 2:
            probes.append(await probe(charlie_outsider, light, f"Still there? ({len(probes)})"))
        finals, _ = await final_task
        settled_after = time.monotonic() - sent_at
    stop_ticking.set()
    await ticking

    print(
        f"baseline handshake {baseline[0]:.3f}s first token {baseline[1]:.3f}s; during: "
        + ", ".join(f"{h:.3f}s/{t:.3f}s" for h, t in probes)
        + f"; heavy reply settled after {settled_after:.2f}s; max loop lag {lag[0] * 1000:.0f} ms"
    )
    for handshake, first_token in probes:
        assert handshake < NORMAL and first_token < NORMAL
    assert lag[0] < 1.0, f"the event loop was blocked for {lag[0]:.2f}s"

    # The heavy call itself settled promptly, with a bounded local count.
    assert finals[-1]["status"] == MessageStatus.COMPLETE
    assert settled_after < 30
    reply = await sync_to_async(Message.objects.get)(pk=reply_id)
    row = await sync_to_async(UsageRecord.objects.get)(pk=reply.usage_id)
    assert row.status == "ok" and row.tokens_estimated is True
    assert HUGE_WORD in reply.content
    # The 200,000 letters are ~40,000+ tokens of input and of output, counted (not guessed).
    expected = await sync_to_async(tokens.count_text)(HUGE_WORD)
    assert row.input_tokens >= expected and row.output_tokens >= expected > 20_000
