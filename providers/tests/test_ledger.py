"""The gate keeps the ledger crash-proof (issue 8, item 7): a call's row is opened `running`
before the provider is called, checkpointed while it streams, settled once; the sweep leaves a
live call alone; counting never blocks the loop. Real SDKs against the fake over HTTP."""

from __future__ import annotations

import asyncio
import contextlib

import openai  # noqa: F401 - a cold SDK import must not count against the timeouts
import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from billing.models import CallStatus, DailyUsage, UsageRecord
from billing.services import usage_settle_stale
from providers import gate
from providers.adapters.base import (
    CompletionRequest,
    Finished,
    Message,
    ProviderError,
    TextDelta,
    Timeouts,
)
from providers.gate import completion_stream, settlement

pytestmark = pytest.mark.django_db(transaction=True)

FAST = Timeouts(connect=1, read=2, total=20)


def make_request(model="gpt-4o-mini", **fields) -> CompletionRequest:
    fields.setdefault("messages", (Message("user", "Count slowly to forty"),))
    return CompletionRequest(model=model, **fields)


@sync_to_async
def rows() -> list[UsageRecord]:
    return list(UsageRecord.objects.order_by("id"))


@pytest.fixture(autouse=True)
async def _close_worker_thread_connection():
    yield
    await sync_to_async(connections.close_all)()


async def test_the_row_is_opened_running_before_the_provider_answers_then_settled_once(
    fake_provider, make_credential, alice
):
    fake_provider.configure(ttft=0.8, reply_tokens=5)
    credential = await sync_to_async(make_credential)(alice, "openai")
    events = completion_stream(
        user=alice, credential_id=credential.pk, request=make_request(), timeouts=FAST
    )
    async with contextlib.aclosing(events):
        first = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0.4)  # the provider hasn't answered yet
        [opened] = await rows()
        assert opened.status == CallStatus.RUNNING and opened.heartbeat_at is not None
        assert opened.input_tokens > 0 and opened.tokens_estimated
        assert opened.pk in gate.live_ids()
        assert not await sync_to_async(DailyUsage.objects.exists)()
        # A sweep meanwhile leaves a live call alone (its heartbeat is fresh).
        assert await sync_to_async(usage_settle_stale)(running=gate.live_ids()) == 0
        seen = [await first]
        async for event in events:
            seen.append(event)
    finished = seen[-1]
    assert type(finished) is Finished
    [settled] = await rows()
    assert settled.pk == opened.pk == finished.usage_id
    assert settled.status == CallStatus.OK and settled.heartbeat_at is None
    assert settled.finish_reason == "stop" and settled.tokens_estimated is False
    assert settled.pk not in gate.live_ids()
    assert (await sync_to_async(DailyUsage.objects.get)()).calls == 1


async def test_a_streaming_call_checkpoints_its_tokens_so_far_about_once_a_second(
    fake_provider, make_credential, alice, monkeypatch
):
    monkeypatch.setattr(settlement, "CHECKPOINT_INTERVAL", 0.1)
    fake_provider.configure(reply_tokens=40, tokens_per_second=40, usage=False)
    credential = await sync_to_async(make_credential)(alice, "openai")
    seen_running = []
    async with contextlib.aclosing(
        completion_stream(
            user=alice, credential_id=credential.pk, request=make_request(), timeouts=FAST
        )
    ) as events:
        async for event in events:
            if type(event) is TextDelta and len(seen_running) < 100:
                [row] = await rows()
                if row.status == CallStatus.RUNNING:
                    seen_running.append((row.output_tokens, row.heartbeat_at))
    outputs = [output for output, _ in seen_running]
    assert outputs == sorted(outputs) and outputs[-1] > outputs[0] >= 0
    assert len({heartbeat for _, heartbeat in seen_running}) >= 3  # heartbeats moved on
    [row] = await rows()
    assert row.status == CallStatus.OK and row.tokens_estimated  # usage=False: counted here


async def test_an_error_settles_the_opened_row_and_the_error_knows_it(
    fake_provider, make_credential, alice, one_attempt
):
    fake_provider.configure(status=500)
    credential = await sync_to_async(make_credential)(alice, "openai")
    with pytest.raises(ProviderError) as info:
        async with contextlib.aclosing(
            completion_stream(
                user=alice, credential_id=credential.pk, request=make_request(), timeouts=FAST
            )
        ) as events:
            async for _ in events:
                pass
    [row] = await rows()
    assert info.value.usage_id == row.pk
    assert row.status == CallStatus.ERROR and row.error_code == "provider_error"
    assert (row.input_tokens, row.output_tokens, row.cost) == (0, 0, 0)  # nothing reached it
    assert row.heartbeat_at is None and not gate.live_ids()


async def test_a_call_refused_by_our_checks_is_written_settled_at_once(
    fake_provider, make_credential, alice
):
    credential = await sync_to_async(make_credential)(alice, "openai")
    with pytest.raises(ProviderError) as info:
        async with contextlib.aclosing(
            completion_stream(
                user=alice,
                credential_id=credential.pk,
                request=make_request(temperature=7),
                timeouts=FAST,
            )
        ) as events:
            async for _ in events:
                pass
    [row] = await rows()
    assert info.value.code == "bad_request" and row.status == CallStatus.ERROR
    assert row.cost == 0 and row.heartbeat_at is None
    assert not fake_provider.requests
