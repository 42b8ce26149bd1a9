"""The usage ledger (one row per model call, append-only), its daily rollups, price overrides.

Rows reference providers' credentials by a string foreign key (DESIGN §3: not an import)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from accounts.ownership import Owned


class CostSource(models.TextChoices):
    PROVIDER = "provider", "Provider-reported tokens"
    ESTIMATED = "estimated", "Estimated (tokens counted locally)"
    LOCAL = "local", "Local model ($0)"
    UNPRICED = "unpriced", "Unpriced (no price known)"


class CallStatus(models.TextChoices):
    RUNNING = "running", "In progress"  # opened, not settled yet (see UsageRecord)
    OK = "ok", "Completed"
    ERROR = "error", "Error"
    STOPPED = "stopped", "Stopped by the caller"
    DISCONNECTED = "disconnected", "Caller went away"
    INTERRUPTED = "interrupted", "Server stopped during the call"


# Statuses of a settled row (everything but RUNNING).
SETTLED = tuple(value for value in CallStatus.values if value != CallStatus.RUNNING)


class UsageRecord(models.Model):
    """One row per model call — success, error, stop, disconnect and crash alike.

    Its life (issue 8: crash-proof): a call that passed the gate's checks is *opened* as
    `running` before the provider is called, *checkpointed* about once a second while it streams
    (tokens so far, estimated; `heartbeat_at`), and *settled* exactly once at the end (final
    status, tokens, cost; `heartbeat_at` cleared) — which is when it enters the daily rollup.
    A row still `running` with an old heartbeat belongs to a process that died: the sweep
    (`billing.services.usage_settle_stale`) settles it as `interrupted` from its checkpoint.
    Settled rows are never changed again. Calls refused before any provider call are written
    settled at once.

    Token counts follow genai-prices' Usage: `input_tokens` is the whole prompt, cache reads
    and writes included (`cache_read_tokens`, `cache_write_tokens` are parts of it);
    `output_tokens` includes `reasoning_tokens`."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The team the spend belongs to: the credential's team, else the team the call was made in.
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    credential = models.ForeignKey(
        "providers.ProviderCredential",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    credential_name = models.CharField(
        max_length=100, blank=True
    )  # kept when the credential is deleted
    preset = models.CharField(max_length=40)
    provider_id = models.CharField(max_length=40, blank=True)  # price provider (genai-prices id)
    model = models.CharField(max_length=200)
    operation = models.CharField(max_length=20, default="chat")  # chat | embedding
    feature = models.CharField(
        max_length=30, default="api"
    )  # api | chat | playground | evals | test | …
    status = models.CharField(max_length=20, choices=CallStatus.choices)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.CharField(max_length=500, blank=True)  # ours, shown to users
    # What the provider itself said, scrubbed of key-shaped text: admins only (never in the API,
    # a page or an export — a provider's words can echo the key in forms no scrubber knows).
    provider_detail = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(default=1)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cache_read_tokens = models.PositiveIntegerField(default=0)  # part of input_tokens
    cache_write_tokens = models.PositiveIntegerField(default=0)  # part of input_tokens
    reasoning_tokens = models.PositiveIntegerField(default=0)  # part of output_tokens
    tokens_estimated = models.BooleanField(default=False)
    cost = models.DecimalField(
        max_digits=18, decimal_places=9, null=True, blank=True
    )  # USD; null = unpriced
    cost_source = models.CharField(max_length=20, choices=CostSource.choices)
    price_snapshot = models.JSONField(default=dict, blank=True)
    finish_reason = models.CharField(max_length=20, blank=True)  # stop | length | … (ok calls)
    # Time to first token of any kind (reasoning too), without the gate's retry back-off waits;
    # `retry_wait_ms` is those waits, so ttft_ms + retry_wait_ms is what the caller waited.
    ttft_ms = models.FloatField(null=True, blank=True)
    retry_wait_ms = models.FloatField(default=0)
    duration_ms = models.FloatField(default=0)
    overhead_ms = models.FloatField(default=0)  # our own time before the provider was called
    tokens_per_second = models.FloatField(null=True, blank=True)
    context = models.JSONField(default=dict, blank=True)  # e.g. {"conversation": 12, "message": 40}
    # While `running`: the last checkpoint (the call's heartbeat). None once settled.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            models.Index(fields=["team", "-created_at"]),
            models.Index(fields=["credential", "-created_at"]),
            models.Index(
                fields=["heartbeat_at"],
                condition=models.Q(status="running"),
                name="billing_usage_running",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} {self.status} {self.cost}"


class DailyUsage(models.Model):
    """Totals per day × user × team × credential × provider × model × operation × feature ×
    status, maintained on every ledger write (one upsert per settled call, `billing.rollups`) so
    the dashboard answers every filter and chart without scanning the ledger.

    `day` is the instance's day (settings.TIME_ZONE), whatever zone the caller's request had
    active: one call belongs to one day for everyone. Sums hold what averages need (TTFT over
    `ttft_count` calls; tokens/s as `gen_output_tokens` over `gen_ms`, the time spent
    generating) and what cost honesty needs (calls per cost source, the estimated part of
    `cost`)."""

    day = models.DateField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+"
    )
    team = models.ForeignKey("accounts.Team", null=True, on_delete=models.CASCADE, related_name="+")
    credential = models.ForeignKey(
        "providers.ProviderCredential", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    preset = models.CharField(max_length=40, blank=True, default="")
    provider_id = models.CharField(max_length=40, blank=True)
    model = models.CharField(max_length=200)
    operation = models.CharField(max_length=20, default="chat")
    feature = models.CharField(max_length=30, default="api")
    status = models.CharField(max_length=20, choices=CallStatus.choices, default=CallStatus.OK)
    calls = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    reasoning_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=18, decimal_places=9, default=0)
    estimated_cost = models.DecimalField(
        max_digits=18, decimal_places=9, default=0
    )  # the part of `cost` priced from locally counted tokens
    provider_calls = models.PositiveIntegerField(default=0)
    estimated_calls = models.PositiveIntegerField(default=0)
    local_calls = models.PositiveIntegerField(default=0)
    unpriced_calls = models.PositiveIntegerField(default=0)
    ttft_ms_sum = models.FloatField(default=0)
    ttft_count = models.PositiveIntegerField(default=0)
    gen_output_tokens = models.BigIntegerField(default=0)  # output of calls with a tokens/s
    gen_ms = models.FloatField(default=0)  # their time from first token to the end
    duration_ms_sum = models.FloatField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "day",
                    "user",
                    "team",
                    "credential",
                    "preset",
                    "model",
                    "operation",
                    "feature",
                    "status",
                ],
                name="billing_dailyusage_unique",
                nulls_distinct=False,
            )
        ]
        indexes = [models.Index(fields=["team", "day"]), models.Index(fields=["user", "day"])]

    def __str__(self) -> str:
        return f"{self.day} {self.model}: {self.calls} calls"


