from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, mixins

from accounts import selectors as account_selectors
from billing import selectors, services
from billing.serializers import UsageRecordSerializer


class UsageListView(mixins.ListModelMixin, generics.GenericAPIView):
    serializer_class = UsageRecordSerializer

    def get_queryset(self):
        team_id = self.request.query_params.get("team")
        team = (
            account_selectors.team_for_user(user=self.request.user, pk=team_id) if team_id else None
        )
        return selectors.usage_for_user(user=self.request.user, team=team).select_related("user")

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
