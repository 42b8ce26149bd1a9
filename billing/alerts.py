"""Budget alerts: once per threshold per period, to the budget's managers — in the app (the
bell), by email (a background task), and as a webhook event (`webhooks.services.event_emit`).

"Once" is the database's job: the unique `BudgetAlert(budget, window_start, threshold)` row is
inserted with ON CONFLICT DO NOTHING, and only the call whose insert wins delivers. Concurrent
calls crossing the same threshold together therefore alert exactly once."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from billing import money, windows
from billing.models import Budget, Notification
from webhooks.services import event_emit

logger = logging.getLogger(__name__)

_ONCE_SQL = """
INSERT INTO billing_budgetalert (budget_id, window_start, threshold, spent, created_at)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT ON CONSTRAINT billing_budgetalert_once DO NOTHING
RETURNING id
"""


def _claim(budget_id: int, window_start: datetime, threshold: int, spent: Decimal) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(_ONCE_SQL, [budget_id, window_start, threshold, spent, timezone.now()])
        return cursor.fetchone() is not None


def alert_crossings(crossings) -> None:
    """`crossings`: (applied budget, [levels crossed], spent after) from a settlement."""
    for applied, levels, spent in crossings:
        for level in levels:
            _alert(applied.budget_id, applied.window_start, level, spent, refused=False)


def alert_refused(*, budget_id: int, window_start: datetime, spent: Decimal) -> None:
    """A hard budget refused a call: its limit is reached for this period (alerts once)."""
    _alert(budget_id, window_start, 100, spent, refused=True)


def _alert(budget_id: int, window_start: datetime, level: int, spent: Decimal, *, refused: bool):
    try:
        with transaction.atomic():
            if not _claim(budget_id, window_start, level, spent):
                return
            budget = Budget.objects.select_related("owner_team", "owner_user").get(pk=budget_id)
            _deliver(budget, window_start, level, spent, refused=refused)
    except Budget.DoesNotExist:
        return  # deleted meanwhile: nobody left to tell
    except Exception:
        # An alert must never break the call that crossed it; the crossing is logged.
        logger.exception("Could not deliver the alert of budget %s at %s %%", budget_id, level)


def recipients(budget: Budget) -> list:
    """Who manages the budget: its owner, or the team's owners and admins."""
    if budget.owner_user_id:
        return [budget.owner_user]
    memberships = budget.owner_team.memberships.filter(
        role__in=[Role.OWNER, Role.ADMIN], user__is_active=True
    ).select_related("user")
    return [m.user for m in memberships]


def _deliver(budget: Budget, window_start: datetime, level: int, spent: Decimal, *, refused):
    from billing.budgets import PERIOD_WORDS
    from billing.selectors import budget_scope_parts
    from billing.tasks import alert_email_send

    scope = " · ".join(budget_scope_parts(budget))
    name = budget.name or scope
    _, end = windows.window_for(budget.period, budget.time_zone, window_start)
    resets = end.astimezone(windows.zone(budget.time_zone))
    exceeded = level >= 100
    if refused:
        title = f"Budget “{name}” reached its limit"
        body = (
            f"A call was refused: {money.usd(spent)} of {money.usd(budget.limit)} spent "
            f"({PERIOD_WORDS[budget.period]}, {scope})."
        )
    elif exceeded:
        title = f"Budget “{name}” is used up"
        body = f"{money.usd(spent)} of {money.usd(budget.limit)} spent ({PERIOD_WORDS[budget.period]}, {scope})."
    else:
        title = f"Budget “{name}” passed {level} %"
        body = f"{money.usd(spent)} of {money.usd(budget.limit)} spent ({PERIOD_WORDS[budget.period]}, {scope})."
    body += f" It resets {resets:%b %-d, %H:%M} ({budget.time_zone})."
    url = reverse("billing:budget_list")
    people = recipients(budget)
    created = Notification.objects.bulk_create(
        [
            Notification(user=person, kind="budget", title=title, body=body, url=url)
            for person in people
        ]
    )
    for notification in created:
        if notification.user.email:
            transaction.on_commit(
                lambda pk=notification.pk: alert_email_send.enqueue(notification_id=pk)
            )
    event_emit(
        type="budget.exceeded" if exceeded else "budget.threshold_crossed",
        owner=budget.owner,
        payload={
            "budget": {"id": budget.pk, "name": name, "scope": scope, "period": budget.period},
            "threshold": level,
            "refused": refused,
            "spent": money.decimal_str(spent),
            "limit": money.decimal_str(budget.limit),
            "window_start": window_start.isoformat(),
            "resets_at": end.isoformat(),
        },
    )
