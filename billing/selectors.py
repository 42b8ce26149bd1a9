"""Reads for billing, scoped to the user asking."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.apps import apps
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from accounts import access
from accounts.models import Team
from billing.models import Budget, BudgetHold, BudgetWindow, UsageRecord


def usage_for_user(*, user, team: Team | None = None) -> QuerySet[UsageRecord]:
    """The user's own calls, or — with `team` — every call charged to that team (members and
    viewers may read team spend)."""
    if team is not None:
        access.require(user, team, access.Action.READ)
        return UsageRecord.objects.filter(team=team)
    return UsageRecord.objects.filter(Q(user_id=user.pk))


# --- Budgets ---------------------------------------------------------------------------------------


def preset_labels() -> dict[str, str]:
    """Provider (preset) keys → labels, from the credential model's choices: data found through
    the app registry, the way a string foreign key reaches an app to the right (no import)."""
    credential = apps.get_model("providers", "ProviderCredential")
    return dict(credential._meta.get_field("preset").choices)


def budget_scope_parts(budget: Budget) -> list[str]:
    """What a budget covers, piece by piece: owner, member, credential, provider, model."""
    parts = [f"team {budget.owner_team.name}" if budget.owner_team_id else "personal"]
    if budget.user_id:
        parts.append(budget.user.username)
    if budget.credential_id:
        parts.append(f"key “{budget.credential.name}”")
    if budget.preset:
        parts.append(preset_labels().get(budget.preset, budget.preset))
    if budget.model:
        parts.append(budget.model)
    return parts


def budget_scope_label(*, budget_id: int) -> str:
    budget = Budget.objects.select_related("owner_team", "user", "credential").get(pk=budget_id)
    return " · ".join(budget_scope_parts(budget))


def ledger_spent(*, budget, start: datetime, end: datetime) -> tuple[Decimal, int, int]:
    """(cost, calls, unpriced calls) the ledger holds for a budget's scope in [start, end) —
    where a window created mid-period starts from. Indexed by team/user and time."""
    rows = UsageRecord.objects.filter(created_at__gte=start, created_at__lt=end)
    if budget.owner_team_id:
        rows = rows.filter(team_id=budget.owner_team_id)
        if budget.user_id:
            rows = rows.filter(user_id=budget.user_id)
    else:
        rows = rows.filter(user_id=budget.owner_user_id, team__isnull=True)
    if budget.credential_id:
        rows = rows.filter(credential_id=budget.credential_id)
    if budget.preset:
        rows = rows.filter(preset=budget.preset)
    if budget.model:
        rows = rows.filter(model=budget.model)
    totals = rows.aggregate(
        cost=Sum("cost"),
        calls=Count("id"),
        unpriced=Count("id", filter=Q(cost_source="unpriced")),
    )
    return totals["cost"] or Decimal(0), totals["calls"], totals["unpriced"]


def budgets_for_user(*, user, team: Team | None = None) -> QuerySet[Budget]:
    """Budgets the user may read: their personal ones and those of every team they are in
    (budgets are few, and what limits someone's calls spans their teams) — or, with `team`,
    that team's only."""
    budgets = Budget.objects.select_related("owner_team", "owner_user", "user", "credential")
    if team is not None:
        access.require(user, team, access.Action.READ)
        return budgets.filter(owner_team=team)
    return access.scope(budgets, user, access.Action.READ).order_by(
        "owner_team__name", "name", "id"
    )


def budget_for_user(*, user, pk, action: access.Action = access.Action.READ) -> Budget:
    return access.get_for(
        user, Budget.objects.select_related("owner_team", "user", "credential"), pk, action
    )


@dataclass(frozen=True)
class BudgetStatus:
    """A budget and where its current period stands."""

    budget: Budget
    scope: str
    start: datetime
    end: datetime
    spent: Decimal
    held: Decimal
    calls: int
    unpriced_calls: int
    applies_to_me: bool
    can_manage: bool

    @property
    def left(self) -> Decimal:
        return max(self.budget.limit - self.spent - self.held, Decimal(0))

    @property
    def used(self) -> Decimal:
        return self.spent + self.held

    @property
    def warn_at(self) -> Decimal:
        """The amount of the first alert threshold (below 100 %), for the meter's colours."""
        first = min([t for t in self.budget.thresholds if t < 100] or [80])
        return self.budget.limit * first / 100

    @property
    def percent(self) -> int:
        """Spent (and held) as a whole percentage of the limit, for bars and notices."""
        return int((self.spent + self.held) * 100 / self.budget.limit)

    @property
    def level(self) -> str:
        """ok · warn (past the owner's first threshold) · over (at or past the limit)."""
        if self.percent >= 100:
            return "over"
        first = min(self.budget.thresholds or [80])
        return "warn" if self.percent >= min(first, 100) else "ok"


def budget_statuses(*, user, budgets, now: datetime | None = None) -> list[BudgetStatus]:
    """Each budget's current period (two queries for any number of budgets; a budget with no
    call yet this period reads its spend from the ledger)."""
    from billing import windows

    now = now or timezone.now()
    budgets = list(budgets)
    open_windows = {
        w.budget_id: w
        for w in BudgetWindow.objects.filter(budget__in=budgets, start__lte=now, end__gt=now)
    }
    held = dict(
        BudgetHold.objects.filter(
            window_id__in=[w.pk for w in open_windows.values()], expires_at__gt=now
        )
        .values_list("window_id")
        .annotate(total=Sum("amount"))
    )
    manageable = set(
        access.team_ids_for(user, access.Action.MANAGE).values_list("team_id", flat=True)
    )
    statuses = []
    for budget in budgets:
        start, end = windows.window_for(budget.period, budget.time_zone, now)
        window = open_windows.get(budget.pk)
        if window is not None and window.start == start:
            spent, calls, unpriced = window.spent, window.calls, window.unpriced_calls
            on_hold = held.get(window.pk, Decimal(0))
        else:
            spent, calls, unpriced = ledger_spent(budget=budget, start=start, end=now)
            on_hold = Decimal(0)
        statuses.append(
            BudgetStatus(
                budget=budget,
                scope=" · ".join(budget_scope_parts(budget)),
                start=start,
                end=end,
                spent=spent,
                held=on_hold,
                calls=calls,
                unpriced_calls=unpriced,
                applies_to_me=(budget.owner_user_id == user.pk)
                or (budget.owner_team_id is not None and budget.user_id in (None, user.pk)),
                can_manage=budget.owner_user_id == user.pk or budget.owner_team_id in manageable,
            )
        )
    return statuses
