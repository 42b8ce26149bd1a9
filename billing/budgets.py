"""Budgets at the gate (DESIGN §3, "Money"): reserve → stream → settle (in `finally`).

Admission (`budget_reserve`), for a call that may cost money:
1. the budgets whose scope matches the call (one indexed query; none → done);
2. in one transaction, each matching budget's current window is created or locked — one
   INSERT … ON CONFLICT DO UPDATE over all of them, in budget order, so concurrent calls lock
   in the same order and never deadlock;
3. one more statement (a new one, so it sees every hold committed by whoever held those locks
   before us) sums the live holds and holds the estimate — prompt tokens + `max_tokens` (or the
   default output allowance) at the model's price — in every hard budget when it fits them all.
   When the tightest budget can't afford it, `max_tokens` is clamped to what it can (one more
   INSERT, still under the locks); when not even a short reply fits, nothing is held and
   `BudgetExceeded` names that budget. Three statements in the common case, inside the gate's
   transaction (no savepoint of our own).

Settlement (`budget_settle`) deletes the call's holds and adds its real cost to each window (one
transaction, same lock order), then raises the alerts of any threshold it crossed.

Holds expire (`expires_at`, longer than any call can last): a process killed mid-call pins its
reservation until then and no longer — no sweeper needed, the sum counts live holds only.
Local models cost $0 and are never looked at; unknown prices fail closed on hard budgets."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from billing import money, pricing, windows

MTOK = Decimal(1_000_000)


def default_output_tokens() -> int:
    """The output allowance reserved when a call sets no `max_tokens` (and then sent as its
    `max_tokens` when a hard budget applies, so the reply can't outgrow what was reserved)."""
    return int(getattr(settings, "WORKBENCH_BUDGET_DEFAULT_OUTPUT_TOKENS", 4096))


def min_reply_tokens() -> int:
    """Below this many affordable output tokens a call is refused rather than clamped."""
    return int(getattr(settings, "WORKBENCH_BUDGET_MIN_REPLY_TOKENS", 64))


def hold_seconds() -> float:
    """How long a hold outlives its admission: longer than any call can last (every attempt at
    the total timeout, plus the longest retry wait), so only a dead process's holds expire."""
    configured = getattr(settings, "WORKBENCH_BUDGET_HOLD_SECONDS", None)
    if configured:
        return float(configured)
    total = float(getattr(settings, "WORKBENCH_PROVIDER_TIMEOUTS", {}).get("total", 600.0))
    attempts = int(getattr(settings, "WORKBENCH_PROVIDER_MAX_ATTEMPTS", 3))
    return attempts * (total + 30.0) + 60.0


@dataclass(frozen=True)
class Applied:
    """A budget a call counts against, with the window it counts in (a snapshot: settlement
    and alerts use it without reading the budget again)."""

    budget_id: int
    window_id: int
    window_start: datetime
    limit: Decimal
    hard: bool
    thresholds: tuple[int, ...]


@dataclass
class Reservation:
    max_tokens: int | None  # what the caller may ask for after clamping to what budgets afford
    amount: Decimal = Decimal(0)
    key: uuid.UUID | None = None  # the holds' reservation id
    applied: tuple[Applied, ...] = ()
    settled: bool = False

    @property
    def budget_ids(self) -> tuple[int, ...]:
        return tuple(a.budget_id for a in self.applied)


class BudgetExceeded(Exception):
    """A call refused by a budget. `details` is what the REST error body carries as `budget`."""

    code = "budget_exceeded"

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.alert: Callable[[], None] = lambda: None

    def deliver_alert(self) -> None:
        """Tell the budget's managers (once per window). The caller runs this after its own
        transaction ends: the gate reserves inside one that a refusal rolls back, and an alert
        written inside it would be rolled back with it."""
        self.alert()


# --- Matching -------------------------------------------------------------------------------------

# Which budgets a call counts against (parameters user, team, credential, preset, model). Also
# a piece of the gate's one-statement admission (providers.admission), which asks only whether
# any matches.
MATCH_WHERE = """
is_active
  AND ((owner_team_id = %(team)s AND (user_id IS NULL OR user_id = %(user)s))
       OR (%(team)s IS NULL AND owner_user_id = %(user)s))
  AND (credential_id IS NULL OR credential_id = %(credential)s)
  AND preset IN ('', %(preset)s)
  AND model IN ('', %(model)s)
"""
_MATCH_SQL = f"""
SELECT id, name, owner_user_id, owner_team_id, user_id, credential_id, preset, model,
       period, time_zone, "limit", hard, thresholds
FROM billing_budget
WHERE {MATCH_WHERE}
ORDER BY id
"""  # noqa: S608 - a constant; values are parameters


@dataclass(frozen=True)
class _Budget:
    id: int
    name: str
    owner_user_id: int | None
    owner_team_id: int | None
    user_id: int | None
    credential_id: int | None
    preset: str
    model: str
    period: str
    time_zone: str
    limit: Decimal
    hard: bool
    thresholds: tuple[int, ...]


def budgets_matching(
    *, user_id: int | None, team_id: int | None, credential_id, preset: str, model: str
) -> list[_Budget]:
    """The active budgets whose scope matches a call. A team budget matches every call charged
    to its team (narrowed by member, credential, provider, model); a personal budget matches the
    calls its owner pays for personally."""
    with connection.cursor() as cursor:
        cursor.execute(
            _MATCH_SQL,
            {
                "user": user_id,
                "team": team_id,
                "credential": credential_id,
                "preset": preset,
                "model": model,
            },
        )
        rows = cursor.fetchall()
    return [_Budget(*row[:-1], tuple(row[-1] or ())) for row in rows]


# --- Estimates ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Estimate:
    fixed: Decimal  # the prompt and any per-request fee
    per_output_token: Decimal

    def cost(self, output_tokens: int) -> Decimal:
        return self.fixed + self.per_output_token * output_tokens

    def affordable_tokens(self, available: Decimal) -> int:
        if self.per_output_token <= 0:
            return 1 << 30 if available >= self.fixed else 0
        room = (available - self.fixed) / self.per_output_token
        return max(0, int(room.to_integral_value(rounding=ROUND_FLOOR)))


def _estimate(price: pricing.Price, input_tokens: int) -> _Estimate:
    """At the model's first-tier price (the settlement charges the exact cost)."""
    return _Estimate(
        fixed=price.input_per_mtok * input_tokens / MTOK + price.per_request,
        per_output_token=price.output_per_mtok / MTOK,
    )


# --- Admission ------------------------------------------------------------------------------------

_WINDOWS_SQL = """
INSERT INTO billing_budgetwindow (budget_id, start, "end", spent, calls, unpriced_calls)
SELECT b, s, e, 0, 0, 0 FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) AS t(b, s, e)
ORDER BY b
ON CONFLICT ON CONSTRAINT billing_budgetwindow_unique DO UPDATE SET budget_id = EXCLUDED.budget_id
RETURNING id, budget_id, spent, (xmax = 0) AS created
"""


@dataclass
class _Open:
    budget: _Budget
    window_id: int
    start: datetime
    end: datetime
    spent: Decimal
    held: Decimal = Decimal(0)

    @property
    def available(self) -> Decimal:
        return self.budget.limit - self.spent - self.held


def _lock_windows(budgets: list[_Budget], now: datetime) -> list[_Open]:
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
        opened.append(_Open(budget, window_id, start, end, spent))
    return opened


def _spent_before(budget: _Budget, start: datetime, now: datetime, window_id: int) -> Decimal:
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
        raise _unpriced(hard[0], model)
    output_tokens = max_tokens or default_output_tokens()
    estimate = _estimate(price, input_tokens) if price else None
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

        exceeded = _exceeded(refusal, estimate, output_tokens)
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


def _fit(holding: list[_Open], estimate: _Estimate, output_tokens: int) -> tuple[int, _Open | None]:
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


def _sum_and_hold(holding: list[_Open], key: uuid.UUID, amount: Decimal, now: datetime) -> bool:
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


def _hold(holding: list[_Open], key: uuid.UUID, amount: Decimal, now: datetime) -> None:
    expires = now + timedelta(seconds=hold_seconds())
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO billing_budgethold (window_id, reservation, amount, created_at, "
            "expires_at) SELECT w, %s, %s, %s, %s FROM unnest(%s::bigint[]) AS w",
            [key, amount, now, expires, [o.window_id for o in holding]],
        )


# --- Settlement -----------------------------------------------------------------------------------

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


# --- Refusals -------------------------------------------------------------------------------------


def _unpriced(budget: _Budget, model: str) -> BudgetExceeded:
    label = scope_label_for(budget)
    return BudgetExceeded(
        f"“{model}” has no known price, so the hard budget “{budget.name or label}” ({label}) "
        "can't admit it. An admin can set its price (Admin → Price overrides), or the budget's "
        "managers can make it soft.",
        {
            "id": budget.id,
            "name": budget.name or label,
            "scope": label,
            "reason": "unpriced",
            "model": model,
        },
    )


def _exceeded(o: _Open, estimate: _Estimate, output_tokens: int) -> BudgetExceeded:
    budget = o.budget
    label = scope_label_for(budget)
    period = PERIOD_WORDS[budget.period]
    resets = o.end.astimezone(ZoneInfo(budget.time_zone))
    left = max(o.available, Decimal(0))
    needed = estimate.cost(min(min_reply_tokens(), output_tokens))
    message = (
        f"Budget “{budget.name or label}” ({label}, {period}) has {money.usd(left)} left of "
        f"{money.usd(budget.limit)} ({money.usd(o.spent)} spent"
        + (f", {money.usd(o.held)} held by calls in progress" if o.held else "")
        + f"); even a short reply needs about {money.usd(needed)}. "
        f"It resets {resets:%b %-d, %H:%M} ({budget.time_zone})."
    )
    return BudgetExceeded(
        message,
        {
            "id": budget.id,
            "name": budget.name or label,
            "scope": label,
            "period": budget.period,
            "limit": money.decimal_str(budget.limit),
            "spent": money.decimal_str(o.spent),
            "held": money.decimal_str(o.held),
            "left": money.decimal_str(left),
            "resets_at": o.end.isoformat(),
            "time_zone": budget.time_zone,
            "reason": "limit",
        },
    )


PERIOD_WORDS = {"day": "daily", "week": "weekly", "month": "monthly"}


def scope_label_for(budget) -> str:
    """“team Acme · bob · Anthropic · gpt-4o” — what a budget covers, in words."""
    from billing.selectors import budget_scope_label

    return budget_scope_label(budget_id=budget.id)
