"""What a refused call is told: the budget that tripped, in words and as the REST body's
`budget` details."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from billing import money
from billing.budgets.reservations import BudgetExceeded, min_reply_tokens

if TYPE_CHECKING:
    from billing.budgets.admission import Estimate, OpenWindow
    from billing.budgets.matching import MatchedBudget


def refusal_unpriced(budget: MatchedBudget, model: str) -> BudgetExceeded:
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


def refusal_exceeded(o: OpenWindow, estimate: Estimate, output_tokens: int) -> BudgetExceeded:
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
