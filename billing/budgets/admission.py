"""Admission (`budget_reserve`): lock each matching budget's current window, sum the live holds
and hold the call's estimate in every hard budget — clamping `max_tokens` to what the tightest
can afford, or refusing with the budget that trips."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from django.db import connection, transaction
from django.utils import timezone

from billing import pricing, windows
from billing.budgets.matching import MatchedBudget, budgets_matching
from billing.budgets.refusals import refusal_exceeded, refusal_unpriced
from billing.budgets.reservations import (
    MTOK,
    Applied,
    Reservation,
    default_output_tokens,
    hold_seconds,
    min_reply_tokens,
)


@dataclass(frozen=True)
class Estimate:
    fixed: Decimal  # the prompt and any per-request fee
    per_output_token: Decimal

    def cost(self, output_tokens: int) -> Decimal:
        return self.fixed + self.per_output_token * output_tokens

    def affordable_tokens(self, available: Decimal) -> int:
        if self.per_output_token <= 0:
            return 1 << 30 if available >= self.fixed else 0
        room = (available - self.fixed) / self.per_output_token
        return max(0, int(room.to_integral_value(rounding=ROUND_FLOOR)))


def estimate_for(price: pricing.Price, input_tokens: int) -> Estimate:
    """At the model's first-tier price (the settlement charges the exact cost)."""
    return Estimate(
        fixed=price.input_per_mtok * input_tokens / MTOK + price.per_request,
        per_output_token=price.output_per_mtok / MTOK,
    )


_WINDOWS_SQL = """
INSERT INTO billing_budgetwindow (budget_id, start, "end", spent, calls, unpriced_calls)
SELECT b, s, e, 0, 0, 0 FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) AS t(b, s, e)
ORDER BY b
ON CONFLICT ON CONSTRAINT billing_budgetwindow_unique DO UPDATE SET budget_id = EXCLUDED.budget_id
RETURNING id, budget_id, spent, (xmax = 0) AS created
"""


@dataclass
class OpenWindow:
    budget: MatchedBudget
    window_id: int
    start: datetime
    end: datetime
    spent: Decimal
    held: Decimal = Decimal(0)

    @property
    def available(self) -> Decimal:
        return self.budget.limit - self.spent - self.held


def _lock_windows(budgets: list[MatchedBudget], now: datetime) -> list[OpenWindow]:
    """Create-or-lock the current window of each budget, in budget id order (one statement)."""
    bounds = {b.id: windows.window_for(b.period, b.time_zone, now) for b in budgets}
    params = [
        [b.id for b in budgets],
        [bounds[b.id][0] for b in budgets],
        [bounds[b.id][1] for b in budgets],
    ]
    with connection.cursor() as cursor:
        cursor.execute(_WINDOWS_SQL, params)
        rows = {row[1]: row for row in cursor.fetchall()}
    opened = []
    for budget in budgets:
        window_id, _, spent, created = rows[budget.id]
        start, end = bounds[budget.id]
        if created:
            spent = _spent_before(budget, start, now, window_id)
        opened.append(OpenWindow(budget, window_id, start, end, spent))
    return opened


def _spent_before(budget: MatchedBudget, start: datetime, now: datetime, window_id: int) -> Decimal:
    """A window created mid-period starts from what the ledger already holds for its scope, so
    a budget added on the 20th still sees the month's spend."""
    from billing.selectors import ledger_spent

    spent, calls, unpriced = ledger_spent(budget=budget, start=start, end=now)
    if calls:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE billing_budgetwindow SET spent = %s, calls = %s, unpriced_calls = %s "
                "WHERE id = %s",
                [spent, calls, unpriced, window_id],
            )
    return spent