class PriceOverride(models.Model):
    """One version of an admin's price for a model, used instead of genai-prices (or where it
    has none) from `effective_from` until the model's next version starts.

    A history, never edited in place: a version that is in effect (or was) never changes — a new
    price is a new version, and ending an override is a version with `ends` set (genai-prices
    again from then on). Only a version scheduled for later may be edited or deleted. A call is
    priced by the version in effect when it started, and every usage row keeps a snapshot of the
    price it was charged, so old rows never change."""

    provider_id = models.CharField(
        max_length=40, help_text="genai-prices provider id, or a preset key for unpriced hosts"
    )
    model = models.CharField(max_length=200)
    effective_from = models.DateTimeField(
        default=timezone.now,
        help_text="When this price starts to apply (to calls started from then on).",
    )
    ends = models.BooleanField(
        "ends the override",
        default=False,
        help_text="From this time on the model is priced by genai-prices again (no prices).",
    )
    input_per_mtok = models.DecimalField(
        "Input $ / 1M tokens", max_digits=12, decimal_places=6, null=True, blank=True
    )
    output_per_mtok = models.DecimalField(
        "Output $ / 1M tokens", max_digits=12, decimal_places=6, null=True, blank=True
    )
    # Prompt-cache prices; empty: cached prompt tokens cost the input price.
    cached_input_per_mtok = models.DecimalField(
        "Cached input $ / 1M tokens",
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Prompt tokens read from the provider's cache. Empty: the input price.",
    )
    cache_write_per_mtok = models.DecimalField(
        "Cache write $ / 1M tokens",
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Prompt tokens written to the cache (Anthropic). Empty: the input price.",
    )
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    PRICE_FIELDS = (
        "input_per_mtok",
        "output_per_mtok",
        "cached_input_per_mtok",
        "cache_write_per_mtok",
    )

    class Meta:
        ordering = ["provider_id", "model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider_id", "model", "effective_from"],
                name="billing_priceoverride_version",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(ends=True)
                    & models.Q(input_per_mtok__isnull=True)
                    & models.Q(output_per_mtok__isnull=True)
                    & models.Q(cached_input_per_mtok__isnull=True)
                    & models.Q(cache_write_per_mtok__isnull=True)
                )
                | (
                    # (NULL >= 0 is NULL, which a CHECK lets through: say "not null".)
                    models.Q(ends=False)
                    & models.Q(input_per_mtok__isnull=False, input_per_mtok__gte=0)
                    & models.Q(output_per_mtok__isnull=False, output_per_mtok__gte=0)
                    & (
                        models.Q(cached_input_per_mtok__isnull=True)
                        | models.Q(cached_input_per_mtok__gte=0)
                    )
                    & (
                        models.Q(cache_write_per_mtok__isnull=True)
                        | models.Q(cache_write_per_mtok__gte=0)
                    )
                ),
                name="billing_priceoverride_prices",
                violation_error_message="A price needs input and output prices, none negative; "
                "an end of an override has no prices.",
            ),
        ]

    def __str__(self) -> str:
        when = f"{self.effective_from:%Y-%m-%d %H:%M} UTC" if self.effective_from else "now"
        if self.ends:
            return f"{self.provider_id}/{self.model}: genai-prices again from {when}"
        return (
            f"{self.provider_id}/{self.model}: ${self.input_per_mtok}/${self.output_per_mtok} "
            f"per 1M from {when}"
        )

    def save(self, *args, **kwargs):
        if self.pk is not None:
            stored = PriceOverride.objects.filter(pk=self.pk).values_list(
                "effective_from", flat=True
            )
            if stored and stored[0] <= timezone.now():
                raise PriceOverrideLocked(
                    "This price is in effect: calls were (or may have been) priced by it, so it "
                    "never changes. Add a new version instead."
                )
        super().save(*args, **kwargs)
        _forget_overrides()

    def delete(self, *args, **kwargs):
        if (
            self.pk is not None
            and PriceOverride.objects.filter(
                pk=self.pk, effective_from__lte=timezone.now()
            ).exists()
        ):
            raise PriceOverrideLocked(
                "This price is in effect and stays in the history; end the override instead "
                "(a version that returns the model to genai-prices)."
            )
        result = super().delete(*args, **kwargs)
        _forget_overrides()
        return result

    def in_effect_since(self, now=None) -> bool:
        """True once the version has started: from then on it never changes."""
        return self.effective_from <= (now or timezone.now())


