"""Reads for accounts, always scoped to the user asking."""

from __future__ import annotations

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.utils import timezone

from accounts import access
from accounts.access import Action
from accounts.models import ApiToken, Invitation, InvitationStatus, Membership, Team, User


def teams_for_user(*, user: User) -> QuerySet[Team]:
    """The user's teams, each annotated with `my_role` and `member_count`."""
    my_role = (
        Membership.objects.filter(team=OuterRef("pk"), user_id=user.pk)
        .order_by()
        .values("role")[:1]
    )
    return (
        access.scope(Team.objects.all(), user)
        .annotate(my_role=Subquery(my_role), member_count=Count("memberships"))
        .order_by("name", "pk")
    )


def team_for_user(*, user: User, pk, action: Action = Action.READ) -> Team:
    return access.get_for(user, teams_for_user(user=user), pk, action)


def memberships_for_team(*, user: User, team: Team) -> QuerySet[Membership]:
    access.require(user, team, Action.READ)
    return team.memberships.select_related("user").order_by("user__username")


def membership_for_user(*, user: User, team: Team, pk, action: Action = Action.READ) -> Membership:
    """A membership of `team` the user may see; 404 for ids of other teams."""
    from django.http import Http404

    access.require(user, team, action)
    try:
        return team.memberships.select_related("user", "team").get(pk=pk)
    except (Membership.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def invitations_for_team(*, user: User, team: Team) -> QuerySet[Invitation]:
    """The team's open invitations, for its managers. A declined one is listed as pending until
    it expires (see Invitation)."""
    access.require(user, team, Action.MANAGE)
    return (
        Invitation.objects.filter(
            team=team,
            status__in=[InvitationStatus.PENDING, InvitationStatus.DECLINED],
            expires_at__gt=timezone.now(),
        )
        .select_related("invited_by", "team")
        .order_by("-created_at", "-id")
    )


def invitation_for_team(*, user: User, team: Team, pk) -> Invitation:
    return access.get_invitation_for(user, Invitation.objects.all(), pk, team=team)


def invitations_for_invitee(*, user: User) -> QuerySet[Invitation]:
    """Invitations waiting for the user's answer."""
    return (
        Invitation.objects.filter(
            invitee_id=user.pk, status=InvitationStatus.PENDING, expires_at__gt=timezone.now()
        )
        .select_related("team", "invited_by")
        .order_by("-created_at", "-id")
    )


def invitation_for_invitee(*, user: User, pk) -> Invitation:
    return access.get_invitation_for(user, Invitation.objects.select_related("invited_by"), pk)


def pending_invitation_count(*, user: User) -> int:
    return invitations_for_invitee(user=user).count()


def tokens_for_user(*, user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user_id=user.pk)


def token_for_user(*, user: User, pk) -> ApiToken:
    from django.http import Http404

    try:
        return tokens_for_user(user=user).get(pk=pk)
    except (ApiToken.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def current_team(*, user: User, team_id) -> Team | None:
    """The team chosen in the switcher, if the user is (still) in it."""
    if not user.is_authenticated or not team_id:
        return None
    return teams_for_user(user=user).filter(pk=team_id).first()
