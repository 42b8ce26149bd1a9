"""The daily rollup of the usage ledger (`DailyUsage`): what one settled call adds to it, and
the SQL that keeps it — one upsert per call, a detach when a credential, an account or a team
goes, a rebuild from the ledger. The dashboard reads these rows only (billing.usage)."""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.utils import timezone

from billing.models import CallStatus, CostSource, UsageRecord

# The rollup's key: one row per combination (NULLs equal, see the unique constraint).
KEYS = (
    "day",
    "user_id",
    "team_id",
    "credential_id",
    "preset",
    "model",
    "operation",
    "feature",
    "status",
)
# Carried along, functionally dependent on the key (the credential's preset's price provider).
CARRIED = ("provider_id",)
# Added up on conflict.
SUMS = (
    "calls",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost",
    "estimated_cost",
    "provider_calls",
    "estimated_calls",
    "local_calls",
    "unpriced_calls",
    "ttft_ms_sum",
    "ttft_count",
    "gen_output_tokens",
    "gen_ms",
    "duration_ms_sum",
)
COLUMNS = KEYS + CARRIED + SUMS

_ADD = ",\n    ".join(f"{c} = billing_dailyusage.{c} + EXCLUDED.{c}" for c in SUMS)

# One statement keeps the rollup right under concurrent writers (no read-modify-write race).
UPSERT_SQL = f"""
INSERT INTO billing_dailyusage ({", ".join(COLUMNS)})
VALUES ({", ".join(["%s"] * len(COLUMNS))})
ON CONFLICT ON CONSTRAINT billing_dailyusage_unique DO UPDATE SET
    {_ADD}
"""  # noqa: S608 - only the column-name constants above are formatted in


# Rows of a credential, user or team being deleted fold into the rows that keep their figures
# without it (that column NULL, as the ledger's SET NULL leaves its calls), adding up where such a
# row already exists (an earlier deleted credential's or member's usage of the same day and model)
# — a plain SET NULL would collide on the unique constraint. The moved rows share the detached
# column's value, so no two of them land on one key.
def _detach_sql(column: str) -> str:
    moved = ", ".join("NULL" if c == column else c for c in COLUMNS)
    return f"""
WITH moved AS (
    DELETE FROM billing_dailyusage WHERE {column} = %s RETURNING *
)
INSERT INTO billing_dailyusage ({", ".join(COLUMNS)})
SELECT {moved} FROM moved
ON CONFLICT ON CONSTRAINT billing_dailyusage_unique DO UPDATE SET
    {_ADD}
"""  # noqa: S608 - only the column-name constants above are formatted in


DETACH_SQL = {column: _detach_sql(column) for column in ("credential_id", "user_id", "team_id")}

# The whole rollup from the ledger's settled rows, days in the instance's zone (%s). Used by
# the migration that added dimensions, by `rollups_rebuild` and the P9 bench.
REBUILD_SQL = """
INSERT INTO billing_dailyusage (
    day, user_id, team_id, credential_id, preset, model, operation, feature, status,
    provider_id, calls, errors, input_tokens, output_tokens, cache_read_tokens,
    cache_write_tokens, reasoning_tokens, cost, estimated_cost, provider_calls,
    estimated_calls, local_calls, unpriced_calls, ttft_ms_sum, ttft_count, gen_output_tokens,
    gen_ms, duration_ms_sum)
SELECT (created_at AT TIME ZONE %s)::date, user_id, team_id, credential_id, preset, model,
    operation, feature, status, max(provider_id), count(*),
    count(*) FILTER (WHERE status = 'error'),
    sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens),
    sum(reasoning_tokens), coalesce(sum(cost), 0),
    coalesce(sum(cost) FILTER (WHERE cost_source = 'estimated'), 0),
    count(*) FILTER (WHERE cost_source = 'provider'),
    count(*) FILTER (WHERE cost_source = 'estimated'),
    count(*) FILTER (WHERE cost_source = 'local'),
    count(*) FILTER (WHERE cost IS NULL),
    coalesce(sum(ttft_ms), 0), count(ttft_ms),
    coalesce(sum(output_tokens) FILTER (WHERE tokens_per_second > 0), 0),
    coalesce(sum(output_tokens / tokens_per_second * 1000) FILTER (WHERE tokens_per_second > 0), 0),
    sum(duration_ms)
FROM billing_usagerecord
WHERE status <> 'running'
GROUP BY 1, user_id, team_id, credential_id, preset, model, operation, feature, status
"""


def rollup_day(created_at: datetime.datetime) -> datetime.date:
    """The instance's day of a call — never the zone a user's request happened to activate."""
    return timezone.localtime(created_at, timezone.get_default_timezone()).date()


def rollup_values(record: UsageRecord) -> list:
    """What one settled call adds to its row, in COLUMNS order."""
    source = record.cost_source
    tps = record.tokens_per_second
    generating = tps is not None and tps > 0
    return [
        rollup_day(record.created_at),
        record.user_id,
        record.team_id,
        record.credential_id,
        record.preset,
        record.model,
        record.operation,
        record.feature,
        record.status,
        record.provider_id,
        1,
        int(record.status == CallStatus.ERROR),
        record.input_tokens,
        record.output_tokens,
        record.cache_read_tokens,
        record.cache_write_tokens,
        record.reasoning_tokens,
        record.cost or Decimal(0),
        (record.cost or Decimal(0)) if source == CostSource.ESTIMATED else Decimal(0),
        int(source == CostSource.PROVIDER),
        int(source == CostSource.ESTIMATED),
        int(source == CostSource.LOCAL),
        int(record.cost is None),
        record.ttft_ms or 0.0,
        int(record.ttft_ms is not None),
        record.output_tokens if generating else 0,
        record.output_tokens / tps * 1000 if generating else 0.0,
        record.duration_ms or 0.0,
    ]


def rollup_add(record: UsageRecord) -> None:
    """Fold one settled call into its day's row: one statement."""
    with connection.cursor() as cursor:
        cursor.execute(UPSERT_SQL, rollup_values(record))


def rollups_detach_credential(*, credential_id: int) -> None:
    """Before a credential is deleted: keep its daily totals, without it (one statement).
    Call inside the transaction that deletes the credential."""
    with connection.cursor() as cursor:
        cursor.execute(DETACH_SQL["credential_id"], [credential_id])


def detach_before_delete(sender, instance, **kwargs) -> None:
    """pre_delete receiver for users, teams and credentials (billing.apps): the totals stay,
    without the deleted one, as the ledger keeps its calls — a team's history doesn't shrink when
    a member deletes their account, nor a member's own when a team goes. These rows go
    by cascade and from the Django admin — from `accounts`, which can't call billing — and Django
    sends pre_delete inside the deleting transaction, before the cascade's own deletes and SET
    NULLs: the rollup rows are moved out of their way first (nothing left for them to delete,
    nor to collide)."""
    column = {"User": "user_id", "Team": "team_id", "ProviderCredential": "credential_id"}
    with connection.cursor() as cursor:
        cursor.execute(DETACH_SQL[column[sender.__name__]], [instance.pk])


def rollups_rebuild() -> int:
    """Recompute every rollup row from the ledger (an operator's repair; the bench's loader).
    Returns the number of rollup rows."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM billing_dailyusage")
        cursor.execute(REBUILD_SQL, [settings.TIME_ZONE])
        return cursor.rowcount