def budget_reserve(
    *,
    user,
    team,
    credential_id: int | None,
    provider_id: str,
    model: str,
    max_tokens: int | None,
    input_tokens: int = 0,
    preset: str = "",
    local: bool = False,
    now: datetime | None = None,
) -> Reservation:
    """Admit a call, or raise `BudgetExceeded` naming the budget that refuses it. Returns the
    reservation, with `max_tokens` clamped to what the tightest hard budget can afford.
    `team` is the team the call is charged to (an id, a Team or None); `input_tokens` an
    instant estimate of the prompt."""
    if local:  # $0 by definition: money never blocks a local model
        return Reservation(max_tokens=max_tokens)
    team_id = getattr(team, "pk", team)
    budgets = budgets_matching(
        user_id=user.pk, team_id=team_id, credential_id=credential_id, preset=preset, model=model
    )
    if not budgets:
        return Reservation(max_tokens=max_tokens)
    now = now or timezone.now()
    price = pricing.price_for(provider_id or None, model, preset=preset)
    hard = [b for b in budgets if b.hard]
    if price is None and hard:
        raise refusal_unpriced(hard[0], model)
    output_tokens = max_tokens or default_output_tokens()
    estimate = estimate_for(price, input_tokens) if price else None
    amount, key, refusal = Decimal(0), None, None
    # No savepoint: the gate reserves inside its own transaction, which a refusal or an error
    # rolls back whole — a savepoint would only add two round trips to every call.
    with transaction.atomic(savepoint=False):
        opened = _lock_windows(budgets, now)
        holding = [o for o in opened if o.budget.hard]
        if holding and estimate is not None:
            key = uuid.uuid4()
            amount = estimate.cost(output_tokens).quantize(pricing.QUANTUM)
            # The common case in one statement: the live holds summed and, when the whole
            # estimate fits every hard budget, held. Otherwise clamp (or refuse) from the sums,
            # still under the windows' locks, so no one else's hold can slip in meanwhile.
            if not _sum_and_hold(holding, key, amount, now):
                output_tokens, refusal = _fit(holding, estimate, output_tokens)
                if refusal is None:
                    amount = estimate.cost(output_tokens).quantize(pricing.QUANTUM)
                    _hold(holding, key, amount, now)
                else:
                    amount, key = Decimal(0), None
    if refusal is not None:
        from billing.alerts import alert_refused

        exceeded = refusal_exceeded(refusal, estimate, output_tokens)
        exceeded.alert = functools.partial(
            alert_refused,
            budget_id=refusal.budget.id,
            window_start=refusal.start,
            spent=refusal.spent,
        )
        raise exceeded
    return Reservation(
        max_tokens=output_tokens if holding else max_tokens,
        amount=amount,
        key=key,
        applied=tuple(
            Applied(
                o.budget.id,
                o.window_id,
                o.start,
                o.budget.limit,
                o.budget.hard,
                o.budget.thresholds,
            )
            for o in opened
        ),
    )


def _fit(
    holding: list[OpenWindow], estimate: Estimate, output_tokens: int
) -> tuple[int, OpenWindow | None]:
    """(output tokens every hard budget can afford, None) or (…, the budget that refuses)."""
    tightest = min(holding, key=lambda o: (o.available, o.budget.id))
    if estimate.cost(output_tokens) <= tightest.available:
        return output_tokens, None
    affordable = min(output_tokens, estimate.affordable_tokens(tightest.available))
    if affordable < min(min_reply_tokens(), output_tokens):
        return output_tokens, tightest
    return affordable, None


_SUM_AND_HOLD_SQL = """
WITH held AS (
    SELECT w.id AS window_id, w.room, COALESCE(SUM(h.amount), 0) AS held
    FROM unnest(%(windows)s::bigint[], %(rooms)s::numeric[]) AS w(id, room)
    LEFT JOIN billing_budgethold AS h ON h.window_id = w.id AND h.expires_at > %(now)s
    GROUP BY w.id, w.room
), fits AS (
    SELECT bool_and(room - held >= %(amount)s) AS ok FROM held
), hold AS (
    INSERT INTO billing_budgethold (window_id, reservation, amount, created_at, expires_at)
    SELECT window_id, %(key)s, %(amount)s, %(now)s, %(expires)s FROM held, fits WHERE fits.ok
    RETURNING window_id
)
SELECT held.window_id, held.held, fits.ok FROM held, fits
"""


def _sum_and_hold(
    holding: list[OpenWindow], key: uuid.UUID, amount: Decimal, now: datetime
) -> bool:
    """Sum each window's live holds (into `held`) and, if `amount` fits all of them, hold it in
    each — one statement, run after the windows are locked (a new statement, so it sees every
    hold committed by whoever held those locks before us). True when held."""
    with connection.cursor() as cursor:
        cursor.execute(
            _SUM_AND_HOLD_SQL,
            {
                "windows": [o.window_id for o in holding],
                "rooms": [o.budget.limit - o.spent for o in holding],
                "now": now,
                "amount": amount,
                "key": key,
                "expires": now + timedelta(seconds=hold_seconds()),
            },
        )
        rows = cursor.fetchall()
    held = {window_id: value for window_id, value, _ in rows}
    for o in holding:
        o.held = held.get(o.window_id, Decimal(0))
    return bool(rows and rows[0][2])


def _hold(holding: list[OpenWindow], key: uuid.UUID, amount: Decimal, now: datetime) -> None:
    expires = now + timedelta(seconds=hold_seconds())
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO billing_budgethold (window_id, reservation, amount, created_at, "
            "expires_at) SELECT w, %s, %s, %s, %s FROM unnest(%s::bigint[]) AS w",
            [key, amount, now, expires, [o.window_id for o in holding]],
        )
