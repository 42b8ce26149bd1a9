"""Comparisons (one input, 2–8 slots), their runs and answers, and the blind arena.

A comparison is owned by a user or a team. Running it makes a `Run` holding one `Answer` per
slot, with everything the answer was made with copied onto it (model, parameters, system
prompt, messages), so later edits of the comparison never rewrite history. An arena battle is a
run of two answers with no comparison, plus the vote."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.ownership import Owned

MIN_SLOTS, MAX_SLOTS = 2, 8


class Comparison(Owned):
    title = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    system_prompt = models.TextField(blank=True)
    # The shared input: earlier turns ({"role", "content"}, oldest first) and the prompt (the
    # last user turn, which the page edits on its own).
    history = models.JSONField(default=list, blank=True)
    prompt = models.TextField(blank=True)
    # "Compare this conversation": where the history came from.
    source_conversation = models.ForeignKey(
        "chats.Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A prompt from the library filled in for every slot (playground.prompting): the version,
    # the values given and whether its system part became the system prompt. A run counts for
    # the version only while the prompt is still exactly what the version renders with them.
    prompt_version = models.ForeignKey(
        "prompts.PromptVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    prompt_values = models.JSONField(default=dict, blank=True)
    prompt_with_system = models.BooleanField(default=False)
    run_count = models.PositiveIntegerField(default=0)
    # "RAG quality": the model that scores each answer of a grounded run (empty: no judging).
    judge_credential = models.ForeignKey(
        "providers.ProviderCredential",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    judge_model = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta(Owned.Meta):
        ordering = ["-updated_at", "-id"]
        indexes = [
            models.Index(fields=["owner_user", "-updated_at"]),
            models.Index(fields=["owner_team", "-updated_at"]),
        ]

    def __str__(self) -> str:
        return self.display_title

    @property
    def display_title(self) -> str:
        return self.title or "Untitled comparison"


class ComparisonCollection(models.Model):
    """A collection every slot's run is grounded in (the shared context; playground.grounding)."""

    comparison = models.ForeignKey(
        Comparison, on_delete=models.CASCADE, related_name="collection_links"
    )
    collection = models.ForeignKey("rag.Collection", on_delete=models.CASCADE, related_name="+")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["comparison", "collection"], name="playground_collection_once"
            )
        ]

    def __str__(self) -> str:
        return f"collection {self.collection_id} of comparison {self.comparison_id}"


