"""A model call's admission in one statement (the gate's prepare hop; docs/performance.md, P6).

Before a call reaches a provider it must hold a slot under the user's concurrency cap
(providers.concurrency), pass the budgets that match it (billing.budgets) and have its usage row
opened (billing.services.usage_open: what makes the ledger crash-proof). Done one by one that is
three statements and a transaction (BEGIN … COMMIT: five round trips before the first token).
Most calls match no budget, so one statement does it all: a CTE takes the slot, asks whether any
budget matches, and inserts the row only when it got a slot and no budget applies — atomic on
its own, no transaction. When a budget does match, the slot is kept and the reservation and the
row follow in one transaction as before (`admitted.budgeted`); the gate frees the slot if the
budget refuses."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.db import connection

from billing import budgets
from billing.models import UsageRecord
from billing.services import usage_open_statement
from providers import concurrency
from workbench import statements

_ADMIT_SQL = """
WITH slot AS ({take}),
matching AS (
    SELECT 1 FROM billing_budget WHERE NOT %(local)s AND {match} LIMIT 1
),
opened AS (
    {insert} WHERE EXISTS (SELECT 1 FROM slot) AND NOT EXISTS (SELECT 1 FROM matching)
    RETURNING id
)
SELECT (SELECT id FROM slot), (SELECT id FROM opened), EXISTS (SELECT 1 FROM matching)
"""


@dataclass
class Admitted:
    slot: concurrency.Slot
    record: UsageRecord | None  # None when `budgeted`: the reservation comes first
    budgeted: bool  # a budget matches: reserve (billing.budgets), then open the row


def call_admit(
    *,
    user_id: int,
    team_id: int | None,
    credential_id: int,
    preset: str,
    model: str,
    local: bool,
    usage: dict,
) -> Admitted:
    """Take a slot of `user_id`'s cap and, unless a budget matches the call, open its usage row
    (`usage`: the fields of `usage_open`) — one statement. Raises TooManyCalls (nothing taken,
    nothing written) when every slot is taken."""
    limit = concurrency.max_calls()
    record, insert, params = usage_open_statement(**usage)
    params.update(
        user=user_id,
        limit=limit,
        ttl=concurrency.SLOT_TTL,
        holder=secrets.token_hex(16),
        local=local,
        team=team_id,
        credential=credential_id,
        preset=preset,
        model=model,
    )
    sql = _ADMIT_SQL.format(take=concurrency.TAKE_SQL, match=budgets.MATCH_WHERE, insert=insert)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        slot_id, record_id, _ = cursor.fetchone()  # (record_id None with a slot: budgeted)
        if slot_id is None:  # all taken, or this user's slot rows don't exist yet
            cursor.execute(concurrency.CREATE_SQL, params)
            # Again even when the INSERT added nothing: a concurrent first call of the same
            # user may have created the rows between our two statements.
            cursor.execute(sql, params)
            slot_id, record_id, _ = cursor.fetchone()
    if slot_id is None:
        raise concurrency.TooManyCalls(limit)
    slot = concurrency.Slot(slot_id, params["holder"])
    if record_id is None:
        return Admitted(slot, None, True)
    return Admitted(slot, statements.saved(record, record_id), False)
