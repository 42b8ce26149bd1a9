"""The Usage dashboard's figures (selectors): totals, per model, per day and the notices, all
from the daily rollup (`DailyUsage`) — three grouped queries for the whole page (by day ×
provider, by provider × model, one conditional aggregate for the notices), never the ledger."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Min, Q, Sum
from django.utils import timezone

from billing import money
from billing.selectors import budget_statuses, budgets_for_user, preset_labels
from billing.usage import UsageQuery, rollup_rows

# --- Figures -------------------------------------------------------------------------------------

_SUMS = (
    "calls",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "reasoning_tokens",
    "cost",
    "estimated_cost",
    "estimated_calls",
    "local_calls",
    "unpriced_calls",
    "ttft_ms_sum",
    "ttft_count",
    "gen_output_tokens",
    "gen_ms",
)


def _sums(names=_SUMS) -> dict:
    # Prefixed: an annotation may not reuse a field's name.
    return {f"s_{name}": Sum(name) for name in names}


def _unprefix(row: dict) -> dict:
    return {key.removeprefix("s_"): value for key, value in row.items()}


@dataclass
class Totals:
    """Sums over calls, with the honesty cost needs: estimated and unpriced calls counted."""

    calls: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    reasoning_tokens: int = 0
    cost: Decimal = Decimal(0)
    estimated_cost: Decimal = Decimal(0)
    estimated_calls: int = 0
    local_calls: int = 0
    unpriced_calls: int = 0
    ttft_ms_sum: float = 0.0
    ttft_count: int = 0
    gen_output_tokens: int = 0
    gen_ms: float = 0.0

    def add(self, row: dict) -> None:
        for name in _SUMS:
            setattr(self, name, getattr(self, name) + (row.get(name) or 0))

    @property
    def cost_label(self) -> str:
        """`$4.12 + 3 unpriced calls` (estimated calls named too); calls that are all unpriced
        or all local say so rather than `$0.00`."""
        if self.calls and self.unpriced_calls == self.calls:
            return f"unpriced ({self.calls:,} call{'s' if self.calls != 1 else ''})"
        if self.calls and self.local_calls == self.calls:
            return "$0.00 local"
        return money.total_label(
            self.cost, unpriced=self.unpriced_calls, estimated=self.estimated_calls
        )

    @property
    def avg_ttft_ms(self) -> float | None:
        return self.ttft_ms_sum / self.ttft_count if self.ttft_count else None

    @property
    def tokens_per_second(self) -> float | None:
        return self.gen_output_tokens / self.gen_ms * 1000 if self.gen_ms > 0 else None

    @property
    def error_rate(self) -> float | None:
        """Errors as a percentage of calls."""
        return self.errors * 100 / self.calls if self.calls else None


@dataclass
class ModelRow(Totals):
    preset: str = ""
    provider: str = ""  # the preset's label
    model: str = ""


@dataclass
class DayRow(Totals):
    day: date | None = None
    cost_by_preset: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class UsageFigures:
    query: UsageQuery
    totals: Totals
    models: list[ModelRow]  # costliest first
    days: list[DayRow]  # every day of the period, empty ones too
    providers: list[tuple[str, str, Decimal, int]]  # (preset, label, cost, calls), costliest first

    @property
    def empty(self) -> bool:
        return not self.totals.calls


def usage_by_model(*, q: UsageQuery) -> list[ModelRow]:
    """The per-model table (and the top-models, TTFT and tokens/s charts): one grouped query."""
    labels = preset_labels()
    rows = (
        rollup_rows(q, first=q.start, last=q.end)
        .values("preset", "model")
        .annotate(**_sums())
        .order_by("-s_cost", "-s_calls", "preset", "model")
    )
    result = []
    for row in rows:
        model = ModelRow(
            preset=row["preset"],
            provider=labels.get(row["preset"], row["preset"]),
            model=row["model"],
        )
        model.add(_unprefix(row))
        result.append(model)
    return result


def usage_by_day(*, q: UsageQuery) -> list[DayRow]:
    """Every day of the period with its cost per provider, calls, tokens and errors: one grouped
    query (days without calls are filled in, so charts show the gaps)."""
    names = ("calls", "errors", "input_tokens", "output_tokens", "cost", "unpriced_calls")
    rows = (
        rollup_rows(q, first=q.start, last=q.end).values("day", "preset").annotate(**_sums(names))
    )
    days = {
        q.start + timedelta(days=i): DayRow(day=q.start + timedelta(days=i)) for i in range(q.days)
    }
    for row in rows:
        day = days.get(row["day"])
        if day is None:  # pragma: no cover - the query is bounded by the same days
            continue
        values = _unprefix(row)
        day.add(values)
        day.cost_by_preset[row["preset"]] = (
            day.cost_by_preset.get(row["preset"], Decimal(0)) + values["cost"]
        )
    return list(days.values())


def usage_figures(*, q: UsageQuery) -> UsageFigures:
    """Everything the dashboard's numbers and charts need: two rollup queries."""
    models = usage_by_model(q=q)
    days = usage_by_day(q=q)
    totals = Totals()
    providers: dict[str, list] = {}
    for row in models:
        totals.add(row.__dict__)
        entry = providers.setdefault(row.preset, [row.preset, row.provider, Decimal(0), 0])
        entry[2] += row.cost
        entry[3] += row.calls
    ranked = sorted((tuple(p) for p in providers.values()), key=lambda p: (-p[2], -p[3], p[1]))
    return UsageFigures(q, totals, models, days, ranked)


