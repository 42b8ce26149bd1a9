"""Provider credentials (encrypted keys) and the model catalogue cached per credential."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.text import slugify
from encrypted_model_fields.fields import EncryptedCharField

from accounts.ownership import Owned
from providers import presets


class ProviderCredential(Owned):
    name = models.CharField(max_length=100, help_text="e.g. “Work OpenAI”")
    # The credential's name in gateway model names (`<slug>/<model id>`): unique per owner,
    # made from the name when the credential is created (credential_slug_for).
    slug = models.SlugField(max_length=60, blank=True)
    preset = models.CharField(max_length=40, choices=presets.CHOICES)
    # Write-only everywhere: forms, serializers and the admin never render it (see keys.py).
    api_key = EncryptedCharField(max_length=500, blank=True)
    base_url = models.CharField(
        max_length=500, blank=True, help_text="Leave empty for the provider's default."
    )
    organization = models.CharField(max_length=200, blank=True)
    is_local = models.BooleanField(
        default=False, help_text="Runs on your own hardware: calls cost $0 and are labelled local."
    )
    is_active = models.BooleanField(default=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    models_fetched_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True, blank=True)
    last_test_message = models.CharField(max_length=300, blank=True)
    last_tested_at = models.DateTimeField(null=True, blank=True)

    class Meta(Owned.Meta):
        ordering = ["name", "id"]
        indexes = [
            models.Index(fields=["owner_user", "name"]),
            models.Index(fields=["owner_team", "name"]),
        ]
        constraints = [
            *Owned.Meta.constraints,
            models.UniqueConstraint(
                fields=["owner_user", "slug"],
                condition=models.Q(owner_user__isnull=False) & ~models.Q(slug=""),
                name="providers_credential_user_slug",
            ),
            models.UniqueConstraint(
                fields=["owner_team", "slug"],
                condition=models.Q(owner_team__isnull=False) & ~models.Q(slug=""),
                name="providers_credential_team_slug",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = credential_slug_for(self)
        super().save(*args, **kwargs)

    @property
    def preset_row(self) -> presets.Preset:
        return presets.get(self.preset)

    @property
    def effective_base_url(self) -> str:
        return self.base_url or self.preset_row.default_base_url

    @property
    def has_key(self) -> bool:
        return bool(self.api_key)

    @property
    def display_label(self) -> str:
        """The credential as pickers name it: its own name, and the provider's when the name
        doesn't say it ("Work key · OpenAI", "Work OpenAI", "Echo (local)") — never twice."""
        provider = self.preset_row.short_label
        if provider.lower() in self.name.lower():
            return self.name
        return f"{self.name} · {provider}"


def credential_slug_for(credential: ProviderCredential) -> str:
    """A slug for the credential's name, unique among its owner's credentials ("work-openai",
    then "work-openai-2"…): what gateway model names start with."""
    base = (slugify(credential.name) or slugify(credential.preset) or "credential")[:50]
    owner = (
        {"owner_team_id": credential.owner_team_id}
        if credential.owner_team_id
        else {"owner_user_id": credential.owner_user_id}
    )
    taken = set(
        ProviderCredential.objects.filter(slug__startswith=base, **owner)
        .exclude(pk=credential.pk)
        .values_list("slug", flat=True)
    )
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    return slug


class ModelKind(models.TextChoices):
    CHAT = "chat", "Chat"
    EMBEDDING = "embedding", "Embedding"


class ProviderModel(models.Model):
    """A model a credential offers, as last listed from the provider (refreshable)."""

    credential = models.ForeignKey(
        ProviderCredential, on_delete=models.CASCADE, related_name="models"
    )
    model_id = models.CharField(max_length=200)
    label = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=20, choices=ModelKind.choices, default=ModelKind.CHAT)
    context_window = models.PositiveIntegerField(null=True, blank=True)
    family = models.CharField(max_length=100, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    fetched_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["credential", "kind", "model_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["credential", "model_id"], name="providers_model_unique"
            )
        ]

    def __str__(self) -> str:
        return self.model_id


