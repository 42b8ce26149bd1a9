from datetime import timedelta
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.options import ActionLocation
from django.contrib.admin.widgets import AdminSplitDateTime
from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from billing import money, pricing
from billing.models import (
    Budget,
    BudgetAlert,
    BudgetWindow,
    DailyUsage,
    Notification,
    PriceOverride,
    UsageRecord,
)


class PriceOverrideForm(forms.ModelForm):
    """A new price version (or a scheduled one's edit). Empty "effective from" means now."""

    effective_from = forms.SplitDateTimeField(
        required=False,
        widget=AdminSplitDateTime,
        label="Effective from",
        help_text=(
            f"When the price starts to apply, in {settings.TIME_ZONE} — to calls started from "
            "then on. Empty: now, when you save. It can't be in the past (calls made meanwhile "
            "were charged another price); other server processes pick up a price starting now "
            f"within {int(pricing.OVERRIDES_TTL)} s, so schedule a change ahead to switch at an "
            "exact time."
        ),
    )

    class Meta:
        model = PriceOverride
        fields = [
            "provider_id",
            "model",
            "effective_from",
            "ends",
            "input_per_mtok",
            "output_per_mtok",
            "cached_input_per_mtok",
            "cache_write_per_mtok",
            "note",
        ]

    def clean_effective_from(self):
        value = self.cleaned_data.get("effective_from")
        now = timezone.now()
        if value is None or now - PAST_SLACK <= value <= now:
            return now  # typed as "now", or left empty
        if value < now:
            raise forms.ValidationError(
                "A price can't start in the past: calls made since then were charged another "
                "price and keep it. Leave it empty to start now, or pick a later time."
            )
        return value

    def clean(self):
        cleaned = super().clean()
        prices = {name: cleaned.get(name) for name in PriceOverride.PRICE_FIELDS}
        if cleaned.get("ends"):
            for name, value in prices.items():
                if value is not None:
                    self.add_error(name, "An end of the override has no prices: leave it empty.")
        else:
            for name in ("input_per_mtok", "output_per_mtok"):
                if name in cleaned and prices[name] is None:
                    self.add_error(name, "Required (0 for free).")
        for name, value in prices.items():
            if value is not None and value < 0:
                self.add_error(name, "A price can't be negative.")
        return cleaned


def _current_version(provider_id, model):
    return PriceOverride.objects.filter(
        provider_id=provider_id, model=model, effective_from__lte=timezone.now()
    ).order_by("-effective_from")


PAST_SLACK = timedelta(minutes=5)  # a time typed as "now" is a little past by the time it's saved


@admin.register(PriceOverride)
class PriceOverrideAdmin(admin.ModelAdmin):
    """Price versions per model: the list is the history (newest first per model). A version in
    effect is read-only; a new price is a new version; "End now" returns a model to
    genai-prices; only scheduled versions can be edited or deleted."""

    form = PriceOverrideForm
    list_display = [
        "provider_id",
        "model",
        "starts",
        "state",
        "prices",
        "note",
        "created_by",
    ]
    list_filter = ["provider_id", "ends"]
    search_fields = ["provider_id", "model"]
    ordering = ["provider_id", "model", "-effective_from"]
    date_hierarchy = "effective_from"
    actions = ["end_now"]

    @admin.display(description=f"Effective from ({settings.TIME_ZONE})", ordering="effective_from")
    def starts(self, obj: PriceOverride) -> str:
        return f"{timezone.localtime(obj.effective_from):%Y-%m-%d %H:%M:%S}"

    @admin.display(description="State")
    def state(self, obj: PriceOverride) -> str:
        if obj.effective_from > timezone.now():
            return "scheduled"
        current = getattr(obj, "current_id", None)
        if current is None:
            current = _current_version(obj.provider_id, obj.model).values_list("pk", flat=True)[:1]
            current = current[0] if current else None
        if current == obj.pk:
            return "ended (genai-prices)" if obj.ends else "in effect"
        return "ended" if obj.ends else "superseded"

    @admin.display(description="$ / 1M tokens (input · cached · output)")
    def prices(self, obj: PriceOverride) -> str:
        if obj.ends:
            return "— (genai-prices)"
        cached = obj.cached_input_per_mtok
        return " · ".join(
            money.decimal_str(value)
            for value in (
                obj.input_per_mtok,
                cached if cached is not None else obj.input_per_mtok,
                obj.output_per_mtok,
            )
        )

    @admin.display(description="History of this model")
    def history(self, obj: PriceOverride):
        versions = PriceOverride.objects.filter(
            provider_id=obj.provider_id, model=obj.model
        ).order_by("-effective_from")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    format_html(
                        '<a href="{}">{}</a>',
                        reverse("admin:billing_priceoverride_change", args=[version.pk]),
                        f"{timezone.localtime(version.effective_from):%Y-%m-%d %H:%M:%S %Z}",
                    ),
                    self.state(version) + (" (this one)" if version.pk == obj.pk else ""),
                    self.prices(version),
                    version.note,
                )
                for version in versions
            ),
        )
        add = (
            reverse("admin:billing_priceoverride_add")
            + "?"
            + urlencode({"provider_id": obj.provider_id, "model": obj.model})
        )
        return format_html(
            "<table><thead><tr><th>Effective from</th><th>State</th>"
            "<th>$ / 1M (input · cached · output)</th><th>Note</th></tr></thead>"
            '<tbody>{}</tbody></table><p><a class="addlink" href="{}">Add a new version</a> '
            "(a price in effect never changes; the next one replaces it from its start)</p>",
            rows,
            add,
        )

    def get_queryset(self, request):
        """Each row knows its model's version in effect now (the State column, no N+1)."""
        current = _current_version(OuterRef("provider_id"), OuterRef("model")).values("pk")[:1]
        return (
            super()
            .get_queryset(request)
            .select_related("created_by")
            .annotate(current_id=Subquery(current))
        )

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["created_by", "created_at", "history"]

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.in_effect_since():
            return False  # shown read-only: a price in effect never changes
        return super().has_change_permission(request, obj)

    def get_fields(self, request, obj=None):
        fields = list(PriceOverrideForm.Meta.fields)
        if obj is not None:
            fields += ["created_by", "created_at", "history"]
        return fields

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.in_effect_since():
            return False  # in the history for good: end it instead
        return super().has_delete_permission(request, obj)

    def get_actions(self, request, action_location=ActionLocation.CHANGE_LIST):
        actions = super().get_actions(request, action_location)
        actions.pop("delete_selected", None)  # would delete versions in effect
        return actions

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(
        permissions=["add"],
        description="End the selected models' overrides now (back to genai-prices)",
    )
    def end_now(self, request, queryset):
        ended = 0
        for provider_id, model in set(queryset.values_list("provider_id", "model")):
            ended += bool(
                pricing.price_override_end(provider_id=provider_id, model=model, actor=request.user)
            )
        self.message_user(
            request, f"Ended {ended} override(s); earlier prices stay in the history."
        )


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
