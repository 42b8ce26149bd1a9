"""REST endpoints for me, teams, memberships and tokens. Thin: validate, call a service, render."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import generics, mixins, status
from rest_framework.exceptions import PermissionDenied, Throttled
from rest_framework.fields import DateTimeField
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from accounts import access, selectors, services, signin
from accounts.access import Action
from accounts.models import ApiToken
from accounts.permissions import SessionOnly
from accounts.serializers import (
    InvitationCreateSerializer,
    MembershipRoleSerializer,
    MembershipSerializer,
    MeSerializer,
    MyInvitationSerializer,
    MyTeamSerializer,
    TeamInvitationSerializer,
    TeamWriteSerializer,
    TokenCreatedSerializer,
    TokenCreateSerializer,
    TokenSerializer,
)
from workbench import connections

# What controls logging in: never changed with an API token (DESIGN §5).
LOGIN_FIELDS = {"email", "username", "password", "current_password"}


class MeView(generics.GenericAPIView):
    serializer_class = MeSerializer

    def _render(self, request):
        teams = selectors.teams_for_user(user=request.user)
        context = {"request": request, "teams": teams}
        return Response(MeSerializer(request.user, context=context).data)

    def get(self, request):
        return self._render(request)

    def patch(self, request):
        """Names with a token or a session; the email (where password resets go) only with a
        browser session and the current password."""
        if (
            isinstance(request.auth, ApiToken)
            and isinstance(request.data, dict)
            and LOGIN_FIELDS & set(request.data)
        ):
            raise PermissionDenied(
                "API tokens can't change the email address, username or password. "
                "Use Settings → Profile in the app."
            )
        serializer = MeSerializer(
            request.user, data=request.data, partial=True, context={"request": request}
        )
        serializer.is_valid(raise_exception=True)
        data, user = serializer.validated_data, request.user
        changes_email = "email" in data and data["email"] != user.email
        attempt = None
        if changes_email:
            # Counted outside the transaction below, so a wrong password stays counted.
            try:
                attempt = signin.attempt(request=request, username=user.get_username())
            except signin.TooManyAttempts as exc:
                raise Throttled(wait=exc.retry_after, detail=exc.messages[0]) from None
        try:
            with transaction.atomic():
                if "first_name" in data or "last_name" in data:
                    services.user_update_names(
                        user=user,
                        first_name=data.get("first_name", user.first_name),
                        last_name=data.get("last_name", user.last_name),
                    )
                if changes_email:
                    services.user_change_email(
                        user=user, email=data["email"], password=data.get("current_password", "")
                    )
                if "time_zone" in data:
                    services.user_set_time_zone(user=user, time_zone=data["time_zone"])
        except DjangoValidationError as exc:
            if attempt and "current_password" not in getattr(exc, "error_dict", {}):
                attempt.succeeded()
            raise
        if attempt:
            attempt.succeeded()
        return self._render(request)


# --- GET /api/me/ with an API token: the lean path (docs/performance.md, issue 11) ---------------

_me_drf = MeView.as_view()
LEAN_ACCEPT = ("", "*/*", "application/json")


def _drf_allow(view_class) -> str:
    """The Allow header DRF sends for this view (its `as_view` adds HEAD where GET is)."""
    view = view_class()
    view.head = view.get
    return ", ".join(view.allowed_methods)


ME_ALLOW = _drf_allow(MeView)


_CREATED_AT = DateTimeField()  # MyTeamSerializer's spelling of `created_at`, reused


def _me_body(user, token: ApiToken) -> bytes:
    """What MeView's GET answers for this token, byte for byte (DRF's renderer, MeSerializer's
    fields in its order — tests compare the two): building a ModelSerializer's fields per
    request was a third of this path's CPU (py-spy, docs/performance.md)."""
    teams = [
        {
            "id": team.pk,
            "name": team.name,
            "role": team.my_role,
            "member_count": team.member_count,
            "created_at": _CREATED_AT.to_representation(team.created_at),
        }
        for team in selectors.teams_for_user(user=user)
    ]
    return JSONRenderer().render(
        {
            "id": user.pk,
            "username": user.username,
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "time_zone": user.time_zone,
            "is_staff": user.is_staff,
            "teams": teams,
            "token_scope": token.scope,
        }
    )


