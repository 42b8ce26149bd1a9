from django.contrib import admin

from billing.models import (
    Budget,
    BudgetAlert,
    BudgetWindow,
    DailyUsage,
    Notification,
    PriceOverride,
    UsageRecord,
)


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
        "feature",
        "status",
        "calls",
        "input_tokens",
        "output_tokens",
        "cost",
        "unpriced_calls",
    ]
    list_filter = ["day", "feature", "status", "operation"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class BudgetWindowInline(admin.TabularInline):
    model = BudgetWindow
    extra = 0
    can_delete = False
    fields = ["start", "end", "spent", "calls", "unpriced_calls"]
    readonly_fields = fields
    ordering = ["-start"]
    max_num = 0


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    """Budgets of every owner. Saving here skips the form's checks the app applies (a member
    of the team, a credential of the owner): staff are trusted to know what they pick."""

    list_display = [
        "__str__",
        "owner_team",
        "owner_user",
        "user",
        "credential",
        "preset",
        "model",
        "period",
        "time_zone",
        "limit",
        "hard",
        "is_active",
    ]
    list_filter = ["period", "hard", "is_active", "preset"]
    search_fields = ["name", "model", "owner_team__name", "owner_user__username"]
    raw_id_fields = ["owner_team", "owner_user", "user", "credential", "created_by"]
    inlines = [BudgetWindowInline]


@admin.register(BudgetAlert)
class BudgetAlertAdmin(admin.ModelAdmin):
    list_display = ["created_at", "budget", "threshold", "spent", "window_start"]
    list_filter = ["threshold"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "kind", "title", "read_at"]
    list_filter = ["kind"]
    search_fields = ["title", "user__username"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
