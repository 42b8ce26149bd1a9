"""Reads for the Usage dashboard, its CSV and its REST twin (selectors): whose calls and which
ones — the filters, resolved through the access rules. The figures are `billing.usage_figures`,
the ledger's pages `billing.ledger_pages`.

Whose calls: a team's (any member may read its spend; only its admins and owners may narrow it
to another member) or the user's own, wherever they were charged. Every id a filter carries is
resolved here through the access rules — outside the tenant, or a member the user may not single
out, is a 404 — before any row is read.

Every figure, chart and notice comes from the daily rollup (`DailyUsage`), never from the
ledger: three grouped queries for the whole page (by day × provider, by provider × model, and
the notices' month and weeks). The drill-down reads ledger rows a page at a time, newest first,
by keyset over an index on (team or user, created_at)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.apps import apps
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from accounts import access
from accounts.access import Action
from accounts.models import Team, User
from billing.models import CallStatus, DailyUsage

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


def narrow(rows: QuerySet, q: UsageQuery) -> QuerySet:
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


def rollup_rows(q: UsageQuery, *, first: date, last: date) -> QuerySet[DailyUsage]:
    """The rollup rows of the query's scope and filters over [first, last]."""
    return narrow(DailyUsage.objects.filter(day__gte=first, day__lte=last), q).order_by()


def day_bounds(q: UsageQuery) -> tuple[datetime, datetime]:
    """The instants the query's days span: [first midnight, the midnight after the last day)."""
    zone = timezone.get_default_timezone()
    start = timezone.make_aware(datetime.combine(q.start, time()), zone)
    return start, timezone.make_aware(datetime.combine(q.end + timedelta(days=1), time()), zone)


def usage_has_any(*, user, team: Team | None) -> bool:
    """Has this scope ever made a call? (The empty state for a new user or team.)"""
    rows = DailyUsage.objects.filter(team=team) if team else DailyUsage.objects.filter(user=user)
    return rows.exists()


def usage_team_choices(*, user) -> QuerySet[Team]:
    return access.scope(Team.objects.all(), user, Action.READ).order_by("name", "pk")
