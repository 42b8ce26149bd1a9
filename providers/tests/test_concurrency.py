"""The per-user cap on concurrent model calls (providers.concurrency, issue 7 "Medium 2"): the
gate takes a slot per call and frees it when the call ends; beyond the cap a call is refused
with `too_many_calls` (429 on REST, an error in chat) while other users call freely. Slots of a
process that died expire; a long call renews its slot."""

from __future__ import annotations

import asyncio
import contextlib
import json
from contextlib import aclosing
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from billing.models import UsageRecord
from chats import services as chat_services
from chats import streaming
from chats.models import Message, MessageStatus
from providers import concurrency, services
from providers.adapters.base import CompletionRequest, Finished, ProviderError
from providers.adapters.base import Message as Turn
from providers.gate import completion_stream
from providers.models import CallSlot
from tests.api_client import assert_error


def _request(model="gpt-4o-mini") -> CompletionRequest:
    return CompletionRequest(model=model, messages=(Turn("user", "hello"),))


def fill_slots(user, count: int | None = None) -> list[concurrency.Slot]:
    """Take `count` (default: all) of `user`'s slots, as calls running elsewhere would."""
    return [
        concurrency.call_slot_acquire(user_id=user.pk)
        for _ in range(concurrency.max_calls() if count is None else count)
    ]


def taken(user=None) -> int:
    slots = CallSlot.objects.filter(taken_until__gte=timezone.now())
    return slots.filter(user=user).count() if user else slots.count()


async def _drain(**kwargs) -> Finished:
    async with aclosing(completion_stream(**kwargs)) as events:
        async for event in events:
            if type(event) is Finished:
                return event
    raise AssertionError("no Finished event")


# --- The slots -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_slots_run_out_at_the_cap_per_user_and_come_back_when_released(
    alice, bob_teammate, settings
):
    settings.WORKBENCH_MAX_CONCURRENT_CALLS = 2
    first, _second = fill_slots(bob_teammate)
    with pytest.raises(concurrency.TooManyCalls, match="2 model calls running at once"):
        concurrency.call_slot_acquire(user_id=bob_teammate.pk)
    concurrency.call_slot_acquire(user_id=alice.pk)  # alice has her own cap

    concurrency.call_slot_release(slot=first)
    concurrency.call_slot_acquire(user_id=bob_teammate.pk)
    settings.WORKBENCH_MAX_CONCURRENT_CALLS = 3  # a bigger cap applies at once
    concurrency.call_slot_acquire(user_id=bob_teammate.pk)
    assert taken(bob_teammate) == 3


@pytest.mark.django_db
def test_slots_of_a_dead_process_expire_and_its_late_release_frees_nothing(bob_teammate, settings):
    settings.WORKBENCH_MAX_CONCURRENT_CALLS = 2
    dead = fill_slots(bob_teammate)
    CallSlot.objects.update(taken_until=timezone.now() - timedelta(seconds=1))  # never renewed

    alive = fill_slots(bob_teammate)
    for slot in dead:  # a call that outlived its slot ends: the new holders keep theirs
        concurrency.call_slot_release(slot=slot)
        concurrency.call_slot_renew(slot=slot)
    assert taken(bob_teammate) == 2
    with pytest.raises(concurrency.TooManyCalls):
        concurrency.call_slot_acquire(user_id=bob_teammate.pk)
    assert {s.id for s in alive} == {s.id for s in dead}


# --- Through the gate --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_calls_beyond_the_cap_are_refused_while_other_users_call_freely(
    alice, bob_teammate, make_credential, fake_provider, settings
):
    settings.WORKBENCH_MAX_CONCURRENT_CALLS = 2
    fake_provider.configure(ttft=1.0)
    bobs = await sync_to_async(make_credential)(bob_teammate, "openai")
    alices = await sync_to_async(make_credential)(alice, "openai")
    slow = [
        asyncio.create_task(_drain(user=bob_teammate, credential_id=bobs.pk, request=_request()))
        for _ in range(2)
    ]
    try:
        for _ in range(100):  # until both calls hold their slot
            if await sync_to_async(taken)(bob_teammate) == 2:
                break
            await asyncio.sleep(0.02)
        with pytest.raises(ProviderError) as refused:
            await _drain(user=bob_teammate, credential_id=bobs.pk, request=_request())
        assert refused.value.code == "too_many_calls"
        assert "2 model calls running at once" in refused.value.message
        row = await UsageRecord.objects.aget(pk=refused.value.usage_id)
        assert (row.status, row.error_code, row.cost) == ("error", "too_many_calls", 0)
        assert fake_provider.requests.__len__() == 2  # the refused call never left

        finished = await _drain(user=alice, credential_id=alices.pk, request=_request())
        assert finished.usage_id
    finally:
        done = await asyncio.gather(*slow, return_exceptions=True)
    assert all(type(result) is Finished for result in done), done
    assert await sync_to_async(taken)() == 0  # every call freed its slot
    assert await _drain(user=bob_teammate, credential_id=bobs.pk, request=_request())


