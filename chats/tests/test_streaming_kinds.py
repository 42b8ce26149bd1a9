"""The reply runner serves other kinds of streamed replies than chat messages (the playground's
answers): each kind has its own hub, registry, usage context and persistence, and never reaches
a chat watcher that happens to follow the same id."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from asgiref.sync import sync_to_async

from billing.models import UsageRecord
from chats import streaming
from providers.adapters.base import CompletionRequest, Message

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass(frozen=True)
class Plan:
    message_id: int
    conversation_id: int
    user_id: int
    credential_id: int
    request: CompletionRequest
    user: object = field(default=None, compare=False)
    prefix: str = ""
    prior_cost: object = None
    prior_tokens: tuple[int, int] = (0, 0)


def other_kind(saved: list, checkpoints: list) -> streaming.Kind:
    def save(reply, finished, render):
        saved.append(
            (reply.message_id, reply.status, reply.text, streaming.usage_fields(reply, finished))
        )
        return {"type": "final", "id": reply.message_id, "status": reply.status}

    return streaming.Kind(
        hub=streaming.Hub("other"),
        running={},
        feature="other",
        context=lambda plan: {"thing": plan.conversation_id, "item": plan.message_id},
        checkpoint=lambda *, message_id, text: checkpoints.append((message_id, text)),
        save=save,
    )


async def test_a_reply_of_another_kind_streams_to_its_own_hub_and_is_saved_by_its_kind(
    alice, make_credential, fake_provider
):
    credential = await sync_to_async(make_credential)(alice, "openai_compatible")
    fake_provider.configure(reply="one two three", reasoning="thinking it over")
    saved, checkpoints = [], []
    kind = other_kind(saved, checkpoints)
    own, chat = [], []

    async def own_watcher(frame):
        own.append(frame)

    async def chat_watcher(frame):
        chat.append(frame)

    kind.hub.subscribe(7, own_watcher)
    streaming.hub.subscribe(7, chat_watcher)  # a chat conversation with the same id
    try:
        plan = Plan(
            message_id=41,
            conversation_id=7,
            user_id=alice.pk,
            user=alice,
            credential_id=credential.pk,
            request=CompletionRequest(model="fake", messages=(Message("user", "hi"),)),
        )
        reply = await streaming.begin(plan, started={"type": "started", "id": 41}, kind=kind)
        assert kind.running == {41: reply} and 41 not in streaming.RUNNING
        await asyncio.wait_for(asyncio.shield(reply.task), 5)
    finally:
        kind.hub.unsubscribe(7, own_watcher)
        streaming.hub.unsubscribe(7, chat_watcher)

    assert chat == []
    assert own[0]["type"] == "started" and own[-1]["type"] == "final"
    assert "".join(f["text"] for f in own if f["type"] == "delta") == "one two three"
    # Reasoning frames too go to the kind's own watchers, never to a chat's.
    assert "".join(f["text"] for f in own if f["type"] == "reasoning") == "thinking it over"
    assert kind.running == {}
    ((item, status, text, usage),) = saved
    assert (item, status, text) == (41, "complete", "one two three")
    row = await UsageRecord.objects.aget(pk=usage["usage_id"])
    assert (row.feature, row.context) == ("other", {"thing": 7, "item": 41})


async def test_a_stopped_reply_of_another_kind_finds_its_usage_row_by_its_own_context(
    alice, make_credential, fake_provider
):
    credential = await sync_to_async(make_credential)(alice, "openai_compatible")
    fake_provider.configure(reply_tokens=200, tokens_per_second=50)
    saved, checkpoints = [], []
    kind = other_kind(saved, checkpoints)
    plan = Plan(
        message_id=42,
        conversation_id=8,
        user_id=alice.pk,
        user=alice,
        credential_id=credential.pk,
        request=CompletionRequest(model="fake", messages=(Message("user", "hi"),)),
    )
    reply = await streaming.begin(plan, started={"type": "started"}, kind=kind)
    while not reply.parts:
        await asyncio.sleep(0.02)
    assert await streaming.stop(42, kind=kind) is True
    assert await streaming.stop(42) is False  # not a chat reply
    await asyncio.wait_for(asyncio.shield(reply.task), 5)

    ((_, status, text, usage),) = saved
    assert status == "stopped" and text
    row = await UsageRecord.objects.aget(pk=usage["usage_id"])
    assert (row.status, row.context) == ("stopped", {"thing": 8, "item": 42})
