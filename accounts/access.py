"""THE access rules (DESIGN §3). Every view, API, consumer, task and id-bearing field asks here.

- Objects are owned by a user or a team (`accounts.ownership.Owned`).
- A personal object: its owner may do everything; nobody else may see it.
- A team object: what a member may do depends on their role.
- Outside the tenant the answer is 404 (`Http404`), never 403, so ids reveal nothing; inside it,
  an action the role doesn't allow is `PermissionDenied` (403).
"""

from __future__ import annotations

import re
from enum import StrEnum

from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404

from accounts.models import Membership, Role, Team


class Action(StrEnum):
    READ = "read"
    USE = "use"  # spend money with it: run a team credential, post into a team chat
    WRITE = "write"
    MANAGE = "manage"  # members, budgets, credentials, delete


ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    Role.OWNER: frozenset(Action),
    Role.ADMIN: frozenset(Action),
    Role.MEMBER: frozenset({Action.READ, Action.USE, Action.WRITE}),
    Role.VIEWER: frozenset({Action.READ}),
}


def role_allows(role: str | None, action: Action) -> bool:
    return role is not None and action in ROLE_ACTIONS[role]


def team_ids_for(user, action: Action = Action.READ) -> models.QuerySet:
    """Subquery of the ids of teams where `user` may do `action`."""
    roles = [role for role, actions in ROLE_ACTIONS.items() if action in actions]
    return Membership.objects.filter(user_id=user.pk, role__in=roles).values("team_id")


def role_in(user, team_id: int | None) -> str | None:
    if not user.is_authenticated or team_id is None:
        return None
    roles = (
        Membership.objects.filter(user_id=user.pk, team_id=team_id)
        .order_by()
        .values_list("role", flat=True)
    )
    return next(iter(roles[:1]), None)


# --- Querysets ---------------------------------------------------------------------------------


def scope(queryset: models.QuerySet, user, action: Action = Action.READ) -> models.QuerySet:
    """The objects of `queryset` the user may `action`. Works for Team and any Owned model."""
    if not user.is_authenticated:
        return queryset.none()
    if queryset.model is Team:
        return queryset.filter(pk__in=team_ids_for(user, action))
    return queryset.filter(
        models.Q(owner_user_id=user.pk) | models.Q(owner_team_id__in=team_ids_for(user, action))
    )


def in_view(queryset: models.QuerySet, user, team: Team | None) -> models.QuerySet:
    """What lists show: the user's own objects plus the current team's (if they may read it)."""
    if not user.is_authenticated:
        return queryset.none()
    condition = models.Q(owner_user_id=user.pk)
    if team is not None:
        condition |= models.Q(owner_team_id=team.pk, owner_team_id__in=team_ids_for(user))
    return queryset.filter(condition)


# --- Single objects ----------------------------------------------------------------------------

MAX_ID = 2**63 - 1  # PostgreSQL bigint
_ID_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII only: str.isdigit() also takes "²" and "٣"


def parse_id(value) -> int | None:
    """An object id from user input — an int, or a string of ASCII digits — within bigint range;
    None for anything else (booleans, "²", Arabic-Indic digits, 5,000 digits, negatives)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and _ID_DIGITS.fullmatch(value):
        value = int(value)
    return value if isinstance(value, int) and 0 < value <= MAX_ID else None


def _role(user, obj, team_id) -> str | None:
    """The user's role in the team, from the fetch that found `obj` when get_for fetched it."""
    known = getattr(obj, "_access_role", None)
    if known is None or known[0] != user.pk:
        known = (user.pk, role_in(user, team_id))
        obj._access_role = known  # one role query per object and user, however many checks
    return known[1]


def allows(user, obj, action: Action) -> bool:
    """May `user` do `action` on `obj` (a Team or an Owned object)?"""
    if not user.is_authenticated:
        return False
    if isinstance(obj, Team):
        return role_allows(_role(user, obj, obj.pk), action)
    if obj.owner_user_id is not None:
        return obj.owner_user_id == user.pk
    return role_allows(_role(user, obj, obj.owner_team_id), action)


def require(user, obj, action: Action) -> None:
    """404 when the user may not even read `obj`; 403 when they may read but not `action`."""
    if not allows(user, obj, Action.READ):
        raise Http404
    if action != Action.READ and not allows(user, obj, action):
        raise PermissionDenied(f"You don't have permission to {action} this.")


def require_now(user, obj, action: Action) -> None:
    """`require` on an object fetched earlier (checked then): the role is read again, so a
    membership lost since counts (a team object costs its one role query; a personal one none)."""
    obj._access_role = None
    require(user, obj, action)


def get_for(user, queryset_or_model, pk, action: Action = Action.READ):
    """Fetch by id through the rules: 404 outside the tenant (or no such id), 403 when the role
    doesn't allow `action`."""
    queryset = (
        queryset_or_model
        if isinstance(queryset_or_model, models.QuerySet)
        else queryset_or_model._default_manager.all()
    )
    pk = parse_id(pk)
    if not user.is_authenticated or pk is None:
        raise Http404
    # Fetch by id, then decide in Python: a personal object needs no further query, a team
    # object one (the role). Cheaper than a scoped query with a membership subquery.
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise Http404
    require(user, obj, action)
    return obj


# --- Invitations --------------------------------------------------------------------------------
# Not owned objects: an invitation is seen by exactly two kinds of people — the invitee (to
# accept or decline it) and the managers of its team (to see what is pending and withdraw it).
# Everyone else, the team's members and viewers included, gets 404.


def get_invitation_for(user, queryset: models.QuerySet, pk, *, team: Team | None = None):
    """With `team`: an invitation of that team, for its managers. Without: one addressed to
    `user`. 404 otherwise (also for ids that don't exist)."""
    if not user.is_authenticated:
        raise Http404
    try:
        invitation = queryset.filter(pk=pk).select_related("team").first()
    except (ValueError, TypeError):
        raise Http404 from None
    if invitation is None:
        raise Http404
    if team is None:
        if invitation.invitee_id != user.pk:
            raise Http404
    elif invitation.team_id != team.pk or not allows(user, team, Action.MANAGE):
        raise Http404
    return invitation


aget_for = sync_to_async(get_for)
aallows = sync_to_async(allows)
