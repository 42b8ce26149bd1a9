"""Reads for the Usage dashboard, its CSV and its REST twin (selectors).

Whose calls: a team's (any member may read its spend; only its admins and owners may narrow it
to another member) or the user's own, wherever they were charged. Every id a filter carries is
resolved here through the access rules — outside the tenant, or a member the user may not single
out, is a 404 — before any row is read.

Every figure, chart and notice comes from the daily rollup (`DailyUsage`), never from the
ledger: three grouped queries for the whole page (by day × provider, by provider × model, and
the notices' month and weeks). The drill-down reads ledger rows a page at a time, newest first,
by keyset over an index on (team or user, created_at)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.apps import apps
from django.db.models import Min, Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from accounts import access
from accounts.access import Action
from accounts.models import Team, User
from billing import money
from billing.models import CallStatus, DailyUsage, UsageRecord
from billing.selectors import budget_statuses, budgets_for_user, preset_labels

PERIODS = {
    "today": "Today",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "month": "This month",
    "custom": "Custom range",
}
DEFAULT_PERIOD = "30d"
MAX_DAYS = 366  # a custom range is at most a year (bounded input, bounded work)
EMBEDDING = "embedding"  # the feature filter's "any embedding call" (an operation, not a feature)
FEATURES = {
    "chat": "Chat",
    "title": "Chat titles",
    "playground": "Playground",
    "judge": "Playground judge",
    "evals": "Evaluations",
    "prompts": "Prompts",
    "batch": "Prompt batches",
    "api": "API",
    "rag": "Collections",
    "search": "Collection search",
    EMBEDDING: "Embeddings (any feature)",
}
STATUSES = {value: label for value, label in CallStatus.choices if value != CallStatus.RUNNING}
PAGE_SIZE = 50


def today() -> date:
    """The instance's day (the rollup's days, `billing.rollups.rollup_day`)."""
    return timezone.localdate(timezone.now(), timezone.get_default_timezone())


def zone_name() -> str:
    return str(timezone.get_default_timezone())


def period_days(*, period: str, day: date, start: date | None, end: date | None):
    """(first, last) day of a period ending on `day` (inclusive both ends)."""
    if period == "today":
        return day, day
    if period == "7d":
        return day - timedelta(days=6), day
    if period == "month":
        return day.replace(day=1), day
    if period == "custom" and start and end:
        return start, end
    return day - timedelta(days=29), day


# --- Whose calls, which days, which filters ------------------------------------------------------


@dataclass(frozen=True)
class UsageQuery:
    """What a dashboard shows, every id already checked (build it with `usage_query_for`)."""

    user: User  # who is asking
    team: Team | None  # a team's calls; None: the user's own calls, wherever charged
    member: User | None  # only this person's calls (always the user when `team` is None)
    credential_id: int | None
    preset: str
    model: str
    feature: str
    status: str
    start: date
    end: date  # inclusive
    period: str
    can_single_out: bool  # may pick any member of `team` (its admins and owners)

    @property
    def period_label(self) -> str:
        return PERIODS[self.period]

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def narrowed(self) -> bool:
        return bool(
            (self.team and self.member)
            or self.credential_id
            or self.preset
            or self.model
            or self.feature
            or self.status
        )

    def as_params(self, **changes) -> dict[str, str]:
        """The query string that shows this again (links, the CSV, the drill-down)."""
        params = {
            "team": str(self.team.pk) if self.team else "",
            "user": str(self.member.pk) if self.team and self.member else "",
            "credential": str(self.credential_id or ""),
            "provider": self.preset,
            "model": self.model,
            "feature": self.feature,
            "status": self.status,
            "period": self.period,
        }
        if self.period == "custom":
            params |= {"start": self.start.isoformat(), "end": self.end.isoformat()}
        params |= {k: str(v) for k, v in changes.items()}
        return {k: v for k, v in params.items() if v}


def usage_member_for(*, user, team: Team | None, pk) -> User:
    """The person a filter names: the user themself, or — for a team's admins and owners — a
    member of that team. Anyone else is a 404 (another team's people, a teammate for a member)."""
    member_id = access.parse_id(pk)
    if member_id is None:
        raise Http404("No such member.")
    if member_id == user.pk:
        return user
    if team is None or not access.allows(user, team, Action.MANAGE):
        raise Http404("No such member.")
    member = User.objects.filter(pk=member_id, memberships__team=team).first()
    if member is None:
        raise Http404("No such member.")
    return member


def usage_credentials_for(*, user, team: Team | None) -> QuerySet:
    """Keys a filter may name: the team's, or (own calls) the user's and their teams'."""
    credentials = access.scope(
        apps.get_model("providers", "ProviderCredential").objects.all(), user, Action.READ
    )
    if team is not None:
        credentials = credentials.filter(owner_team=team)
    return credentials.order_by("owner_team_id", "name", "pk")


def usage_credential_for(*, user, team: Team | None, pk) -> int:
    """A key's id, if the user may read it and it belongs to the scope shown; else 404."""
    credential = access.get_for(user, usage_credentials_for(user=user, team=team), pk)
    return credential.pk


def usage_members_for(*, user, team: Team | None) -> QuerySet[User]:
    """The people a filter may single out: a team's members for its managers, else nobody."""
    if team is None or not access.allows(user, team, Action.MANAGE):
        return User.objects.none()
    return User.objects.filter(memberships__team=team).order_by("username")


def usage_query_for(
    *,
    user,
    team: Team | None,
    member=None,
    credential=None,
    preset: str = "",
    model: str = "",
    feature: str = "",
    status: str = "",
    period: str = DEFAULT_PERIOD,
    start: date | None = None,
    end: date | None = None,
    day: date | None = None,
) -> UsageQuery:
    """Resolve a dashboard's filters: `team` (a Team the caller may read, or None) and the raw
    `member` and `credential` ids go through the access rules (404 outside them)."""
    if team is not None:
        access.require(user, team, Action.READ)
    chosen = usage_member_for(user=user, team=team, pk=member) if member else None
    if team is None:
        chosen = user  # own calls: always and only the user's
    credential_id = (
        usage_credential_for(user=user, team=team, pk=credential) if credential else None
    )
    first, last = period_days(period=period, day=day or today(), start=start, end=end)
    return UsageQuery(
        user=user,
        team=team,
        member=chosen,
        credential_id=credential_id,
        preset=preset,
        model=model,
        feature=feature,
        status=status,
        start=first,
        end=last,
        period=period if period in PERIODS else DEFAULT_PERIOD,
        can_single_out=team is not None and access.allows(user, team, Action.MANAGE),
    )


def _narrow(rows: QuerySet, q: UsageQuery) -> QuerySet:
    """The scope and filters, on rollup rows and ledger rows alike (same column names)."""
    rows = rows.filter(team_id=q.team.pk) if q.team else rows.filter(user_id=q.user.pk)
    if q.team and q.member:
        rows = rows.filter(user_id=q.member.pk)
    if q.credential_id:
        rows = rows.filter(credential_id=q.credential_id)
    if q.preset:
        rows = rows.filter(preset=q.preset)
    if q.model:
        rows = rows.filter(model=q.model)
    if q.feature == EMBEDDING:
        rows = rows.filter(operation="embedding")
    elif q.feature:
        rows = rows.filter(feature=q.feature)
    if q.status:
        rows = rows.filter(status=q.status)
    return rows


def _rollups(q: UsageQuery, *, first: date, last: date) -> QuerySet[DailyUsage]:
    return _narrow(DailyUsage.objects.filter(day__gte=first, day__lte=last), q).order_by()


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
        _rollups(q, first=q.start, last=q.end)
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
    rows = _rollups(q, first=q.start, last=q.end).values("day", "preset").annotate(**_sums(names))
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
    figures = _rollups(q, first=min(month_start, history_first), last=day).aggregate(
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


# --- The ledger, a page at a time -------------------------------------------------------------------

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _cursor(record: UsageRecord) -> str:
    return f"{(record.created_at - EPOCH) // timedelta(microseconds=1)}-{record.pk}"


def parse_cursor(value: str) -> tuple[datetime, int] | None:
    """`<microseconds since 1970>-<id>` (what `next_cursor` gives) → (created_at, id); None for
    anything else."""
    micros, _, pk = (value or "").partition("-")
    if not (micros.isascii() and micros.isdigit() and len(micros) <= 18):
        return None
    pk = access.parse_id(pk)
    if pk is None:
        return None
    try:
        return EPOCH + timedelta(microseconds=int(micros)), pk
    except OverflowError:  # past the year 9999
        return None


@dataclass(frozen=True)
class CallRow:
    record: UsageRecord
    link: str | None  # the conversation or playground comparison it belongs to, if readable
    link_label: str


@dataclass(frozen=True)
class CallsPage:
    rows: list[CallRow]
    next_cursor: str | None


def day_bounds(q: UsageQuery) -> tuple[datetime, datetime]:
    """The instants the query's days span: [first midnight, the midnight after the last day)."""
    zone = timezone.get_default_timezone()
    start = timezone.make_aware(datetime.combine(q.start, time()), zone)
    return start, timezone.make_aware(datetime.combine(q.end + timedelta(days=1), time()), zone)


def usage_calls(*, q: UsageQuery, before: tuple[datetime, int] | None = None) -> CallsPage:
    """Ledger rows of the period and filters, newest first, PAGE_SIZE at a time after `before`
    (a keyset cursor: no OFFSET, no COUNT over the ledger)."""
    start, end = day_bounds(q)
    rows = _narrow(UsageRecord.objects.filter(created_at__gte=start, created_at__lt=end), q)
    if before is not None:
        at, pk = before
        rows = rows.filter(Q(created_at__lt=at) | Q(created_at=at, pk__lt=pk))
    page = list(rows.select_related("user").order_by("-created_at", "-id")[: PAGE_SIZE + 1])
    more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    links = _links(user=q.user, records=page)
    return CallsPage(
        [CallRow(r, *links.get(r.pk, (None, ""))) for r in page],
        _cursor(page[-1]) if more else None,
    )


def _links(*, user, records: list[UsageRecord]) -> dict[int, tuple[str, str]]:
    """Where each call came from, when the user may read it: a chat's conversation or a
    playground run's comparison (one scoped query per kind; models found through the app
    registry — billing imports nothing to its right)."""
    from django.urls import reverse

    conversations = {
        r.pk: r.context.get("conversation")
        for r in records
        if isinstance(r.context, dict) and access.parse_id(r.context.get("conversation"))
    }
    runs = {
        r.pk: r.context.get("run")
        for r in records
        if isinstance(r.context, dict) and access.parse_id(r.context.get("run"))
    }
    links: dict[int, tuple[str, str]] = {}
    if conversations:
        model = apps.get_model("chats", "Conversation")
        readable = set(
            access.scope(
                model.objects.filter(pk__in=set(conversations.values())), user
            ).values_list("pk", flat=True)
        )
        for pk, target in conversations.items():
            if target in readable:
                links[pk] = (reverse("chats:detail", args=[target]), "Conversation")
    if runs:
        model = apps.get_model("playground", "Run")
        comparison_of = dict(
            access.scope(model.objects.filter(pk__in=set(runs.values())), user)
            .exclude(comparison__isnull=True)
            .values_list("pk", "comparison_id")
        )
        for pk, target in runs.items():
            if target in comparison_of:
                links[pk] = (
                    reverse("playground:detail", args=[comparison_of[target]]),
                    "Playground run",
                )
    return links


def usage_has_any(*, user, team: Team | None) -> bool:
    """Has this scope ever made a call? (The empty state for a new user or team.)"""
    rows = DailyUsage.objects.filter(team=team) if team else DailyUsage.objects.filter(user=user)
    return rows.exists()


def usage_team_choices(*, user) -> QuerySet[Team]:
    return access.scope(Team.objects.all(), user, Action.READ).order_by("name", "pk")