@pytest.mark.django_db(transaction=True)
async def test_a_stopped_or_failed_call_frees_its_slot(
    bob_teammate, make_credential, fake_provider, one_attempt
):
    credential = await sync_to_async(make_credential)(bob_teammate, "openai")
    fake_provider.configure(tokens_per_second=20, reply_tokens=100)
    async with aclosing(
        completion_stream(user=bob_teammate, credential_id=credential.pk, request=_request())
    ) as events:
        await anext(events)  # the first token: the call holds its slot
        assert await sync_to_async(taken)() == 1
    assert await sync_to_async(taken)() == 0  # stopped

    fake_provider.configure(status=500)
    with pytest.raises(ProviderError):
        await _drain(user=bob_teammate, credential_id=credential.pk, request=_request())
    assert await sync_to_async(taken)() == 0  # failed


@pytest.mark.django_db(transaction=True)
async def test_a_long_call_renews_its_slot(
    bob_teammate, make_credential, fake_provider, monkeypatch
):
    monkeypatch.setattr(concurrency, "SLOT_TTL", 1.0)
    monkeypatch.setattr(concurrency, "RENEW_EVERY", 0.2)
    credential = await sync_to_async(make_credential)(bob_teammate, "openai")
    fake_provider.configure(tokens_per_second=10, reply_tokens=15)  # ~1.5 s: longer than the TTL
    async with aclosing(
        completion_stream(user=bob_teammate, credential_id=credential.pk, request=_request())
    ) as events:
        await anext(events)
        first = (await CallSlot.objects.aget(holder__gt="")).taken_until
        await asyncio.sleep(1.1)
        slot = await CallSlot.objects.aget(holder__gt="")  # still taken, past its first expiry
        assert slot.taken_until > first
        async for _ in events:
            pass
    assert await sync_to_async(taken)() == 0


# --- What callers see ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_rest_answers_429_with_a_clear_message_at_the_cap(bob_teammate, api_for, make_credential):
    credential = make_credential(bob_teammate, "openai")
    fill_slots(bob_teammate)
    body = {
        "credential": credential.pk,
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
    }

    error = assert_error(
        api_for(bob_teammate).post("/api/completions", body), 429, "too_many_calls"
    )
    assert "running at once" in error["message"]
    sse = api_for(bob_teammate).client.post(
        "/api/completions",
        json.dumps({**body, "stream": True}),
        content_type="application/json",
        headers={"Accept": "text/event-stream"},
    )
    assert_error(sse, 429, "too_many_calls")  # before the stream starts, as a status


@pytest.mark.django_db
def test_a_catalogue_refresh_at_the_cap_is_refused_without_calling_the_provider(
    bob_teammate, make_credential, fake_provider, api_for
):
    credential = make_credential(bob_teammate, "openai")
    fill_slots(bob_teammate)

    response = api_for(bob_teammate).post(f"/api/credentials/{credential.pk}/models/")

    assert_error(response, 429, "too_many_calls")
    assert fake_provider.requests == []
    with pytest.raises(ProviderError):
        services.catalogue_refresh(actor=bob_teammate, credential=credential)


@pytest.mark.django_db(transaction=True)
async def test_a_chat_reply_at_the_cap_ends_with_a_clear_error(
    bob_teammate, make_credential, fake_provider
):
    from tests.websocket import connect

    credential = await sync_to_async(make_credential)(bob_teammate, "openai_compatible")
    conversation = await sync_to_async(chat_services.conversation_start)(
        actor=bob_teammate, credential=credential, model="fake-model"
    )
    await sync_to_async(fill_slots)(bob_teammate)
    try:
        async with connect(f"/ws/chat/{conversation.pk}/", user=bob_teammate) as (ws, connected):
            assert connected
            assert (await ws.receive_json_from(timeout=5))["type"] == "hello"
            await ws.send_json_to({"type": "send", "content": "hello?"})
            while (frame := await ws.receive_json_from(timeout=8))["type"] != "final":
                pass
        reply = await Message.objects.aget(pk=frame["id"])
        assert reply.status == MessageStatus.ERROR
        assert reply.error_code == "too_many_calls"
        assert "running at once" in reply.error_message
        assert "running at once" in frame["html"]
        assert fake_provider.requests == []
    finally:
        for running in list(streaming.RUNNING.values()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(running.task), 5)


@pytest.mark.django_db
def test_a_first_call_finds_a_slot_when_a_concurrent_first_call_created_the_rows(
    bob_teammate, monkeypatch
):
    """BUG (seen in tests/test_pool.py under load): seven first calls of one user at once —
    each found no slot rows, one created them, the others' INSERT … DO NOTHING added none and
    they gave up with too_many_calls although seven of eight slots were free."""
    from django.db import connection

    real_cursor = connection.cursor

    class Cursor:
        """The user's rows appear right after this caller's first (empty) take, as when a
        concurrent first call creates them in between."""

        def __init__(self):
            self.cursor, self.takes = real_cursor(), 0

        def __enter__(self):
            self.cursor.__enter__()
            return self

        def __exit__(self, *exc):
            return self.cursor.__exit__(*exc)

        def execute(self, sql, params):
            self.cursor.execute(sql, params)
            if sql is concurrency.TAKE_SQL and self.takes == 0:
                self.takes += 1
                CallSlot.objects.bulk_create(
                    CallSlot(user_id=params["user"], n=n, holder="") for n in range(params["limit"])
                )

        def __getattr__(self, name):
            return getattr(self.cursor, name)

    monkeypatch.setattr(connection, "cursor", Cursor)
    slot = concurrency.call_slot_acquire(user_id=bob_teammate.pk)
    monkeypatch.undo()
    assert CallSlot.objects.get(pk=slot.id).holder == slot.holder
