"""REST endpoints for me, teams, memberships and tokens. Thin: validate, call a service, render."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import generics, mixins, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from accounts import selectors, services
from accounts.access import Action
from accounts.models import ApiToken
from accounts.permissions import SessionOnly
from accounts.serializers import (
    MembershipAddSerializer,
    MembershipRoleSerializer,
    MembershipSerializer,
    MeSerializer,
    MyTeamSerializer,
    TeamWriteSerializer,
    TokenCreatedSerializer,
    TokenCreateSerializer,
    TokenSerializer,
)

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
        with transaction.atomic():
            if "first_name" in data or "last_name" in data:
                services.user_update_names(
                    user=user,
                    first_name=data.get("first_name", user.first_name),
                    last_name=data.get("last_name", user.last_name),
                )
            if "email" in data and data["email"] != user.email:
                services.user_change_email(
                    user=user, email=data["email"], password=data.get("current_password", "")
                )
        return self._render(request)


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


class MemberListView(mixins.ListModelMixin, generics.GenericAPIView):
    serializer_class = MembershipSerializer

    def get_queryset(self):
        team = selectors.team_for_user(user=self.request.user, pk=self.kwargs["team_pk"])
        return selectors.memberships_for_team(user=self.request.user, team=team)

    def get(self, request, team_pk):
        return self.list(request)

    @extend_schema(request=MembershipAddSerializer, responses={201: MembershipSerializer})
    def post(self, request, team_pk):
        team = selectors.team_for_user(user=request.user, pk=team_pk, action=Action.MANAGE)
        data = MembershipAddSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_add(
            actor=request.user,
            team=team,
            identifier=data.validated_data["user"],
            role=data.validated_data["role"],
        )
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)


class MemberDetailView(generics.GenericAPIView):
    serializer_class = MembershipSerializer

    def get(self, request, team_pk, pk):
        team = selectors.team_for_user(user=request.user, pk=team_pk)
        membership = selectors.membership_for_user(user=request.user, team=team, pk=pk)
        return Response(MembershipSerializer(membership).data)

    @extend_schema(request=MembershipRoleSerializer)
    def patch(self, request, team_pk, pk):
        team = selectors.team_for_user(user=request.user, pk=team_pk, action=Action.MANAGE)
        membership = selectors.membership_for_user(user=request.user, team=team, pk=pk)
        data = MembershipRoleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.membership_change_role(
            actor=request.user, membership=membership, role=data.validated_data["role"]
        )
        return Response(MembershipSerializer(membership).data)

    def delete(self, request, team_pk, pk):
        """Remove a member (manage), or leave the team by deleting your own membership."""
        team = selectors.team_for_user(user=request.user, pk=team_pk)
        membership = selectors.membership_for_user(user=request.user, team=team, pk=pk)
        services.membership_remove(actor=request.user, membership=membership)
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
