from django.contrib import admin

from billing.models import DailyUsage, PriceOverride, UsageRecord


@admin.register(PriceOverride)
class PriceOverrideAdmin(admin.ModelAdmin):
    list_display = [
        "provider_id",
        "model",
        "input_per_mtok",
        "output_per_mtok",
        "note",
        "updated_at",
    ]
    search_fields = ["provider_id", "model"]


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    """Read-only: the ledger is append-only."""

    list_display = [
        "created_at",
        "user",
        "team",
        "preset",
        "model",
        "status",
        "input_tokens",
        "output_tokens",
        "cost",
        "cost_source",
    ]
    list_filter = ["status", "cost_source", "preset", "feature"]
    search_fields = ["model", "user__username", "credential_name"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(DailyUsage)
class DailyUsageAdmin(admin.ModelAdmin):
    list_display = [
        "day",
        "user",
        "team",
        "model",
        "calls",
        "errors",
        "input_tokens",
        "output_tokens",
        "cost",
    ]
    list_filter = ["day"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
