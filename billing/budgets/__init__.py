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
Local models cost $0 and are never looked at; unknown prices fail closed on hard budgets.

`billing.budgets` is the entry point; its modules: reservations (what admission returns or
raises), matching, admission, settlement, refusals (what a refused call is told)."""

from billing.budgets.admission import budget_reserve
from billing.budgets.matching import MATCH_WHERE, budgets_matching
from billing.budgets.refusals import PERIOD_WORDS, scope_label_for
from billing.budgets.reservations import (
    MTOK,
    Applied,
    BudgetExceeded,
    Reservation,
    default_output_tokens,
    hold_seconds,
    min_reply_tokens,
)
from billing.budgets.settlement import alert_levels, budget_release, budget_settle

__all__ = [
    "MATCH_WHERE",
    "MTOK",
    "PERIOD_WORDS",
    "Applied",
    "BudgetExceeded",
    "Reservation",
    "alert_levels",
    "budget_release",
    "budget_reserve",
    "budget_settle",
    "budgets_matching",
    "default_output_tokens",
    "hold_seconds",
    "min_reply_tokens",
    "scope_label_for",
]