# --- Notices ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notices:
    month_to_date: Decimal
    month_unpriced: int
    projected: Decimal | None  # at this pace, by the month's last day (None: too early to say)
    week: Decimal  # the last 7 complete days
    week_average: Decimal | None  # a week's average over up to 4 weeks before (None: no history)
    history_days: int
    budgets: list  # BudgetStatus near or past their limit

    @property
    def week_change(self) -> int | None:
        """Percent above (+) or below (−) the average; None without a comparison."""
        if not self.week_average:
            return None
        return round((self.week - self.week_average) * 100 / self.week_average)


def usage_notices(*, q: UsageQuery, now: datetime | None = None) -> Notices:
    """Projected month-end spend, the last week against the weeks before, budgets near their
    limit — for the scope and filters shown, whatever the period (one rollup query + budgets)."""
    now = now or timezone.now()
    zone = timezone.get_default_timezone()
    day = timezone.localtime(now, zone).date()
    month_start = day.replace(day=1)
    week_first, week_last = day - timedelta(days=7), day - timedelta(days=1)
    history_first, history_last = day - timedelta(days=35), day - timedelta(days=8)
    figures = rollup_rows(q, first=min(month_start, history_first), last=day).aggregate(
        month=Sum("cost", filter=Q(day__gte=month_start)),
        month_unpriced=Sum("unpriced_calls", filter=Q(day__gte=month_start)),
        week=Sum("cost", filter=Q(day__gte=week_first, day__lte=week_last)),
        history=Sum("cost", filter=Q(day__gte=history_first, day__lte=history_last)),
        first=Min("day", filter=Q(calls__gt=0)),
    )
    month = figures["month"] or Decimal(0)
    month_begins = timezone.make_aware(datetime.combine(month_start, time()), zone)
    elapsed = (now - month_begins).total_seconds() / 86400
    in_month = calendar.monthrange(day.year, day.month)[1]
    projected = None
    if elapsed >= 1 and month > 0:
        projected = (month / Decimal(repr(elapsed)) * in_month).quantize(Decimal("0.000000001"))
    # Compare with the weeks that had usage: a scope that started 10 days ago has 2 days of
    # history before the last week, not 4 weeks of zeros.
    history_days = 0
    if figures["first"] is not None and figures["first"] <= history_last:
        history_days = (history_last - max(figures["first"], history_first)).days + 1
    average = None
    if history_days >= 7 and figures["history"]:
        average = figures["history"] / history_days * 7
    return Notices(
        month_to_date=month,
        month_unpriced=figures["month_unpriced"] or 0,
        projected=projected,
        week=figures["week"] or Decimal(0),
        week_average=average,
        history_days=history_days,
        budgets=usage_budget_warnings(q=q, now=now),
    )


def usage_budget_warnings(*, q: UsageQuery, now: datetime | None = None) -> list:
    """Budgets of the scope past their owner's first threshold, the fullest first: a team's
    budgets, or (own calls) every budget that applies to the user."""
    budgets = budgets_for_user(user=q.user, team=q.team).filter(is_active=True)
    statuses = budget_statuses(user=q.user, budgets=budgets, now=now)
    if q.team is None:
        statuses = [s for s in statuses if s.applies_to_me]
    return sorted((s for s in statuses if s.level != "ok"), key=lambda s: -s.percent)
