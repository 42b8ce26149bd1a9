"""Settlement (`budget_settle`): the call's holds replaced by its real cost in each window (one
transaction, the admission's lock order), then the alerts of any threshold it crossed;
`budget_release` for a call that never reached a provider."""

from __future__ import annotations

from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from billing.budgets.reservations import Reservation

_SETTLE_SQL = """
WITH locked AS (
    SELECT id FROM billing_budgetwindow WHERE id = ANY(%(windows)s)
    ORDER BY budget_id, start FOR UPDATE
)
UPDATE billing_budgetwindow AS w
SET spent = w.spent + %(cost)s, calls = w.calls + 1, unpriced_calls = w.unpriced_calls + %(unpriced)s
FROM locked WHERE w.id = locked.id
RETURNING w.id, w.spent
"""


def budget_settle(reservation: Reservation, *, cost: Decimal | None) -> None:
    """Replace the reservation by the actual cost (None: unpriced) and raise the alerts of any
    threshold that crossed. Idempotent: a second call does nothing."""
    if reservation.settled:
        return
    reservation.settled = True
    if not reservation.applied:
        return
    charge = cost or Decimal(0)
    with transaction.atomic(), connection.cursor() as cursor:
        # This call's holds, and any a dead process left behind in these windows.
        cursor.execute(
            "DELETE FROM billing_budgethold WHERE reservation = %s "
            "OR (window_id = ANY(%s) AND expires_at <= %s)",
            [reservation.key, [a.window_id for a in reservation.applied], timezone.now()],
        )
        cursor.execute(
            _SETTLE_SQL,
            {
                "windows": [a.window_id for a in reservation.applied],
                "cost": charge,
                "unpriced": int(cost is None),
            },
        )
        spent_after = dict(cursor.fetchall())
    if charge <= 0:
        return
    crossings = []
    for applied in reservation.applied:
        after = spent_after.get(applied.window_id)
        if after is None:
            continue
        before = after - charge
        crossed = [
            t for t in alert_levels(applied.thresholds) if before < applied.limit * t / 100 <= after
        ]
        if crossed:
            crossings.append((applied, crossed, after))
    if crossings:
        from billing.alerts import alert_crossings

        alert_crossings(crossings)


def alert_levels(thresholds) -> list[int]:
    """The owner's thresholds plus 100 % (the limit itself always alerts), ascending."""
    return sorted({int(t) for t in thresholds if 0 < int(t) <= 1000} | {100})


def budget_release(reservation: Reservation) -> None:
    """A call that never reached a provider: drop its holds, charge nothing, count nothing."""
    if reservation.settled:
        return
    reservation.settled = True
    if reservation.key is not None:
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM billing_budgethold WHERE reservation = %s", [reservation.key]
            )