class CallSlot(models.Model):
    """One of a user's places for a model call in flight (providers.concurrency): the user's cap
    is the number of rows with `n` below it. Taken while `taken_until` is in the future; a call
    renews it while it runs and clears it when it ends, so the slot of a process that died
    frees itself."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    n = models.PositiveSmallIntegerField()
    taken_until = models.DateTimeField(null=True, blank=True)
    holder = models.CharField(max_length=32, blank=True)  # the call that holds it
    started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "n"], name="providers_callslot_unique")
        ]

    def __str__(self) -> str:
        return f"call slot {self.n} of user {self.user_id}"


class EgressAllowEntry(models.Model):
    """A `host:port` a superuser let through the egress guard although it is internal (a GPU
    box on the LAN). Adds to WORKBENCH_EGRESS_ALLOW, which stays the base and can't be removed
    here."""

    host_port = models.CharField(max_length=300, unique=True)
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["host_port"]

    def __str__(self) -> str:
        return self.host_port


class ModelPreference(models.Model):
    """One user's relation to one model of one credential: a favourite (listed first in the
    pickers) and when they last picked it (new chats start on the last used model when their
    owner has no default). No row: neither."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    credential = models.ForeignKey(
        ProviderCredential, on_delete=models.CASCADE, related_name="preferences"
    )
    model = models.CharField(max_length=200)
    favourite = models.BooleanField(default=False)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "credential", "model"], name="providers_preference_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.model} on {self.credential_id}"


class DefaultModel(Owned):
    """The model new chats of its owner start on: a user's for their personal chats (they set
    it), a team's for the team's chats (its admins set it). It must be one of the owner's own
    credentials — the ones its chats may run on."""

    credential = models.ForeignKey(ProviderCredential, on_delete=models.CASCADE, related_name="+")
    model = models.CharField(max_length=200)
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta(Owned.Meta):
        constraints = [
            *Owned.Meta.constraints,
            models.UniqueConstraint(fields=["owner_user"], name="providers_default_one_per_user"),
            models.UniqueConstraint(fields=["owner_team"], name="providers_default_one_per_team"),
        ]

    def __str__(self) -> str:
        return f"default {self.model} for {self.owner_label}"


class ModelAlias(Owned):
    """A short model name for the gateway (`"fast"` → credential + model id), personal or a
    team's. Resolved for the caller: their own aliases first, then their teams'; the gate
    still checks that the caller may `use` the credential."""

    name = models.CharField(max_length=100)
    credential = models.ForeignKey(
        ProviderCredential, on_delete=models.CASCADE, related_name="aliases"
    )
    model_id = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta(Owned.Meta):
        ordering = ["name", "id"]
        verbose_name_plural = "model aliases"
        constraints = [
            *Owned.Meta.constraints,
            models.UniqueConstraint(
                fields=["owner_user", "name"],
                condition=models.Q(owner_user__isnull=False),
                name="providers_alias_user_name",
            ),
            models.UniqueConstraint(
                fields=["owner_team", "name"],
                condition=models.Q(owner_team__isnull=False),
                name="providers_alias_team_name",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RatingScale(models.TextChoices):
    THUMBS = "thumbs", "thumbs up/down"
    STARS = "stars", "1–5 stars"


class Rating(models.Model):
    """One user's judgement of one model output: a chat reply (`message`); the playground's
    answers and evaluation results are meant to point here too (one more nullable link each), so
    a model's ratings add up across the product (`providers.ratings.ratings_by_model`). What
    produced the output is copied (preset, model, credential) so summaries need no joins."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(
        "chats.Message", null=True, blank=True, on_delete=models.CASCADE, related_name="ratings"
    )
    scale = models.CharField(max_length=10, choices=RatingScale.choices, default=RatingScale.THUMBS)
    value = models.SmallIntegerField()  # thumbs: -1 or 1; stars: 1–5
    note = models.CharField(max_length=1000, blank=True)
    preset = models.CharField(max_length=40, blank=True)
    model = models.CharField(max_length=200, blank=True)
    credential = models.ForeignKey(
        ProviderCredential, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "message"],
                condition=models.Q(message__isnull=False),
                name="providers_rating_one_per_message",
            ),
            models.CheckConstraint(
                condition=models.Q(message__isnull=False), name="providers_rating_has_subject"
            ),
            models.CheckConstraint(
                condition=models.Q(scale="thumbs", value__in=[-1, 1])
                | models.Q(scale="stars", value__gte=1, value__lte=5),
                name="providers_rating_value_in_scale",
            ),
        ]
        indexes = [models.Index(fields=["preset", "model"])]

    def __str__(self) -> str:
        return f"{self.user_id} rated {self.model}: {self.value} ({self.scale})"
