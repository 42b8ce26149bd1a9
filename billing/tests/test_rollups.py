"""The daily rollup equals the ledger, whatever was written: one upsert per settled call, the
instance's day whatever zone a request activated, a deleted credential's totals kept, and a
rebuild from the ledger that lands on the same rows."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import services as account_services
from billing import rollups
from billing.models import CallStatus, CostSource, DailyUsage, UsageRecord
from billing.pricing import Tokens
from billing.services import rollups_detach_credential, usage_open, usage_settle
from billing.tests.conftest import random_calls, write_call

pytestmark = pytest.mark.django_db

KEY = ["day", "user_id", "team_id", "credential_id", "preset", "model", "operation"]
KEY += ["feature", "status"]


def rollup_rows() -> dict[tuple, dict]:
    return {
        tuple(row[k] for k in KEY): row
        for row in DailyUsage.objects.values(*KEY, *rollups.SUMS, "provider_id")
    }


def ledger_rows() -> dict[tuple, dict]:
    """The same totals straight from the ledger (what the rollup must equal)."""
    sums = {
        "calls": Count("id"),
        "errors": Count("id", filter=Q(status=CallStatus.ERROR)),
        "input_tokens": Sum("input_tokens"),
        "output_tokens": Sum("output_tokens"),
        "cache_read_tokens": Sum("cache_read_tokens"),
        "cache_write_tokens": Sum("cache_write_tokens"),
        "reasoning_tokens": Sum("reasoning_tokens"),
        "cost": Sum("cost", default=Decimal(0)),
        "estimated_cost": Sum(
            "cost", filter=Q(cost_source=CostSource.ESTIMATED), default=Decimal(0)
        ),
        "provider_calls": Count("id", filter=Q(cost_source=CostSource.PROVIDER)),
        "estimated_calls": Count("id", filter=Q(cost_source=CostSource.ESTIMATED)),
        "local_calls": Count("id", filter=Q(cost_source=CostSource.LOCAL)),
        "unpriced_calls": Count("id", filter=Q(cost__isnull=True)),
        "ttft_ms_sum": Sum("ttft_ms", default=0.0),
        "ttft_count": Count("ttft_ms"),
        "gen_output_tokens": Sum("output_tokens", filter=Q(tokens_per_second__gt=0), default=0),
        "gen_ms": Sum(
            F("output_tokens") * 1000.0 / F("tokens_per_second"),
            filter=Q(tokens_per_second__gt=0),
            default=0.0,
        ),
        "duration_ms_sum": Sum("duration_ms"),
    }
    grouped = (
        UsageRecord.objects.exclude(status=CallStatus.RUNNING)
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_default_timezone()))
        .values(*KEY)
        .annotate(**{f"sum_{name}": expression for name, expression in sums.items()})
    )
    return {
        tuple(row[k] for k in KEY): {name: row[f"sum_{name}"] for name in sums} for row in grouped
    }


def assert_same(rollup: dict, ledger: dict) -> None:
    assert rollup.keys() == ledger.keys()
    for key, row in ledger.items():
        for name in rollups.SUMS:
            want, got = row[name], rollup[key][name]
            if isinstance(want, float):
                assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-6), (key, name)
            else:
                assert got == want, (key, name)


def test_a_settled_call_adds_every_sum_its_dashboard_needs(alice):
    write_call(
        user=alice,
        input_tokens=1000,
        output_tokens=300,
        cache_read_tokens=400,
        reasoning_tokens=100,
        cost=Decimal("0.5"),
        cost_source=CostSource.ESTIMATED,
        ttft_ms=250,
        tokens_per_second=60,
    )
    write_call(user=alice, status=CallStatus.OK, cost=None, ttft_ms=None, tokens_per_second=None)
    [row] = DailyUsage.objects.all()
    assert (row.calls, row.input_tokens, row.output_tokens) == (2, 1100, 350)
    assert (row.cache_read_tokens, row.reasoning_tokens) == (400, 100)
    assert (row.cost, row.estimated_cost) == (Decimal("0.5"), Decimal("0.5"))
    assert (row.estimated_calls, row.unpriced_calls, row.provider_calls) == (1, 1, 0)
    assert (row.ttft_ms_sum, row.ttft_count) == (250, 1)
    assert row.gen_output_tokens == 300 and math.isclose(row.gen_ms, 5000)  # 300 tok at 60/s


def test_feature_operation_and_status_each_get_their_own_row(alice):
    write_call(user=alice, feature="chat")
    write_call(user=alice, feature="playground")
    write_call(user=alice, feature="chat", status=CallStatus.ERROR)
    write_call(user=alice, feature="rag", operation="embedding")
    rows = DailyUsage.objects.values_list("feature", "operation", "status", "calls", "errors")
    assert sorted(rows) == [
        ("chat", "chat", "error", 1, 1),
        ("chat", "chat", "ok", 1, 0),
        ("playground", "chat", "ok", 1, 0),
        ("rag", "embedding", "ok", 1, 0),
    ]


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/Los_Angeles"])
def test_the_rollup_day_is_the_instances_day_whatever_zone_the_request_activated(alice, zone):
    # 23:30 UTC on 1 March: 2 March in Tokyo, still 1 March in Los Angeles — and in UTC.
    at = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    with timezone.override(zone):
        write_call(user=alice, at=at)
    assert DailyUsage.objects.get().day.isoformat() == "2026-03-01"


def test_one_settled_call_costs_one_rollup_statement(alice):
    row = usage_open(local=False, user=alice, preset="openai", provider_id="openai", model="m")
    with CaptureQueriesContext(connection) as queries:
        usage_settle(
            record=row, status=CallStatus.OK, tokens=Tokens(10, 5), local=False, preset="openai"
        )
    rollup_statements = [q for q in queries if "billing_dailyusage" in q["sql"]]
    assert len(rollup_statements) == 1


def test_the_rollup_equals_the_ledger_over_random_calls_and_a_rebuild_lands_on_the_same_rows(
    alice, team, bob_teammate, charlie_outsider, make_key
):
    rng = random.Random(20261130)
    outside = account_services.team_create(user=charlie_outsider, name="Elsewhere")
    keys = [None, make_key(alice), make_key(team, "anthropic"), make_key(team, "groq")]
    random_calls(
        rng,
        n=400,
        people=[alice, bob_teammate, charlie_outsider],
        teams=[None, team, outside],
        keys=keys,
        start=datetime(2026, 2, 26, 12, tzinfo=UTC),
        days=5,
    )
    # Calls opened and settled by the gate's path, and one still running (never counted).
    for tokens in (Tokens(30, 20), Tokens(7, 0)):
        row = usage_open(local=False, user=alice, preset="openai", provider_id="openai", model="x")
        usage_settle(record=row, status=CallStatus.OK, tokens=tokens, local=False, preset="openai")
    usage_open(local=False, user=alice, preset="openai", provider_id="openai", model="running")

    live = rollup_rows()
    assert_same(live, ledger_rows())
    assert sum(r["calls"] for r in live.values()) == 402

    rebuilt = rollups.rollups_rebuild()
    assert rebuilt == len(live)
    assert_same(rollup_rows(), ledger_rows())


def test_deleting_a_credential_keeps_every_sum_of_its_days_without_it(alice, make_key):
    first, second = make_key(alice, name="one"), make_key(alice, name="two")
    write_call(user=alice, credential=first, ttft_ms=100, cost_source=CostSource.ESTIMATED)
    write_call(user=alice, credential=second, ttft_ms=300)
    write_call(user=alice, ttft_ms=None)
    for key in (first, second):
        rollups_detach_credential(credential_id=key.pk)
        key.delete()
    [row] = DailyUsage.objects.all()
    assert row.credential_id is None
    assert (row.calls, row.ttft_count, row.ttft_ms_sum) == (3, 2, 400)
    assert (row.estimated_calls, row.provider_calls) == (1, 2)


def team_totals(team, alice):
    from billing.usage import usage_query_for
    from billing.usage_figures import usage_figures

    figures = usage_figures(q=usage_query_for(user=alice, team=team, period="30d"))
    return figures.totals.__dict__, [day.__dict__ for day in figures.days]


def test_a_teams_usage_totals_are_the_same_after_a_member_deletes_their_account(
    alice, team, bob_teammate, vera_viewer, make_key
):
    key = make_key(team)
    for person in (alice, bob_teammate, bob_teammate, vera_viewer):
        write_call(user=person, team=team, credential=key, cost=Decimal("0.25"))
    write_call(user=bob_teammate, team=team, credential=key, status=CallStatus.ERROR)
    before = team_totals(team, alice)
    assert before[0]["calls"] == 5

    bob_teammate.delete()
    vera_viewer.delete()  # a second one lands on the rows the first left: they add up

    assert team_totals(team, alice) == before
    assert_same(rollup_rows(), ledger_rows())
    assert UsageRecord.objects.filter(user=None).count() == 4


def test_a_members_own_usage_keeps_the_calls_of_a_team_that_was_deleted(alice, team, make_key):
    write_call(user=alice, team=team, credential=make_key(team), cost=Decimal("0.5"))
    write_call(user=alice, cost=Decimal("0.25"))
    mine_before = team_totals(None, alice)

    team.delete()  # its credential goes with it, by cascade

    assert team_totals(None, alice) == mine_before
    assert_same(rollup_rows(), ledger_rows())


def test_an_account_deleted_inside_a_rolled_back_transaction_keeps_its_rollup_rows(
    alice, team, bob_teammate
):
    from django.db import transaction

    write_call(user=bob_teammate, team=team)
    before = rollup_rows()
    with pytest.raises(RuntimeError), transaction.atomic():
        bob_teammate.delete()
        raise RuntimeError
    assert rollup_rows() == before
