"""The prompt library: templates, their immutable versions, labels that point at versions, the
feedback each version gets, and batch runs (a version × rows of variables × models).

A template (owned by a user or a team) holds what isn't versioned — name, description, tags.
Everything a model receives is versioned: the system and user parts with `{{variable}}`
placeholders, the typed variables, the preferred model and parameters, the linked collection.
Every save makes a new `PromptVersion`; versions are never changed afterwards (`save()` refuses
an update), so a label, a usage row or a batch that names a version always means the same text.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone

from accounts.ownership import Owned


class PromptTemplate(Owned):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    tags = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # The newest version's number (0 before the first save). Saves compare it with the version
    # the editor started from, so two people editing at once can't silently overwrite each other.
    latest_number = models.PositiveIntegerField(default=0)

    class Meta(Owned.Meta):
        ordering = ["-updated_at", "-id"]
        indexes = [
            models.Index(fields=["owner_user", "-updated_at"]),
            models.Index(fields=["owner_team", "-updated_at"]),
            GinIndex(fields=["tags"], name="prompts_template_tags"),
            # The list's and the pickers' search: `name__icontains` is UPPER(name) LIKE …
            GinIndex(
                OpClass(Upper("name"), name="gin_trgm_ops"), name="prompts_template_name_trgm"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class VariableType(models.TextChoices):
    TEXT = "text", "Text"
    LONG_TEXT = "long_text", "Long text"
    NUMBER = "number", "Number"
    CHOICE = "choice", "Choice"


class PromptVersion(models.Model):
    """One saved state of a template. Immutable once written."""

    template = models.ForeignKey(PromptTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    system_text = models.TextField(blank=True)
    user_text = models.TextField(blank=True)
    # [{"name", "type", "description", "required", "default", "example", "choices"}], in the
    # order the form shows them (prompts.variables.Variable is the one reader).
    variables = models.JSONField(default=list, blank=True)
    # Preferred model: a credential of the template's owner and a model id; parameters
    # (temperature, top_p, max_tokens, seed).
    credential = models.ForeignKey(
        "providers.ProviderCredential",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    model = models.CharField(max_length=200, blank=True)
    params = models.JSONField(default=dict, blank=True)
    # Retrieval: a collection whose best chunks go in front of the user part (rag.context format)
    # when the version is used; `top_k` chunks.
    collection = models.ForeignKey(
        "rag.Collection", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    top_k = models.PositiveSmallIntegerField(default=5)
    change_note = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="prompts_version_number")
        ]

    def __str__(self) -> str:
        return f"{self.template_id} v{self.number}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.pop("_allow_update", False):
            raise ValueError("Prompt versions are immutable: save a new version instead.")
        super().save(*args, **kwargs)


class PromptLabel(models.Model):
    """A name (`production`, `latest`, `staging`…) pointing at one version of its template.
    `latest` follows every save; rolling back is moving a label to an older version."""

    template = models.ForeignKey(PromptTemplate, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=40)
    version = models.ForeignKey(PromptVersion, on_delete=models.CASCADE, related_name="labels")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["template", "name"], name="prompts_label_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} → v{self.version.number}"


class LabelMove(models.Model):
    """History of a label: who moved it from which version to which (what a rollback undoes)."""

    template = models.ForeignKey(PromptTemplate, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=40)
    from_number = models.PositiveIntegerField(null=True, blank=True)  # None: label created
    to_number = models.PositiveIntegerField(null=True, blank=True)  # None: label deleted
    moved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    moved_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-moved_at", "-id"]
        indexes = [models.Index(fields=["template", "-moved_at"])]

    def __str__(self) -> str:
        return f"{self.name}: v{self.from_number} → v{self.to_number}"


class FeedbackSource(models.TextChoices):
    CHAT = "chat", "Chat"
    PLAYGROUND = "playground", "Playground"
    EVALUATION = "evaluation", "Evaluation"
    API = "api", "API"


class PromptFeedback(models.Model):
    """A rating or score of something a version produced, recorded by the feature where it was
    given (chat, playground; evaluations later) through `prompts.services.feedback_record`.
    `score` is normalised to 0–1 (thumbs: 0 or 1; five stars: (n-1)/4; an evaluation's score
    as is); `key` says what was rated, so rating it again replaces the earlier rating."""

    version = models.ForeignKey(PromptVersion, on_delete=models.CASCADE, related_name="feedback")
    source = models.CharField(max_length=20, choices=FeedbackSource.choices)
    key = models.CharField(max_length=100)  # e.g. "message:123", "answer:45", "run:6/case:7"
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    score = models.FloatField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["version", "source", "key", "user"],
                name="prompts_feedback_once",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=models.Q(score__gte=0, score__lte=1), name="prompts_feedback_score"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.key}: {self.score:.2f}"


# --- Batch runs ----------------------------------------------------------------------------------


class BatchStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


class BatchRun(Owned):
    """A version × rows of variables × models, run in the background by task workers.

    Cells are claimed one at a time with a lease (prompts.batch_runner), so any number of
    workers — or a worker started after one was killed — share the work without running a cell
    twice or losing one."""

    template = models.ForeignKey(PromptTemplate, on_delete=models.CASCADE, related_name="batches")
    version = models.ForeignKey(PromptVersion, on_delete=models.CASCADE, related_name="batches")
    title = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The variable names, in column order (the CSV header).
    columns = models.JSONField(default=list)
    # [{"credential": id, "credential_name", "preset", "model"}], in column order of the matrix.
    targets = models.JSONField(default=list)
    params = models.JSONField(default=dict, blank=True)  # overrides the version's parameters
    status = models.CharField(
        max_length=10, choices=BatchStatus.choices, default=BatchStatus.QUEUED
    )
    cancel_requested = models.BooleanField(default=False)
    row_count = models.PositiveIntegerField(default=0)
    cell_count = models.PositiveIntegerField(default=0)
    estimate = models.DecimalField(max_digits=18, decimal_places=9, null=True, blank=True)
    estimate_unpriced = models.PositiveIntegerField(default=0)  # cells with no known price
    # The newest sign of life of any worker driving this batch (prompts.batch_runner).
    driven_until = models.DateTimeField(null=True, blank=True)
    # When the one scheduled follow-up task of this batch runs (it carries on if every driver
    # died); None once the batch has finished.
    next_check_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta(Owned.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["template", "-created_at"]),
            models.Index(fields=["owner_user", "-created_at"]),
            models.Index(fields=["owner_team", "-created_at"]),
        ]

    def __str__(self) -> str:
        return self.title or f"Batch {self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in {BatchStatus.QUEUED, BatchStatus.RUNNING}


class BatchRow(models.Model):
    batch = models.ForeignKey(BatchRun, on_delete=models.CASCADE, related_name="rows")
    index = models.PositiveIntegerField()
    values = models.JSONField(default=dict)

    class Meta:
        ordering = ["index"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "index"], name="prompts_batchrow_index")
        ]

    def __str__(self) -> str:
        return f"Row {self.index + 1}"


class CellStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    ERROR = "error", "Error"
    CANCELLED = "cancelled", "Cancelled"


CELL_FINAL = (CellStatus.DONE, CellStatus.ERROR, CellStatus.CANCELLED)


class BatchCell(models.Model):
    """One row × one model. Written by whoever holds its lease, once, when the call ends."""

    batch = models.ForeignKey(BatchRun, on_delete=models.CASCADE, related_name="cells")
    row_index = models.PositiveIntegerField()
    target_index = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=10, choices=CellStatus.choices, default=CellStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_holder = models.UUIDField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    output = models.TextField(blank=True)
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    tokens_estimated = models.BooleanField(default=False)
    cost = models.DecimalField(max_digits=18, decimal_places=9, null=True, blank=True)
    cost_source = models.CharField(max_length=20, blank=True)
    ttft_ms = models.FloatField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    usage = models.ForeignKey(
        "billing.UsageRecord", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["row_index", "target_index"]
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "row_index", "target_index"], name="prompts_batchcell_place"
            )
        ]
        indexes = [models.Index(fields=["batch", "status"], name="prompts_batchcell_status")]

    def __str__(self) -> str:
        return f"Row {self.row_index + 1} × model {self.target_index + 1}: {self.status}"
