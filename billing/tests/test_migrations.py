"""Migrations meet data: the test database starts empty, so an upgrade that only fails on a
database with rows in it needs a test that puts rows there first."""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from billing.models import DailyUsage, UsageRecord

BEFORE = [("billing", "0005_provider_detail")]


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


@pytest.mark.django_db(transaction=True)
def test_the_usage_dimensions_migration_upgrades_an_instance_that_already_has_usage(alice, team):
    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes()
    _migrate(BEFORE)
    try:
        # The ledger's table is the same at 0005; the old rollup gets a row of its own.
        for cost, status in ((Decimal("0.25"), "ok"), (Decimal("0.5"), "ok"), (None, "error")):
            UsageRecord.objects.create(
                user=alice, team=team, preset="openai", provider_id="openai", model="gpt-4o",
                status=status, cost=cost, cost_source="provider" if cost else "unpriced",
                input_tokens=10, output_tokens=20,
            )  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO billing_dailyusage (day, user_id, team_id, provider_id, model, calls,"
                " errors, input_tokens, output_tokens, cost, unpriced_calls)"
                " VALUES (now()::date, %s, %s, 'openai', 'gpt-4o', 3, 1, 30, 60, 0.75, 1)",
                [alice.pk, team.pk],
            )
    finally:
        _migrate(leaves)  # what failed before the fix: pending trigger events

    rows = DailyUsage.objects.filter(user=alice, team=team, model="gpt-4o")
    assert sorted((r.status, r.calls, r.cost) for r in rows) == [
        ("error", 1, Decimal("0")),
        ("ok", 2, Decimal("0.75")),
    ]
    assert sum(r.unpriced_calls for r in rows) == 1
