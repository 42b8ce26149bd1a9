from decimal import Decimal

from django.apps import apps
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.access import Action
from accounts.fields import ScopedPrimaryKeyRelatedField
from accounts.models import Team
from billing import money
from billing.forms import _int_or_404, members_visible_to
from billing.models import Notification, Period, UsageRecord


class UsageRecordSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", default=None, read_only=True)

    class Meta:
        model = UsageRecord
        fields = [
            "id",
            "created_at",
            "user",
            "team",
            "credential",
            "credential_name",
            "preset",
            "provider_id",
            "model",
            "operation",
            "feature",
            "status",
            "error_code",
            "error_message",
            "attempts",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
            "tokens_estimated",
            "cost",
            "cost_source",
            "price_snapshot",
            "finish_reason",
            "ttft_ms",
            "retry_wait_ms",
            "duration_ms",
            "overhead_ms",
            "tokens_per_second",
            "context",
        ]
        read_only_fields = fields


# --- Budgets and notifications ------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.INT)
class MemberField(serializers.PrimaryKeyRelatedField):
    """A team member by id: someone outside the requesting user's teams is a 404."""

    def get_queryset(self):
        return members_visible_to(self.context["request"].user)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | str):
            raise serializers.ValidationError("A user id.")
        member = self.get_queryset().filter(pk=_int_or_404(data)).first()
        if member is None:
            raise Http404("No such member.")
        return member


class BudgetWriteSerializer(serializers.Serializer):
    """Create (owner_team optional: empty means a personal budget) or change a budget."""

    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    owner_team = ScopedPrimaryKeyRelatedField(
        queryset=Team.objects.all(),
        action=Action.MANAGE,
        required=False,
        allow_null=True,
        help_text="A team id (you manage it) for a team budget; omit for a personal one.",
    )
    user = MemberField(
        required=False, allow_null=True, help_text="Team budgets: count only this member's calls."
    )
    credential = ScopedPrimaryKeyRelatedField(
        queryset=apps.get_model("providers", "ProviderCredential").objects.all(),
        required=False,
        allow_null=True,
        help_text="Count only this credential's calls (one of the budget owner's).",
    )
    preset = serializers.CharField(
        max_length=40, required=False, allow_blank=True, help_text="A provider key, e.g. anthropic."
    )
    model = serializers.CharField(max_length=200, required=False, allow_blank=True)
    period = serializers.ChoiceField(choices=Period.choices, required=False)
    time_zone = serializers.CharField(max_length=64, required=False)
    limit = serializers.DecimalField(
        max_digits=14, decimal_places=4, min_value=Decimal("0.01"), max_value=Decimal("1000000000")
    )
    hard = serializers.BooleanField(required=False)
    thresholds = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=1000), max_length=10, required=False
    )
    is_active = serializers.BooleanField(required=False)


class BudgetSerializer(serializers.Serializer):
    """A budget and its current period."""

    id = serializers.IntegerField(source="budget.pk")
    name = serializers.CharField(source="budget.name")
    owner_team = serializers.IntegerField(source="budget.owner_team_id", allow_null=True)
    user = serializers.IntegerField(source="budget.user_id", allow_null=True)
    credential = serializers.IntegerField(source="budget.credential_id", allow_null=True)
    preset = serializers.CharField(source="budget.preset")
    model = serializers.CharField(source="budget.model")
    period = serializers.CharField(source="budget.period")
    time_zone = serializers.CharField(source="budget.time_zone")
    limit = serializers.SerializerMethodField()
    hard = serializers.BooleanField(source="budget.hard")
    thresholds = serializers.ListField(source="budget.thresholds", child=serializers.IntegerField())
    is_active = serializers.BooleanField(source="budget.is_active")
    scope = serializers.CharField(help_text="What it covers, in words.")
    current = serializers.SerializerMethodField(
        help_text="This period: start, resets_at, spent, held (calls in progress), left, percent."
    )
    applies_to_me = serializers.BooleanField()
    can_manage = serializers.BooleanField()

    def get_limit(self, status) -> str:
        return money.decimal_str(status.budget.limit)

    def get_current(self, status) -> dict:
        return {
            "start": status.start.isoformat(),
            "resets_at": status.end.isoformat(),
            "spent": money.decimal_str(status.spent),
            "held": money.decimal_str(status.held),
            "left": money.decimal_str(status.left),
            "percent": status.percent,
            "calls": status.calls,
            "unpriced_calls": status.unpriced_calls,
        }


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "kind", "title", "body", "url", "created_at", "read_at"]
        read_only_fields = fields


class NotificationsReadSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        max_length=1000,
        help_text="Your notifications to mark read; omit for all of them.",
    )


# --- The usage summary (the dashboard's figures) --------------------------------------------------


class _Money(serializers.Field):
    """A plain decimal string (`"4.12"`), as every amount in the API."""

    def to_representation(self, value):
        return money.decimal_str(value)


_Money = extend_schema_field(OpenApiTypes.STR)(_Money)


class UsageTotalsSerializer(serializers.Serializer):
    calls = serializers.IntegerField()
    errors = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField()
    reasoning_tokens = serializers.IntegerField()
    cost = _Money(help_text="USD, priced calls only (see unpriced_calls).")
    estimated_cost = _Money(help_text="The part of cost priced on locally counted tokens.")
    estimated_calls = serializers.IntegerField()
    unpriced_calls = serializers.IntegerField()
    local_calls = serializers.IntegerField()
    cost_display = serializers.CharField(source="cost_label")
    avg_ttft_ms = serializers.FloatField(allow_null=True)
    tokens_per_second = serializers.FloatField(allow_null=True)
    error_rate = serializers.FloatField(allow_null=True, help_text="Percent of calls.")


class UsageModelSerializer(UsageTotalsSerializer):
    provider = serializers.CharField(source="preset")
    provider_label = serializers.CharField(source="provider")
    model = serializers.CharField()


class UsageDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    calls = serializers.IntegerField()
    errors = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost = _Money()
    unpriced_calls = serializers.IntegerField()
    cost_by_provider = serializers.SerializerMethodField()

    @extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}})
    def get_cost_by_provider(self, day) -> dict:
        return {preset: money.decimal_str(cost) for preset, cost in day.cost_by_preset.items()}


class UsageBudgetNoticeSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="budget.pk")
    name = serializers.CharField(source="budget.name")
    scope = serializers.CharField()
    percent = serializers.IntegerField()
    level = serializers.CharField(help_text="warn (past the first threshold) or over.")
    spent = _Money(source="used")
    limit = _Money(source="budget.limit")
    resets_at = serializers.DateTimeField(source="end")


class UsageNoticesSerializer(serializers.Serializer):
    month_to_date = _Money()
    month_unpriced_calls = serializers.IntegerField(source="month_unpriced")
    projected_month_end = _Money(source="projected", allow_null=True)
    last_7_days = _Money(source="week")
    weekly_average = _Money(source="week_average", allow_null=True)
    week_change_percent = serializers.IntegerField(source="week_change", allow_null=True)
    budgets = UsageBudgetNoticeSerializer(many=True)


class UsageSummarySerializer(serializers.Serializer):
    """The dashboard's figures for the same filters (read from the daily rollups)."""

    team = serializers.IntegerField(source="query.team.pk", allow_null=True, default=None)
    user = serializers.IntegerField(source="query.member.pk", allow_null=True, default=None)
    period = serializers.CharField(source="query.period")
    start = serializers.DateField(source="query.start")
    end = serializers.DateField(source="query.end", help_text="Inclusive.")
    time_zone = serializers.CharField(help_text="The zone the days are in (the instance's).")
    totals = UsageTotalsSerializer()
    models = UsageModelSerializer(many=True, help_text="Costliest first.")
    days = UsageDaySerializer(many=True)
    notices = UsageNoticesSerializer()