async def me(request):
    """`/api/me/`. A plain GET with an API token this process checked in the last few seconds
    (accounts.services.token_cached) is answered on the event loop with one database hop (the
    teams query): a script polling it costs no DRF dispatch and no request thread. Everything
    else — other methods, sessions, a token not in the cache, query parameters, an Accept DRF
    would negotiate — is MeView, unchanged (it authenticates, throttles, refuses and caches)."""
    if request.method == "GET" and not request.GET:
        keyword, _, raw = request.headers.get("Authorization", "").partition(" ")
        accept = request.headers.get("Accept", "").strip()
        token = None
        if keyword.lower() == "bearer" and accept in LEAN_ACCEPT:
            token = services.token_cached(raw=raw.strip())
        if token is not None and token.user.is_active:  # a read: any token scope may
            body = await connections.hop(_me_body)(token.user, token)
            response = HttpResponse(body, content_type="application/json")
            response["Allow"] = ME_ALLOW
            return response
    return await sync_to_async(_me_drf)(request)


# The schema generator and DRF's introspection read these off the route's callback.
me.cls, me.initkwargs, me.csrf_exempt = MeView, _me_drf.initkwargs, True


class TeamListView(mixins.ListModelMixin, generics.GenericAPIView):
    serializer_class = MyTeamSerializer

    def get_queryset(self):
        return selectors.teams_for_user(user=self.request.user)

    def get(self, request):
        return self.list(request)

    @extend_schema(request=TeamWriteSerializer, responses={201: MyTeamSerializer})
    def post(self, request):
        data = TeamWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        team = services.team_create(user=request.user, name=data.validated_data["name"])
        team = selectors.team_for_user(user=request.user, pk=team.pk)
        return Response(MyTeamSerializer(team).data, status=status.HTTP_201_CREATED)


class TeamDetailView(generics.GenericAPIView):
    serializer_class = MyTeamSerializer

    def get(self, request, pk):
        return Response(MyTeamSerializer(selectors.team_for_user(user=request.user, pk=pk)).data)

    @extend_schema(request=TeamWriteSerializer)
    def patch(self, request, pk):
        team = selectors.team_for_user(user=request.user, pk=pk, action=Action.MANAGE)
        data = TeamWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.team_rename(actor=request.user, team=team, name=data.validated_data["name"])
        return Response(MyTeamSerializer(selectors.team_for_user(user=request.user, pk=pk)).data)

    def delete(self, request, pk):
        team = selectors.team_for_user(user=request.user, pk=pk, action=Action.MANAGE)
        services.team_delete(actor=request.user, team=team)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _member_context(view, team) -> dict:
    """Members' emails go to the team's managers only (and each member sees their own)."""
    return {
        **generics.GenericAPIView.get_serializer_context(view),
        "show_emails": access.allows(view.request.user, team, Action.MANAGE),
    }


class MemberListView(mixins.ListModelMixin, generics.GenericAPIView):
    """The team's members. People join by accepting an invitation (…/invitations/)."""

    serializer_class = MembershipSerializer

    def get_team(self):
        return selectors.team_for_user(user=self.request.user, pk=self.kwargs["team_pk"])

    def get_queryset(self):
        return selectors.memberships_for_team(user=self.request.user, team=self.get_team())

    def get_serializer_context(self):
        return _member_context(self, self.get_team())

    def get(self, request, team_pk):
        return self.list(request)


class MemberDetailView(generics.GenericAPIView):
    serializer_class = MembershipSerializer

    def _render(self, request, team, membership):
        context = _member_context(self, team)
        return Response(MembershipSerializer(membership, context=context).data)

    def get(self, request, team_pk, pk):
        team = selectors.team_for_user(user=request.user, pk=team_pk)
        membership = selectors.membership_for_user(user=request.user, team=team, pk=pk)
        return self._render(request, team, membership)

    @extend_schema(request=MembershipRoleSerializer)
    def patch(self, request, team_pk, pk):
        team = selectors.team_for_user(user=request.user, pk=team_pk, action=Action.MANAGE)
        membership = selectors.membership_for_user(user=request.user, team=team, pk=pk)
        data = MembershipRoleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.membership_change_role(
            actor=request.user, membership=membership, role=data.validated_data["role"]
        )
        return self._render(request, team, membership)

    def delete(self, request, team_pk, pk):
        """Remove a member (manage), or leave the team by deleting your own membership."""
        team = selectors.team_for_user(user=request.user, pk=team_pk)
        membership = selectors.membership_for_user(user=request.user, team=team, pk=pk)
        services.membership_remove(actor=request.user, membership=membership)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Invitations -------------------------------------------------------------------------------


