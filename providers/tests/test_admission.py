"""The gate's admission and settlement as single statements (issue 11, P6): the slot, the
budget check and the opened usage row in one; the settled row, its rollup and the freed slot in
another. What each leaves in the database when it admits, refuses or finds the row settled."""

from __future__ import annotations

from contextlib import aclosing
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Budget, CallStatus, DailyUsage, PriceOverride, UsageRecord
from billing.pricing import Tokens
from billing.services import usage_settle, usage_settle_stale
from providers import admission, concurrency
from providers.adapters.base import CompletionRequest, Finished, ProviderError
from providers.adapters.base import Message as Turn
from providers.gate import completion_stream
from providers.models import CallSlot

# Transactional: the gate's hops run in another thread, on their own connection.
pytestmark = pytest.mark.django_db(transaction=True)


def usage_fields(user, **extra) -> dict:
    return {
        "local": False,
        "input_estimate": 12,
        "user": user,
        "team_id": None,
        "credential": None,
        "credential_name": "key",
        "preset": "openai",
        "provider_id": "openai",
        "model": "gpt-4o-mini",
        "operation": "chat",
        "feature": "api",
        "context": {"conversation": 7},
        **extra,
    }


def admit(user, **extra):
    return admission.call_admit(
        user_id=user.pk,
        team_id=None,
        credential_id=None,
        preset="openai",
        model="gpt-4o-mini",
        local=extra.pop("local", False),
        usage=usage_fields(user, **extra),
    )


def taken(user) -> int:
    return CallSlot.objects.filter(user=user, taken_until__gte=timezone.now()).count()


def test_an_admission_takes_a_slot_and_opens_the_running_row_in_one_statement(alice):
    concurrency.call_slot_release(slot=concurrency.call_slot_acquire(user_id=alice.pk))  # rows

    with CaptureQueriesContext(connection) as queries:
        admitted = admit(alice)

    assert len(queries) == 1
    assert not admitted.budgeted and taken(alice) == 1
    row = UsageRecord.objects.get(pk=admitted.record.pk)
    assert (row.status, row.input_tokens, row.tokens_estimated) == (CallStatus.RUNNING, 12, True)
    assert row.heartbeat_at is not None and row.context == {"conversation": 7}
    assert row.cost_source == "estimated" and row.created_at == admitted.record.created_at
    assert CallSlot.objects.get(pk=admitted.slot.id).holder == admitted.slot.holder
    assert not DailyUsage.objects.exists()  # rolled up when settled, never before


def test_a_first_admission_creates_the_users_slots(alice):
    admitted = admit(alice)

    assert CallSlot.objects.filter(user=alice).count() == concurrency.max_calls()
    assert taken(alice) == 1 and admitted.record is not None


def test_an_admission_at_the_cap_takes_nothing_and_writes_nothing(alice, settings):
    settings.WORKBENCH_MAX_CONCURRENT_CALLS = 2
    admit(alice), admit(alice)

    with pytest.raises(concurrency.TooManyCalls):
        admit(alice)

    assert taken(alice) == 2 and UsageRecord.objects.count() == 2


def test_a_matching_budget_leaves_the_row_to_the_reservation(alice):
    budget = Budget(name="mine", limit=Decimal("5"))
    budget.set_owner(alice)
    budget.save()

    admitted = admit(alice)

    assert admitted.budgeted and admitted.record is None
    assert taken(alice) == 1 and not UsageRecord.objects.exists()
    # A local model never looks at budgets: admitted in the one statement.
    local = admit(alice, local=True)
    assert not local.budgeted and local.record is not None


def test_settling_frees_the_slot_settles_the_row_and_rolls_it_up_in_one_statement(alice):
    admitted = admit(alice)

    with CaptureQueriesContext(connection) as queries:
        record, settled_now = usage_settle(
            record=admitted.record,
            status=CallStatus.OK,
            tokens=Tokens(input=10, output=20),
            local=False,
            preset="openai",
            also=concurrency.call_slot_release_statement(slot=admitted.slot),
        )

    writes = [q["sql"] for q in queries if "billing_priceoverride" not in q["sql"]]
    assert len(writes) == 1 and settled_now, [q["sql"][:80] for q in queries]
    row = UsageRecord.objects.get(pk=record.pk)
    assert (row.status, row.output_tokens, row.heartbeat_at) == (CallStatus.OK, 20, None)
    assert row.cost == record.cost and row.cost > 0
    assert taken(alice) == 0
    day = DailyUsage.objects.get()
    assert (day.calls, day.input_tokens, day.output_tokens, day.cost) == (1, 10, 20, row.cost)


def test_a_row_the_sweep_settled_first_is_left_and_not_rolled_up_twice_but_the_slot_is_freed(
    alice,
):
    admitted = admit(alice)
    UsageRecord.objects.filter(pk=admitted.record.pk).update(
        heartbeat_at=timezone.now() - timezone.timedelta(minutes=5)
    )
    assert usage_settle_stale() == 1  # a sweep that thought this process dead

    record, settled_now = usage_settle(
        record=admitted.record,
        status=CallStatus.OK,
        tokens=Tokens(input=10, output=20),
        local=False,
        preset="openai",
        also=concurrency.call_slot_release_statement(slot=admitted.slot),
    )

    assert not settled_now and record.status == CallStatus.INTERRUPTED
    assert DailyUsage.objects.get().calls == 1
    assert taken(alice) == 0


def _request() -> CompletionRequest:
    return CompletionRequest(model="gpt-4o-mini", messages=(Turn("user", "hello"),))


async def _drain(**kwargs) -> Finished:
    async with aclosing(completion_stream(**kwargs)) as events:
        async for event in events:
            if type(event) is Finished:
                return event
    raise AssertionError("no Finished event")


async def test_a_budget_refusal_frees_the_slot_it_took_and_opens_no_running_row(
    alice, make_credential, fake_provider
):
    credential = await sync_to_async(make_credential)(alice, "openai")

    @sync_to_async
    def broke():  # $0.01 left where a token costs $0.001: not even a short reply fits
        PriceOverride.objects.create(
            provider_id="openai", model="gpt-4o-mini", input_per_mtok=0, output_per_mtok=1000
        )
        budget = Budget(name="broke", limit=Decimal("0.01"))
        budget.set_owner(alice)
        budget.save()

    await broke()

    with pytest.raises(ProviderError) as refused:
        await _drain(user=alice, credential_id=credential.pk, request=_request())

    assert refused.value.code == "budget_exceeded"
    assert await sync_to_async(taken)(alice) == 0
    statuses = [r.status async for r in UsageRecord.objects.all()]
    assert statuses == [CallStatus.ERROR]  # the refusal's own row; nothing left running
    assert fake_provider.requests == []


async def test_a_call_through_the_gate_leaves_no_slot_taken_and_one_settled_rolled_up_row(
    alice, make_credential, fake_provider
):
    credential = await sync_to_async(make_credential)(alice, "openai")
    fake_provider.configure(reply_tokens=5)

    finished = await _drain(user=alice, credential_id=credential.pk, request=_request())

    row = await UsageRecord.objects.aget(pk=finished.usage_id)
    assert row.status == CallStatus.OK and row.output_tokens == finished.output_tokens
    assert await sync_to_async(taken)(alice) == 0
    assert (await DailyUsage.objects.aget()).calls == 1
