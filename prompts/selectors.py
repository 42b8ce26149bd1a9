"""Reads for the prompt library, scoped to the user asking.

Per-version figures come from the usage ledger: every call made with a version carries
`{"prompt_template": id, "prompt_version": id}` in its usage row's context
(`Rendered.usage_context()`), and one grouped query per template page adds them up (an expression
index on `context->>'prompt_template'` keeps it off a ledger scan; see migration 0001)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Avg, Count, Q, QuerySet, Sum
from django.db.models.fields.json import KeyTextTransform
from django.http import Http404

from accounts import access
from accounts.access import Action
from prompts.models import (
    BatchCell,
    BatchRun,
    LabelMove,
    PromptFeedback,
    PromptLabel,
    PromptTemplate,
    PromptVersion,
)

MAX_QUERY = 200


def _search(queryset: QuerySet, q: str, tag: str) -> QuerySet:
    q = (q or "").strip()[:MAX_QUERY]
    if q:
        queryset = queryset.filter(Q(name__icontains=q) | Q(tags__contains=[q.lower()]))
    tag = (tag or "").strip().lower()[:40]
    if tag:
        queryset = queryset.filter(tags__contains=[tag])
    return queryset


def templates_for_user(*, user, team=None, q: str = "", tag: str = "") -> QuerySet[PromptTemplate]:
    """What the library lists: the user's own prompts plus the current team's."""
    return _search(
        access.in_view(PromptTemplate.objects.select_related("owner_team"), user, team), q, tag
    ).order_by("-updated_at", "-id")


def templates_readable(*, user, q: str = "", tag: str = "") -> QuerySet[PromptTemplate]:
    """Every prompt the user may read, in any of their teams (the pickers in chat and the
    playground, REST)."""
    return _search(
        access.scope(PromptTemplate.objects.select_related("owner_team"), user), q, tag
    ).order_by("-updated_at", "-id")


def template_for_user(*, user, pk, action: Action = Action.READ) -> PromptTemplate:
    return access.get_for(user, PromptTemplate.objects.select_related("owner_team"), pk, action)


def tags_in_view(*, user, team=None) -> list[str]:
    """Tags of the listed prompts, for the tag filter (most used first)."""
    counts: dict[str, int] = {}
    for tags in access.in_view(PromptTemplate.objects.all(), user, team).values_list(
        "tags", flat=True
    )[:2000]:
        for tag in tags:
            counts[tag] = counts.get(tag, 0) + 1
    return sorted(counts, key=lambda tag: (-counts[tag], tag))[:30]


def _versions():
    return PromptVersion.objects.select_related(
        "template", "template__owner_team", "credential", "collection", "created_by"
    )


def version_for_user(*, user, pk, action: Action = Action.READ) -> PromptVersion:
    """A version by its id, through its template's rules (404 outside the tenant)."""
    try:
        version = _versions().filter(pk=pk).first()
    except (ValueError, TypeError):
        raise Http404 from None
    if version is None:
        raise Http404
    access.require(user, version.template, action)
    return version


def version_of(*, template: PromptTemplate, number) -> PromptVersion:
    """Version `number` of a template the caller has already checked."""
    try:
        version = _versions().filter(template=template, number=int(number)).first()
    except (ValueError, TypeError, OverflowError):
        raise Http404 from None
    if version is None:
        raise Http404
    version.template = template
    return version


def version_resolve(*, template: PromptTemplate, ref) -> PromptVersion:
    """A version by number (`3`, `v3`) or by label (`production`); 404 when there is none."""
    ref = str(ref or "").strip()
    if not ref:
        ref = "latest"
    digits = ref[1:] if ref[:1] in {"v", "V"} else ref
    if digits.isdigit():
        return version_of(template=template, number=digits)
    label = template.labels.select_related("version").filter(name=ref.lower()[:40]).first()
    if label is None:
        raise Http404
    return version_of(template=template, number=label.version.number)


def versions_of(*, template: PromptTemplate) -> QuerySet[PromptVersion]:
    return template.versions.select_related("created_by").order_by("-number")


def labels_of(*, template: PromptTemplate) -> QuerySet[PromptLabel]:
    return template.labels.select_related("version", "updated_by").order_by("name")


def label_history(*, template: PromptTemplate, limit: int = 20) -> QuerySet[LabelMove]:
    return LabelMove.objects.filter(template=template).select_related("moved_by")[:limit]