class TeamInvitationListView(mixins.ListModelMixin, generics.GenericAPIView):
    """The team's open invitations (owners and admins)."""

    serializer_class = TeamInvitationSerializer

    def get_queryset(self):
        team = selectors.team_for_user(user=self.request.user, pk=self.kwargs["team_pk"])
        return selectors.invitations_for_team(user=self.request.user, team=team)

    def get(self, request, team_pk):
        return self.list(request)

    @extend_schema(request=InvitationCreateSerializer, responses={201: TeamInvitationSerializer})
    def post(self, request, team_pk):
        """Invite someone by username or email. The answer is the same whether or not the
        account exists; the invitee accepts or declines in the app."""
        team = selectors.team_for_user(user=request.user, pk=team_pk, action=Action.MANAGE)
        data = InvitationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation = services.invitation_create(
            actor=request.user,
            team=team,
            identifier=data.validated_data["user"],
            role=data.validated_data["role"],
        )
        return Response(TeamInvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)


class TeamInvitationDetailView(generics.GenericAPIView):
    serializer_class = TeamInvitationSerializer

    def _invitation(self, request, team_pk, pk):
        team = selectors.team_for_user(user=request.user, pk=team_pk)
        return selectors.invitation_for_team(user=request.user, team=team, pk=pk)

    def get(self, request, team_pk, pk):
        return Response(TeamInvitationSerializer(self._invitation(request, team_pk, pk)).data)

    def delete(self, request, team_pk, pk):
        """Withdraw the invitation."""
        invitation = self._invitation(request, team_pk, pk)
        services.invitation_revoke(actor=request.user, invitation=invitation)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationListView(mixins.ListModelMixin, generics.GenericAPIView):
    """Invitations waiting for your answer."""

    serializer_class = MyInvitationSerializer

    def get_queryset(self):
        return selectors.invitations_for_invitee(user=self.request.user)

    def get(self, request):
        return self.list(request)


class InvitationDetailView(generics.GenericAPIView):
    serializer_class = MyInvitationSerializer

    def get(self, request, pk):
        invitation = selectors.invitation_for_invitee(user=request.user, pk=pk)
        return Response(MyInvitationSerializer(invitation).data)


ANSWER_IN_PERSON = (
    "API tokens can't accept or decline invitations: joining a team is the person's decision. "
    "Use Settings → Invitations in the app (or the API with a browser session)."
)


class InvitationAcceptView(generics.GenericAPIView):
    serializer_class = MyTeamSerializer
    permission_classes = [*generics.GenericAPIView.permission_classes, SessionOnly]
    session_only_message = ANSWER_IN_PERSON

    @extend_schema(request=None, responses={200: MyTeamSerializer})
    def post(self, request, pk):
        """Accept: you join the team with the invitation's role. Returns the team."""
        invitation = selectors.invitation_for_invitee(user=request.user, pk=pk)
        services.invitation_accept(user=request.user, invitation=invitation)
        team = selectors.team_for_user(user=request.user, pk=invitation.team_id)
        return Response(MyTeamSerializer(team).data)


class InvitationDeclineView(generics.GenericAPIView):
    serializer_class = MyInvitationSerializer
    permission_classes = [*generics.GenericAPIView.permission_classes, SessionOnly]
    session_only_message = ANSWER_IN_PERSON

    @extend_schema(request=None, responses={204: None})
    def post(self, request, pk):
        """Decline. The team keeps seeing the invitation as pending until it expires."""
        invitation = selectors.invitation_for_invitee(user=request.user, pk=pk)
        services.invitation_decline(user=request.user, invitation=invitation)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenListView(mixins.ListModelMixin, generics.GenericAPIView):
    serializer_class = TokenSerializer
    permission_classes = [*generics.GenericAPIView.permission_classes, SessionOnly]

    def get_queryset(self):
        return selectors.tokens_for_user(user=self.request.user)

    def get(self, request):
        return self.list(request)

    @extend_schema(request=TokenCreateSerializer, responses={201: TokenCreatedSerializer})
    def post(self, request):
        data = TokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, raw = services.token_create(user=request.user, **data.validated_data)
        token.token = raw
        return Response(TokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)


class TokenDetailView(generics.GenericAPIView):
    serializer_class = TokenSerializer
    permission_classes = [*generics.GenericAPIView.permission_classes, SessionOnly]

    def get(self, request, pk):
        return Response(TokenSerializer(selectors.token_for_user(user=request.user, pk=pk)).data)

    def delete(self, request, pk):
        """Revoke the token (it stays listed as revoked)."""
        token = selectors.token_for_user(user=request.user, pk=pk)
        services.token_revoke(user=request.user, token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)
