"""The usage ledger's life (open → checkpoint → settle, the sweep of rows a dead process left) and
prices with prompt-cache and reasoning tokens (issue 8, items 4 and 7)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price

from billing import pricing
from billing.models import CallStatus, DailyUsage, UsageRecord
from billing.pricing import Tokens
from billing.services import (
    usage_checkpoint,
    usage_open,
    usage_settle,
    usage_settle_stale,
)

pytestmark = pytest.mark.django_db

QUANTUM = Decimal("0.000000001")


def open_row(user, *, model="gpt-4o-mini", provider_id="openai", local=False, **fields):
    return usage_open(
        local=local,
        input_estimate=fields.pop("input_estimate", 120),
        user=user,
        preset=fields.pop("preset", "openai"),
        provider_id=provider_id,
        model=model,
        feature="api",
        **fields,
    )


def genai(model, provider_id, **usage) -> Decimal:
    return Decimal(calc_price(PriceUsage(**usage), model, provider_id=provider_id).total_price)


# --- Open, checkpoint, settle ---------------------------------------------------------------------


def test_an_opened_row_is_running_with_a_heartbeat_and_the_prompt_estimate_but_no_rollup(alice):
    row = open_row(alice)
    row.refresh_from_db()
    assert row.status == CallStatus.RUNNING and row.heartbeat_at is not None
    assert row.input_tokens == 120 and row.tokens_estimated is True
    assert row.cost is None
    assert not DailyUsage.objects.exists()  # counted when settled, never before


def test_a_checkpoint_moves_the_tokens_and_the_heartbeat_of_a_running_row_only(alice):
    row = open_row(alice)
    before = UsageRecord.objects.get(pk=row.pk).heartbeat_at
    assert usage_checkpoint(pk=row.pk, tokens=Tokens(input=120, output=40, estimated=True))
    row.refresh_from_db()
    assert row.output_tokens == 40 and row.heartbeat_at >= before
    usage_settle(
        record=row, status=CallStatus.OK, tokens=Tokens(10, 5), local=False, preset="openai"
    )
    # A settled row never changes again.
    assert not usage_checkpoint(pk=row.pk, tokens=Tokens(input=999, output=999))
    row.refresh_from_db()
    assert (row.input_tokens, row.output_tokens) == (10, 5)


def test_settling_prices_the_call_clears_the_heartbeat_and_rolls_it_up_once(alice):
    row = open_row(alice)
    record, settled = usage_settle(
        record=row,
        status=CallStatus.OK,
        tokens=Tokens(input=1000, output=200),
        local=False,
        preset="openai",
        finish_reason="stop",
        ttft_ms=120,
        retry_wait_ms=500,
    )
    assert settled
    record.refresh_from_db()
    assert record.status == CallStatus.OK and record.heartbeat_at is None
    assert record.cost == genai("gpt-4o-mini", "openai", input_tokens=1000, output_tokens=200)
    assert record.cost_source == "provider" and record.finish_reason == "stop"
    assert (record.ttft_ms, record.retry_wait_ms) == (120, 500)
    [day] = DailyUsage.objects.all()
    assert (day.calls, day.input_tokens, day.output_tokens) == (1, 1000, 200)
    # A second settle (say the sweep raced it) changes nothing and counts nothing.
    again, settled = usage_settle(
        record=row, status=CallStatus.ERROR, tokens=Tokens(5, 5), local=False, preset="openai"
    )
    assert not settled and again.status == CallStatus.OK
    assert DailyUsage.objects.get().calls == 1


def test_a_local_credentials_row_settles_at_zero(alice):
    row = open_row(alice, model="llama3.2:3b", provider_id="", preset="ollama", local=True)
    record, _ = usage_settle(
        record=row, status=CallStatus.OK, tokens=Tokens(50, 50), local=True, preset="ollama"
    )
    assert record.cost == 0 and record.cost_source == "local"


# --- The sweep -------------------------------------------------------------------------------------


def test_the_sweep_settles_rows_a_dead_process_left_running_from_their_checkpoint(alice):
    dead = open_row(alice)
    usage_checkpoint(pk=dead.pk, tokens=Tokens(input=300, output=80, estimated=True))
    UsageRecord.objects.filter(pk=dead.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=5),
        created_at=timezone.now() - timedelta(minutes=6),
    )
    fresh = open_row(alice)  # another process's call, heartbeating
    mine = open_row(alice)
    UsageRecord.objects.filter(pk=mine.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))

    assert usage_settle_stale(running={mine.pk}) == 1

    dead.refresh_from_db()
    assert dead.status == CallStatus.INTERRUPTED and dead.error_code == "interrupted"
    assert (dead.input_tokens, dead.output_tokens) == (300, 80)
    assert dead.tokens_estimated and dead.cost_source == "estimated"
    assert dead.cost == genai("gpt-4o-mini", "openai", input_tokens=300, output_tokens=80)
    assert dead.duration_ms == pytest.approx(60_000, rel=0.01)  # open → last heartbeat
    assert DailyUsage.objects.get().calls == 1
    for row in (fresh, mine):
        row.refresh_from_db()
        assert row.status == CallStatus.RUNNING
    assert usage_settle_stale(running={mine.pk}) == 0  # idempotent


def test_the_sweep_keeps_a_local_row_at_zero(alice):
    row = open_row(alice, model="llama3.2:3b", provider_id="", preset="ollama", local=True)
    UsageRecord.objects.filter(pk=row.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert usage_settle_stale() == 1
    row.refresh_from_db()
    assert row.cost == 0 and row.cost_source == "local"


# --- Prices with cache and reasoning tokens ----------------------------------------------------------


def test_openai_cached_prompt_tokens_are_priced_at_the_cache_read_rate():
    # 1,200 prompt tokens of which 1,000 were read from the cache (issue 8's example: charged
    # 68 % too much when the cache was ignored).
    cost = pricing.cost_for(
        provider_id="openai",
        preset="openai",
        model="gpt-4o-mini",
        local=False,
        tokens=Tokens(input=1200, output=100, cache_read=1000),
    )
    ignored = pricing.cost_for(
        provider_id="openai",
        preset="openai",
        model="gpt-4o-mini",
        local=False,
        tokens=Tokens(input=1200, output=100),
    )
    assert cost.amount == genai(
        "gpt-4o-mini", "openai", input_tokens=1200, cache_read_tokens=1000, output_tokens=100
    ).quantize(QUANTUM)
    assert cost.amount < ignored.amount
    assert Decimal(cost.snapshot["cache_read_per_mtok"]) < Decimal(cost.snapshot["input_per_mtok"])


def test_anthropic_cache_reads_and_writes_are_part_of_the_input_and_priced_as_such():
    # 200 uncached + 1,000 read + 500 written (issue 8: recorded as 200 input, 75 % too little).
    tokens = Tokens(input=1700, output=100, cache_read=1000, cache_write=500)
    cost = pricing.cost_for(
        provider_id="anthropic",
        preset="anthropic",
        model="claude-3-5-haiku-latest",
        local=False,
        tokens=tokens,
    )
    assert cost.amount == genai(
        "claude-3-5-haiku-latest",
        "anthropic",
        input_tokens=1700,
        cache_read_tokens=1000,
        cache_write_tokens=500,
        output_tokens=100,
    ).quantize(QUANTUM)
    uncached_only = genai(
        "claude-3-5-haiku-latest", "anthropic", input_tokens=200, output_tokens=100
    )
    assert cost.amount > 2 * uncached_only
    assert Decimal(cost.snapshot["cache_write_per_mtok"]) > Decimal(cost.snapshot["input_per_mtok"])


def test_reasoning_tokens_are_priced_as_output_tokens():
    with_reasoning = pricing.cost_for(
        provider_id="openai",
        preset="openai",
        model="o3-mini",
        local=False,
        tokens=Tokens(input=100, output=1000, reasoning=800),
    )
    plain = pricing.cost_for(
        provider_id="openai",
        preset="openai",
        model="o3-mini",
        local=False,
        tokens=Tokens(input=100, output=1000),
    )
    assert with_reasoning.amount == plain.amount > 0


def test_an_admin_override_prices_cache_tokens_as_input():
    from billing.models import PriceOverride

    PriceOverride.objects.create(
        provider_id="openai", model="gpt-4o-mini", input_per_mtok=1, output_per_mtok=2
    )
    cost = pricing.cost_for(
        provider_id="openai",
        preset="openai",
        model="gpt-4o-mini",
        local=False,
        tokens=Tokens(input=1_000_000, output=1_000_000, cache_read=900_000),
    )
    assert cost.amount == Decimal(3)
