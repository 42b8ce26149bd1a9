"""Writes for billing: the usage ledger and its daily rollups."""

from __future__ import annotations

from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from billing.models import CallStatus, UsageRecord

# One statement keeps the rollup right under concurrent writers (no read-modify-write race).
_ROLLUP_SQL = """
INSERT INTO billing_dailyusage
    (day, user_id, team_id, credential_id, provider_id, model, calls, errors,
     input_tokens, output_tokens, cost, unpriced_calls)
VALUES (%s, %s, %s, %s, %s, %s, 1, %s, %s, %s, %s, %s)
ON CONFLICT ON CONSTRAINT billing_dailyusage_unique DO UPDATE SET
    calls = billing_dailyusage.calls + 1,
    errors = billing_dailyusage.errors + EXCLUDED.errors,
    input_tokens = billing_dailyusage.input_tokens + EXCLUDED.input_tokens,
    output_tokens = billing_dailyusage.output_tokens + EXCLUDED.output_tokens,
    cost = billing_dailyusage.cost + EXCLUDED.cost,
    unpriced_calls = billing_dailyusage.unpriced_calls + EXCLUDED.unpriced_calls
"""


@transaction.atomic
def usage_record(**fields) -> UsageRecord:
    """Append one ledger row and fold it into the day's rollup (two statements, one transaction)."""
    record = UsageRecord.objects.create(**fields)
    day = timezone.localdate(record.created_at)
    with connection.cursor() as cursor:
        cursor.execute(
            _ROLLUP_SQL,
            [
                day,
                record.user_id,
                record.team_id,
                record.credential_id,
                record.provider_id,
                record.model,
                int(record.status == CallStatus.ERROR),
                record.input_tokens,
                record.output_tokens,
                record.cost or Decimal(0),
                int(record.cost is None),
            ],
        )
    return record


# Rows of a credential being deleted fold into the rows that keep its spend without it
# (credential NULL), adding up where such a row already exists (an earlier deleted credential's
# usage of the same day and model) — a plain SET NULL would collide on the unique constraint.
_DETACH_SQL = """
WITH moved AS (
    DELETE FROM billing_dailyusage WHERE credential_id = %s
    RETURNING day, user_id, team_id, provider_id, model, calls, errors, input_tokens,
              output_tokens, cost, unpriced_calls
)
INSERT INTO billing_dailyusage
    (day, user_id, team_id, credential_id, provider_id, model, calls, errors,
     input_tokens, output_tokens, cost, unpriced_calls)
SELECT day, user_id, team_id, NULL, provider_id, model, calls, errors,
       input_tokens, output_tokens, cost, unpriced_calls
FROM moved
ON CONFLICT ON CONSTRAINT billing_dailyusage_unique DO UPDATE SET
    calls = billing_dailyusage.calls + EXCLUDED.calls,
    errors = billing_dailyusage.errors + EXCLUDED.errors,
    input_tokens = billing_dailyusage.input_tokens + EXCLUDED.input_tokens,
    output_tokens = billing_dailyusage.output_tokens + EXCLUDED.output_tokens,
    cost = billing_dailyusage.cost + EXCLUDED.cost,
    unpriced_calls = billing_dailyusage.unpriced_calls + EXCLUDED.unpriced_calls
"""


def rollups_detach_credential(*, credential_id: int) -> None:
    """Before a credential is deleted: keep its daily totals, without it (one statement).
    Call inside the transaction that deletes the credential."""
    with connection.cursor() as cursor:
        cursor.execute(_DETACH_SQL, [credential_id])
