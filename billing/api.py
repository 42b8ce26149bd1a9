"""REST for billing: the usage ledger, budgets, notifications. Thin: validate, call one service
or selector, render."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, mixins, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts import selectors as account_selectors
from accounts.access import Action
from billing import notifications, selectors, services, usage, usage_figures
from billing.forms import UsageFilterForm
from billing.serializers import (
    BudgetSerializer,
    BudgetWriteSerializer,
    NotificationSerializer,
    NotificationsReadSerializer,
    UsageRecordSerializer,
    UsageSummarySerializer,
)

TEAM_PARAMETER = OpenApiParameter(
    "team",
    OpenApiTypes.INT,
    description="A team id: that team's too. Omit for your own only.",
)


def _team(request):
    team_id = request.query_params.get("team")
    return account_selectors.team_for_user(user=request.user, pk=team_id) if team_id else None


class UsageListView(mixins.ListModelMixin, generics.GenericAPIView):
    serializer_class = UsageRecordSerializer

    def get_queryset(self):
        return selectors.usage_for_user(
            user=self.request.user, team=_team(self.request)
        ).select_related("user")

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "team",
                OpenApiTypes.INT,
                description="A team id: every call charged to that team. Omit for your own calls.",
            )
        ]
    )
    def get(self, request):
        """Usage rows (one per model call), newest first. A call in progress is `running` (its
        tokens so far are estimated); one whose server died is settled `interrupted` first."""
        services.usage_settle_stale()
        return self.list(request)


USAGE_PARAMETERS = [
    OpenApiParameter("team", OpenApiTypes.INT, description="A team id: every call charged to it."),
    OpenApiParameter(
        "user",
        OpenApiTypes.INT,
        description="Only this person's calls (a team's admins and owners: any member; "
        "anyone: themself).",
    ),
    OpenApiParameter("credential", OpenApiTypes.INT, description="Only this key's calls."),
    OpenApiParameter("provider", OpenApiTypes.STR, description="A provider key, e.g. openai."),
    OpenApiParameter("model", OpenApiTypes.STR, description="An exact model id."),
    OpenApiParameter("feature", OpenApiTypes.STR, enum=list(usage.FEATURES)),
    OpenApiParameter("status", OpenApiTypes.STR, enum=list(usage.STATUSES)),
    OpenApiParameter("period", OpenApiTypes.STR, enum=list(usage.PERIODS)),
    OpenApiParameter("start", OpenApiTypes.DATE, description="First day (period=custom)."),
    OpenApiParameter("end", OpenApiTypes.DATE, description="Last day, inclusive (period=custom)."),
]


class UsageSummaryView(generics.GenericAPIView):
    serializer_class = UsageSummarySerializer

    @extend_schema(parameters=USAGE_PARAMETERS, responses={200: UsageSummarySerializer})
    def get(self, request):
        """The Usage dashboard's figures for the same filters: totals (with what they leave
        out), per model, per day, and the notices (month-end projection, the last 7 days against
        the weeks before, budgets near their limit). Without `team`: your own calls, wherever
        they were charged. Days are the instance's (`time_zone`). A foreign id is a 404."""
        data = {k: v for k, v in request.query_params.items() if k in UsageFilterForm.base_fields}
        form = UsageFilterForm({"team": "", **data}, user=request.user)
        if not form.is_valid():
            raise ValidationError(form.errors.get_json_data(escape_html=True))
        cleaned = form.cleaned_data
        query = usage.usage_query_for(
            user=request.user,
            team=cleaned["team"],
            member=cleaned["user"] or None,
            credential=cleaned["credential"] or None,
            preset=cleaned["provider"],
            model=cleaned["model"],
            feature=cleaned["feature"],
            status=cleaned["status"],
            period=cleaned["period"],
            start=cleaned["start"],
            end=cleaned["end"],
        )
        services.usage_settle_stale()
        figures = usage_figures.usage_figures(q=query)
        body = {
            "query": query,
            "time_zone": usage.zone_name(),
            "totals": figures.totals,
            "models": figures.models,
            "days": figures.days,
            "notices": usage_figures.usage_notices(q=query),
        }
        return Response(UsageSummarySerializer(body).data)


def _budget_body(request, budget) -> dict:
    [state] = selectors.budget_statuses(user=request.user, budgets=[budget])
    return BudgetSerializer(state).data


class BudgetListView(generics.GenericAPIView):
    serializer_class = BudgetSerializer

    @extend_schema(parameters=[TEAM_PARAMETER], responses={200: BudgetSerializer(many=True)})
    def get(self, request):
        """Your personal budgets (and with `?team=` that team's), each with its current period:
        spent, held by calls in progress, left, when it resets."""
        budgets = selectors.budgets_for_user(user=request.user, team=_team(request))
        page = self.paginate_queryset(budgets)
        states = selectors.budget_statuses(user=request.user, budgets=page)
        return self.get_paginated_response(BudgetSerializer(states, many=True).data)

    @extend_schema(request=BudgetWriteSerializer, responses={201: BudgetSerializer})
    def post(self, request):
        """Add a budget: personal, or for a team you manage (`owner_team`)."""
        data = BudgetWriteSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        budget = services.budget_create(actor=request.user, **data.validated_data)
        return Response(_budget_body(request, budget), status=status.HTTP_201_CREATED)


class BudgetDetailView(generics.GenericAPIView):
    serializer_class = BudgetSerializer

    def get(self, request, pk):
        return Response(_budget_body(request, selectors.budget_for_user(user=request.user, pk=pk)))

    @extend_schema(request=BudgetWriteSerializer, responses={200: BudgetSerializer})
    def patch(self, request, pk):
        """Change a budget you manage (its owner never changes)."""
        budget = selectors.budget_for_user(user=request.user, pk=pk, action=Action.MANAGE)
        data = BudgetWriteSerializer(data=request.data, partial=True, context={"request": request})
        data.is_valid(raise_exception=True)
        fields = {k: v for k, v in data.validated_data.items() if k != "owner_team"}
        budget = services.budget_update(actor=request.user, budget=budget, **fields)
        return Response(_budget_body(request, budget))

    def delete(self, request, pk):
        budget = selectors.budget_for_user(user=request.user, pk=pk, action=Action.MANAGE)
        services.budget_delete(actor=request.user, budget=budget)
        return Response(status=status.HTTP_204_NO_CONTENT)


class NotificationListView(mixins.ListModelMixin, generics.GenericAPIView):
    serializer_class = NotificationSerializer

    def get_queryset(self):
        return notifications.notifications_for_user(user=self.request.user)

    def get(self, request):
        """Your notifications (budget alerts, …), newest first."""
        return self.list(request)


class NotificationsReadView(generics.GenericAPIView):
    serializer_class = NotificationsReadSerializer

    @extend_schema(request=NotificationsReadSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request):
        """Mark your notifications read: those `ids`, or all. Answers `{"marked": n}`."""
        data = NotificationsReadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        marked = notifications.notifications_mark_read(
            user=request.user, ids=data.validated_data.get("ids")
        )
        return Response({"marked": marked})