@dataclass
class VersionStats:
    calls: int = 0
    errors: int = 0
    cost: Decimal = Decimal(0)
    unpriced: int = 0
    ratings: dict[str, tuple[int, float]] = field(default_factory=dict)  # source → (n, mean)

    @property
    def rating_count(self) -> int:
        return sum(n for n, _ in self.ratings.values())

    @property
    def rating_mean(self) -> float | None:
        total = sum(n * mean for n, mean in self.ratings.values())
        count = self.rating_count
        return total / count if count else None


def version_stats(*, template: PromptTemplate) -> dict[int, VersionStats]:
    """Calls, errors, cost and ratings per version number of a template the caller may read.
    Two grouped queries (ledger, feedback), whatever the number of versions."""
    from billing.models import UsageRecord

    numbers = dict(template.versions.values_list("pk", "number"))
    stats = {number: VersionStats() for number in numbers.values()}
    rows = (
        UsageRecord.objects.annotate(
            prompt_template=KeyTextTransform("prompt_template", "context"),
            prompt_version=KeyTextTransform("prompt_version", "context"),
        )
        .filter(prompt_template=str(template.pk))
        .order_by()
        .values("prompt_version")
        .annotate(
            calls=Count("id"),
            errors=Count("id", filter=Q(status="error")),
            total_cost=Sum("cost"),
            unpriced=Count("id", filter=Q(cost__isnull=True)),
        )
    )
    for row in rows:
        try:
            number = numbers.get(int(row["prompt_version"]))
        except (TypeError, ValueError):
            continue
        if number is None:
            continue
        entry = stats[number]
        entry.calls, entry.errors = row["calls"], row["errors"]
        entry.cost, entry.unpriced = row["total_cost"] or Decimal(0), row["unpriced"]
    feedback = (
        PromptFeedback.objects.filter(version__template=template)
        .order_by()
        .values("version_id", "source")
        .annotate(n=Count("id"), mean=Avg("score"))
    )
    for row in feedback:
        number = numbers.get(row["version_id"])
        if number is not None:
            stats[number].ratings[row["source"]] = (row["n"], row["mean"])
    return stats


# --- Batches -----------------------------------------------------------------------------------


def batches_of(*, user, template: PromptTemplate) -> QuerySet[BatchRun]:
    access.require(user, template, Action.READ)
    return template.batches.select_related("version", "created_by").order_by("-created_at", "-id")


def batch_for_user(*, user, pk, action: Action = Action.READ) -> BatchRun:
    return access.get_for(
        user,
        BatchRun.objects.select_related("template", "version", "owner_team", "created_by"),
        pk,
        action,
    )


@dataclass(frozen=True)
class BatchProgress:
    total: int
    counts: dict[str, int]
    cost: Decimal  # what the finished cells cost
    unpriced: int
    spent: Decimal  # the ledger's total for the batch (interrupted attempts included)
    spent_calls: int

    @property
    def finished(self) -> int:
        return sum(self.counts.get(s, 0) for s in ("done", "error", "cancelled"))

    @property
    def percent(self) -> int:
        return int(100 * self.finished / self.total) if self.total else 100


def batch_progress(*, batch: BatchRun) -> BatchProgress:
    """Counts per cell status and money, in two grouped queries (cells, ledger)."""
    from billing.models import UsageRecord

    counts = {}
    cost, unpriced = Decimal(0), 0
    for row in (
        BatchCell.objects.filter(batch=batch)
        .order_by()
        .values("status")
        .annotate(
            n=Count("id"),
            total_cost=Sum("cost"),
            unpriced=Count("id", filter=Q(status="done", cost__isnull=True)),
        )
    ):
        counts[row["status"]] = row["n"]
        cost += row["total_cost"] or 0
        unpriced += row["unpriced"]
    spent = (
        UsageRecord.objects.annotate(
            prompt_template=KeyTextTransform("prompt_template", "context"),
            prompt_batch=KeyTextTransform("prompt_batch", "context"),
        )
        .filter(prompt_template=str(batch.template_id), prompt_batch=str(batch.pk))
        .aggregate(total=Sum("cost"), calls=Count("id"))
    )
    return BatchProgress(
        total=batch.cell_count,
        counts=counts,
        cost=cost,
        unpriced=unpriced,
        spent=spent["total"] or Decimal(0),
        spent_calls=spent["calls"],
    )