class PriceOverrideLocked(Exception):
    """An edit or deletion of a price version that is already in effect."""


def _forget_overrides() -> None:
    from billing.pricing import overrides_changed

    overrides_changed()


# --- Budgets -----------------------------------------------------------------------------------------


class Period(models.TextChoices):
    DAY = "day", "Daily"
    WEEK = "week", "Weekly (from Monday)"
    MONTH = "month", "Monthly"


def default_thresholds() -> list[int]:
    return [50, 80, 100]


class Budget(Owned):
    """A spending limit on the calls that match its scope, per day, week or month in its time zone.

    Scope: an owner — a team (every call charged to it; team admins and owners manage it) or a
    user (the calls they pay for personally) — narrowed by any of: one member (`user`, team
    budgets only), one credential, one provider (preset) and one model. Thresholds alert the
    owners (once per threshold per period); `hard` refuses calls that would pass `limit`.
    The window is derived from the time in `time_zone`: nothing resets anything."""

    name = models.CharField(max_length=100, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Only this member's calls (team budgets).",
    )
    # CASCADE, not SET_NULL: a $5 cap on one key must never silently become a cap on everything.
    credential = models.ForeignKey(
        "providers.ProviderCredential",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    preset = models.CharField("provider", max_length=40, blank=True)
    model = models.CharField(max_length=200, blank=True)
    period = models.CharField(max_length=10, choices=Period.choices, default=Period.MONTH)
    time_zone = models.CharField(max_length=64, default="UTC")
    limit = models.DecimalField("limit (USD)", max_digits=14, decimal_places=4)
    hard = models.BooleanField(
        default=True, help_text="Refuse calls that would pass the limit (else alerts only)."
    )
    thresholds = ArrayField(
        models.PositiveSmallIntegerField(),
        default=default_thresholds,
        blank=True,
        size=10,
        help_text="Alert at these percentages of the limit.",
    )
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(Owned.Meta):
        ordering = ["owner_team_id", "id"]
        constraints = [
            *Owned.Meta.constraints,
            models.CheckConstraint(condition=models.Q(limit__gt=0), name="billing_budget_limit"),
            models.CheckConstraint(
                condition=models.Q(user__isnull=True) | models.Q(owner_team__isnull=False),
                name="billing_budget_member_in_team_budgets",
            ),
        ]
        indexes = [
            models.Index(fields=["owner_team", "is_active"]),
            models.Index(fields=["owner_user", "is_active"]),
        ]

    def __str__(self) -> str:
        return self.name or f"Budget {self.pk}"


class BudgetWindow(models.Model):
    """What a budget has spent in one period (`start` is that period's first instant). Created on
    the first call of the period; settled costs are added under a row lock."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="windows")
    start = models.DateTimeField()
    end = models.DateTimeField()
    spent = models.DecimalField(max_digits=18, decimal_places=9, default=0)
    calls = models.PositiveIntegerField(default=0)
    unpriced_calls = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["budget", "start"], name="billing_budgetwindow_unique")
        ]

    def __str__(self) -> str:
        return f"{self.budget_id} from {self.start:%Y-%m-%d}: ${self.spent}"


class BudgetHold(models.Model):
    """Money a call in flight has reserved in a window. Live while `expires_at` is ahead: a
    process that dies mid-call pins nothing past that."""

    window = models.ForeignKey(BudgetWindow, on_delete=models.CASCADE, related_name="+")
    reservation = models.UUIDField(db_index=True)
    amount = models.DecimalField(max_digits=18, decimal_places=9)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["window", "expires_at"])]

    def __str__(self) -> str:
        return f"${self.amount} until {self.expires_at:%H:%M:%S}"


class BudgetAlert(models.Model):
    """A threshold crossed in a period: the unique row is what makes an alert go out once."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    window_start = models.DateTimeField()
    threshold = models.PositiveSmallIntegerField()  # percent; 100 = the limit
    spent = models.DecimalField(max_digits=18, decimal_places=9)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["budget", "window_start", "threshold"], name="billing_budgetalert_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.budget_id} at {self.threshold} %"


class Notification(models.Model):
    """An in-app notification (the bell). Budget alerts are the first kind; any app to the right
    of billing may add one through `billing.notifications.notification_create`."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=40)
    title = models.CharField(max_length=200)
    body = models.CharField(max_length=1000, blank=True)
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            models.Index(
                fields=["user"],
                condition=models.Q(read_at__isnull=True),
                name="billing_notif_unread",
            ),
        ]

    def __str__(self) -> str:
        return self.title