class Slot(models.Model):
    """One model of a comparison, with its own parameters and (optionally) system prompt."""

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="slots")
    position = models.PositiveSmallIntegerField(default=0)
    credential = models.ForeignKey(
        "providers.ProviderCredential",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    model = models.CharField(max_length=200, blank=True)
    params = models.JSONField(default=dict, blank=True)  # temperature, top_p, max_tokens, seed
    system_prompt = models.TextField(blank=True)  # empty: the comparison's

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"{self.model or 'no model'} (slot {self.position + 1})"


class RunKind(models.TextChoices):
    COMPARE = "compare", "Comparison"
    ARENA = "arena", "Arena battle"


class Run(Owned):
    """One send of the input to every slot. Wall time is the slowest answer's, not the sum."""

    comparison = models.ForeignKey(
        Comparison, null=True, blank=True, on_delete=models.CASCADE, related_name="runs"
    )
    kind = models.CharField(max_length=10, choices=RunKind.choices, default=RunKind.COMPARE)
    number = models.PositiveIntegerField(default=1)  # per comparison
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    system_prompt = models.TextField(blank=True)
    history = models.JSONField(default=list, blank=True)
    prompt = models.TextField(blank=True)
    # The prompt-library version this run sent (its calls, cost and ratings count for it).
    prompt_version = models.ForeignKey(
        "prompts.PromptVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    estimate = models.DecimalField(max_digits=18, decimal_places=9, null=True, blank=True)
    cost_total = models.DecimalField(max_digits=18, decimal_places=9, default=0)
    has_unpriced = models.BooleanField(default=False)
    winner = models.ForeignKey(
        "Answer", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    wall_ms = models.FloatField(null=True, blank=True)
    # The shared context, retrieved once for the run's input (chats.grounding's record:
    # context, numbered sources, notices); None: the comparison had no collections.
    retrieval = models.JSONField(null=True, blank=True)
    # The judge the run was started with (copied, like everything a run is made with).
    judge_credential = models.ForeignKey(
        "providers.ProviderCredential",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    judge_model = models.CharField(max_length=200, blank=True)

    class Meta(Owned.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["comparison", "-created_at"])]

    def __str__(self) -> str:
        return f"Run {self.number}"

    @property
    def is_running(self) -> bool:
        return self.finished_at is None


class AnswerStatus(models.TextChoices):
    COMPLETE = "complete", "Complete"
    STREAMING = "streaming", "Streaming"
    STOPPED = "stopped", "Stopped"
    INTERRUPTED = "interrupted", "Interrupted"
    ERROR = "error", "Error"


class Answer(models.Model):
    """One slot's answer in a run, with what made it and what it cost."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="answers")
    position = models.PositiveSmallIntegerField(default=0)  # arena: 0 is A (left), 1 is B
    slot = models.ForeignKey(
        Slot, null=True, blank=True, on_delete=models.SET_NULL, related_name="answers"
    )
    credential = models.ForeignKey(
        "providers.ProviderCredential",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    credential_name = models.CharField(max_length=100, blank=True)
    preset = models.CharField(max_length=40, blank=True)
    model = models.CharField(max_length=200)
    params = models.JSONField(default=dict, blank=True)
    system_prompt = models.TextField(blank=True)  # what this answer was sent
    text = models.TextField(blank=True)
    text_html = models.TextField(blank=True)  # rendered once, when final
    html_version = models.PositiveSmallIntegerField(default=0)
    # A reasoning model's thinking (shown collapsed) and how long it thought.
    reasoning = models.TextField(blank=True)
    reasoning_ms = models.FloatField(null=True, blank=True)
    status = models.CharField(
        max_length=12, choices=AnswerStatus.choices, default=AnswerStatus.STREAMING
    )
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    finish_reason = models.CharField(max_length=40, blank=True)
    usage = models.ForeignKey(
        "billing.UsageRecord", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    # Of those: cached prompt tokens read/written, reasoning tokens (priced as the provider does).
    cache_read_tokens = models.PositiveIntegerField(null=True, blank=True)
    cache_write_tokens = models.PositiveIntegerField(null=True, blank=True)
    reasoning_tokens = models.PositiveIntegerField(null=True, blank=True)
    tokens_estimated = models.BooleanField(default=False)
    cost = models.DecimalField(max_digits=18, decimal_places=9, null=True, blank=True)
    cost_source = models.CharField(max_length=20, blank=True)
    estimate = models.DecimalField(max_digits=18, decimal_places=9, null=True, blank=True)
    ttft_ms = models.FloatField(null=True, blank=True)
    tokens_per_second = models.FloatField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    rating = models.PositiveSmallIntegerField(null=True, blank=True)  # 1–5
    note = models.CharField(max_length=1000, blank=True)
    # "RAG quality" scores (playground.judging): {"faithfulness": {"score", "reason"},
    # "relevance": {...}, "model", "cost"} or {"error": ...}; None: not judged (yet).
    judge = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(null=True, blank=True)  # while streaming

    class Meta:
        ordering = ["position", "id"]
        indexes = [
            models.Index(
                fields=["status"],
                condition=models.Q(status="streaming"),
                name="playground_answer_streaming",
            ),
            models.Index(fields=["preset", "model"]),
        ]

    def __str__(self) -> str:
        return f"{self.model}: {self.status}"

    @property
    def is_streaming(self) -> bool:
        return self.status == AnswerStatus.STREAMING

    JUDGE_PATIENCE = timedelta(minutes=2)

    @property
    def judge_pending(self) -> bool:
        """Scores are on their way: a judged, grounded run's complete answer without a verdict
        yet — until two minutes after the run ended (then a restart lost the judging)."""
        run = self.run
        if (
            self.judge is not None
            or not run.judge_model
            or not (run.retrieval or {}).get("context")
        ):
            return False
        if self.status != AnswerStatus.COMPLETE or not self.text:
            return False
        return run.finished_at is None or timezone.now() - run.finished_at < self.JUDGE_PATIENCE

    @property
    def html(self):
        from django.utils.safestring import mark_safe

        from chats.rendering import RENDER_VERSION, render_markdown

        if self.html_version == RENDER_VERSION and (self.text_html or not self.text):
            return mark_safe(self.text_html)  # noqa: S308 - produced by render_markdown
        return render_markdown(self.text)


class ArenaPool(Owned):
    """The models a user (or a team) draws arena battles from: [{"credential": id, "model": m}]."""

    entries = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta(Owned.Meta):
        constraints = [
            *Owned.Meta.constraints,
            models.UniqueConstraint(
                fields=["owner_user"],
                condition=models.Q(owner_user__isnull=False),
                name="playground_pool_one_per_user",
            ),
            models.UniqueConstraint(
                fields=["owner_team"],
                condition=models.Q(owner_team__isnull=False),
                name="playground_pool_one_per_team",
            ),
        ]


class Vote(models.TextChoices):
    A = "a", "A is better"
    B = "b", "B is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both are bad"


class Battle(Owned):
    """Two anonymous answers to one prompt and the vote. `model_a` answered on the left (A);
    which model went left was drawn at random and is kept, so position bias can be measured."""

    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="battle")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    tag = models.CharField(max_length=60, blank=True)  # a topic, for filtering the leaderboard
    # Drawn from the pool when the battle is made; the answers are made when it starts.
    credential_a = models.ForeignKey(
        "providers.ProviderCredential",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    credential_b = models.ForeignKey(
        "providers.ProviderCredential",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    model_a = models.CharField(max_length=250)  # "<preset>:<model>" — what the leaderboard ranks
    model_b = models.CharField(max_length=250)
    started_at = models.DateTimeField(null=True, blank=True)
    vote = models.CharField(max_length=10, choices=Vote.choices, blank=True)
    voted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    voted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta(Owned.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner_user", "voted_at"]),
            models.Index(fields=["owner_team", "voted_at"]),
        ]
        constraints = [
            *Owned.Meta.constraints,
            models.CheckConstraint(
                condition=~models.Q(model_a=models.F("model_b")), name="playground_battle_no_self"
            ),
        ]

    def __str__(self) -> str:
        return f"Battle {self.pk}"

    @property
    def is_voted(self) -> bool:
        return bool(self.vote)
