from django.contrib import admin

from webhooks.models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """Read-only: the outbox of events waiting for the webhook deliveries."""

    list_display = ["created_at", "type", "owner_team", "owner_user"]
    list_filter = ["type"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
