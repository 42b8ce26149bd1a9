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
