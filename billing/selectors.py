"""Reads for billing, scoped to the user asking."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from accounts import access
from accounts.models import Team
from billing.models import UsageRecord


def usage_for_user(*, user, team: Team | None = None) -> QuerySet[UsageRecord]:
    """The user's own calls, or — with `team` — every call charged to that team (members and
    viewers may read team spend)."""
    if team is not None:
        access.require(user, team, access.Action.READ)
        return UsageRecord.objects.filter(team=team)
    return UsageRecord.objects.filter(Q(user_id=user.pk))
