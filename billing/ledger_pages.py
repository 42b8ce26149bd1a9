"""The ledger behind the dashboard's figures, a page at a time (selectors): the rows of a usage
query, newest first, keyset-paged (no OFFSET, no COUNT over the ledger) over the ledger's
(team | user, created_at) indexes, each linked to where it came from when the user may read it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.apps import apps
from django.db.models import Q

from accounts import access
from billing.models import UsageRecord
from billing.usage import UsageQuery, day_bounds, narrow

PAGE_SIZE = 50

# --- The ledger, a page at a time -------------------------------------------------------------------

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _cursor(record: UsageRecord) -> str:
    return f"{(record.created_at - EPOCH) // timedelta(microseconds=1)}-{record.pk}"


def parse_cursor(value: str) -> tuple[datetime, int] | None:
    """`<microseconds since 1970>-<id>` (what `next_cursor` gives) → (created_at, id); None for
    anything else."""
    micros, _, pk = (value or "").partition("-")
    if not (micros.isascii() and micros.isdigit() and len(micros) <= 18):
        return None
    pk = access.parse_id(pk)
    if pk is None:
        return None
    try:
        return EPOCH + timedelta(microseconds=int(micros)), pk
    except OverflowError:  # past the year 9999
        return None


@dataclass(frozen=True)
class CallRow:
    record: UsageRecord
    link: str | None  # the conversation or playground comparison it belongs to, if readable
    link_label: str


@dataclass(frozen=True)
class CallsPage:
    rows: list[CallRow]
    next_cursor: str | None


def usage_calls(*, q: UsageQuery, before: tuple[datetime, int] | None = None) -> CallsPage:
    """Ledger rows of the period and filters, newest first, PAGE_SIZE at a time after `before`
    (a keyset cursor: no OFFSET, no COUNT over the ledger)."""
    start, end = day_bounds(q)
    rows = narrow(UsageRecord.objects.filter(created_at__gte=start, created_at__lt=end), q)
    if before is not None:
        at, pk = before
        rows = rows.filter(Q(created_at__lt=at) | Q(created_at=at, pk__lt=pk))
    page = list(rows.select_related("user").order_by("-created_at", "-id")[: PAGE_SIZE + 1])
    more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    links = _links(user=q.user, records=page)
    return CallsPage(
        [CallRow(r, *links.get(r.pk, (None, ""))) for r in page],
        _cursor(page[-1]) if more else None,
    )


def _links(*, user, records: list[UsageRecord]) -> dict[int, tuple[str, str]]:
    """Where each call came from, when the user may read it: a chat's conversation or a
    playground run's comparison (one scoped query per kind; models found through the app
    registry — billing imports nothing to its right)."""
    from django.urls import reverse

    conversations = {
        r.pk: r.context.get("conversation")
        for r in records
        if isinstance(r.context, dict) and access.parse_id(r.context.get("conversation"))
    }
    runs = {
        r.pk: r.context.get("run")
        for r in records
        if isinstance(r.context, dict) and access.parse_id(r.context.get("run"))
    }
    links: dict[int, tuple[str, str]] = {}
    if conversations:
        model = apps.get_model("chats", "Conversation")
        readable = set(
            access.scope(
                model.objects.filter(pk__in=set(conversations.values())), user
            ).values_list("pk", flat=True)
        )
        for pk, target in conversations.items():
            if target in readable:
                links[pk] = (reverse("chats:detail", args=[target]), "Conversation")
    if runs:
        model = apps.get_model("playground", "Run")
        comparison_of = dict(
            access.scope(model.objects.filter(pk__in=set(runs.values())), user)
            .exclude(comparison__isnull=True)
            .values_list("pk", "comparison_id")
        )
        for pk, target in runs.items():
            if target in comparison_of:
                links[pk] = (
                    reverse("playground:detail", args=[comparison_of[target]]),
                    "Playground run",
                )
    return links
