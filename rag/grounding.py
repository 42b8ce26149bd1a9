"""Grounding model calls in document collections: one implementation for every feature that
attaches collections to something it owns (a conversation, a comparison) and puts what they
retrieve in front of a question (issue 14).

Attaching. A team's object takes only its team's collections (everyone who reads it reads its
sources, so nothing personal may leak into it); a personal one any collection its owner may read.
A conversation's files collection stays with its conversation. An id the actor may not read is
404, whatever the reason. Each feature names its link model and its words (`Attachments`); the
rules are these.

Retrieval (`ground`). The question is the request's last user turn. The *caller's* read access is
checked again when it runs: a collection they lost is skipped with a notice that names nothing
about it. The context (rag.context: quoted, escaped `<source>` elements behind a preamble that
says they are data, not instructions) goes in front of that turn only, never into the system
prompt. The record (`retrieval_record`: the context text, the numbered sources, notices) is what
the feature stores and shows — exactly what the model received.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import QuerySet
from django.http import Http404

from accounts import access
from accounts.access import Action
from providers.adapters.base import CompletionRequest
from rag.models import Collection

logger = logging.getLogger(__name__)

MAX_LINKED = 10  # collections attached to one conversation or comparison
TOP_K = 6


# --- Which collections ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Attachments:
    """How collections attach to one kind of owner: its link model (a row per attached
    collection, with `collection`, `added_by` and `added_at`), the link's foreign key to the
    owner (also the noun messages use), and what the owner's team readers see of it."""

    link: type[models.Model]
    owner_field: str  # "conversation", "comparison"
    team_readers_see: str  # "its answers", "its runs"
    files_refusal: str  # why a conversation's files collection can't be attached

    def links(self, owner) -> QuerySet:
        return self.link.objects.filter(**{self.owner_field: owner})


def collections_attachable(*, user, owner, kind: Attachments) -> QuerySet[Collection]:
    """What the picker offers: collections `user` may read that fit `owner` (its team's for a
    team's), not attached yet; conversations' files collections excluded."""
    collections = access.scope(Collection.objects.all(), user).filter(for_conversation=False)
    if owner.owner_team_id is not None:
        collections = collections.filter(owner_team_id=owner.owner_team_id)
    linked = kind.links(owner).values("collection_id")
    return collections.exclude(pk__in=linked).select_related("owner_team").order_by("name", "pk")


def collections_attached(*, owner, kind: Attachments) -> list[Collection]:
    """The attached collections, oldest first (every reader of `owner` sees them)."""
    return [
        link.collection
        for link in kind.links(owner)
        .select_related("collection", "collection__owner_team")
        .order_by("added_at", "id")
    ]


def attach_refusal(*, owner, collection: Collection, kind: Attachments) -> str | None:
    """Why `collection` may not ground `owner` (None: it may)."""
    if collection.for_conversation:
        return kind.files_refusal
    if owner.owner_team_id is not None:
        if collection.owner_team_id != owner.owner_team_id:
            return (
                f"A team {kind.owner_field} can use only its team's collections: everyone in the "
                f"team reads {kind.team_readers_see} and their sources."
            )
    elif collection.owner_team_id is None and collection.owner_user_id != owner.owner_user_id:
        return "That collection isn't yours."
    return None


@transaction.atomic
def collection_attach(*, actor, owner, collection_id, kind: Attachments) -> Collection:
    """Attach a collection (404 for one `actor` may not read, whatever the reason)."""
    access.require(actor, owner, Action.WRITE)
    collection = access.get_for(actor, Collection.objects.all(), collection_id, Action.READ)
    reason = attach_refusal(owner=owner, collection=collection, kind=kind)
    if reason is not None:
        raise ValidationError({"collection_id": reason})
    linked = kind.links(owner)
    if linked.filter(collection=collection).exists():
        return collection
    if linked.count() >= MAX_LINKED:
        raise ValidationError(
            {"collection_id": f"At most {MAX_LINKED} collections per {kind.owner_field}."}
        )
    try:
        with transaction.atomic():
            kind.link.objects.create(
                **{kind.owner_field: owner}, collection=collection, added_by=actor
            )
    except IntegrityError:  # attached meanwhile (another tab, someone else): the same outcome
        pass
    return collection


def collection_detach(*, actor, owner, collection_id, kind: Attachments) -> None:
    """Detach a collection; an id not attached to *this* owner is 404."""
    access.require(actor, owner, Action.WRITE)
    parsed = access.parse_id(collection_id)
    if parsed is None:
        raise Http404
    deleted, _ = kind.links(owner).filter(collection_id=parsed).delete()
    if not deleted:
        raise Http404(f"That collection isn't attached to this {kind.owner_field}.")


# --- Retrieval for one call ----------------------------------------------------------------------


def with_context(request: CompletionRequest, context: str) -> CompletionRequest:
    """`request` with `context` in front of its last user turn (only that one: earlier turns
    went out with their own context, which the conversation's history doesn't repeat)."""
    if not context:
        return request
    messages = list(request.messages)
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            turn = messages[index]
            messages[index] = replace(turn, content=f"{context}\n\n{turn.content}")
            return replace(request, messages=tuple(messages))
    return request


def _question(request: CompletionRequest) -> str:
    for turn in reversed(request.messages):
        if turn.role == "user":
            return turn.content
    return ""


def _readable(user, ids: tuple[int, ...]) -> tuple[list[Collection], list[str]]:
    """The caller's view of the planned collections, checked now: a collection they may no
    longer read is skipped with a notice that names nothing about it."""
    found = {
        c.pk: c
        for c in access.scope(Collection.objects.all(), user)
        .filter(pk__in=ids)
        .select_related("embedding_credential")
    }
    readable = [found[pk] for pk in ids if pk in found]
    skipped = len(ids) - len(readable)
    notices = (
        [f"{skipped} attached collection(s) skipped: you can no longer read them."]
        if skipped
        else []
    )
    return readable, notices


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def retrieval_record(*, context, notices: list[str], took_ms: float) -> dict:
    """What is stored with the answer (`Message.retrieval`, `Run.retrieval`) and rendered."""
    return {
        "context": context.text,
        "sources": [
            {
                "n": s.number,
                "chunk": s.chunk_id,
                "document": s.document_id,
                "collection": s.collection_id,
                "title": s.title,
                "page": s.page,
                "heading": s.heading,
                # How it ranked, for exports and evaluation (None: that branch didn't find it).
                "score": _rounded(s.score),
                "similarity": _rounded(s.similarity),
                "text_rank": _rounded(s.text_rank),
            }
            for s in context.sources
        ],
        "notices": notices,
        "took_ms": round(took_ms, 1),
    }


WAIT_FOR_DOCUMENTS = 90.0  # seconds a reply waits for the documents attached to its message
WAIT_STEP = 0.5


def _unread(document_ids: tuple[int, ...]) -> list[str]:
    from rag.models import DocStatus, Document

    return list(
        Document.objects.filter(
            pk__in=document_ids, status__in=[DocStatus.QUEUED, DocStatus.PROCESSING]
        ).values_list("title", flat=True)
    )


async def documents_wait(document_ids: tuple[int, ...], *, timeout: float) -> list[str]:
    """Wait until the documents attached to the message are read (ingestion runs in the task
    worker); the titles still unread at `timeout`. A Stop cancels the wait like the reply."""
    import asyncio
    import time

    from workbench import connections

    deadline = time.monotonic() + timeout
    while True:
        unread = await connections.hop(_unread)(document_ids)
        if not unread or time.monotonic() >= deadline:
            return unread
        await asyncio.sleep(WAIT_STEP)


async def ground(
    *,
    user,
    collection_ids: tuple[int, ...],
    request: CompletionRequest,
    feature,
    awaiting: tuple[int, ...] = (),
):
    """(the request with the retrieved context, the retrieval record) for one reply. Never
    raises for retrieval trouble: the reply goes ahead without context and says why."""
    from rag.context import context_build
    from rag.selectors import achunk_search
    from workbench import connections

    question = _question(request)
    notices: list[str] = []
    try:
        if awaiting:
            unread = await documents_wait(awaiting, timeout=WAIT_FOR_DOCUMENTS)
            notices += [f"“{title}” was still being read; answered without it." for title in unread]
        collections, skipped = await connections.hop(_readable)(user, collection_ids)
        notices += skipped
        if not collections or not question.strip():
            result_hits, took = [], 0.0
        else:
            result = await achunk_search(
                user=user, collections=collections, query=question, top_k=TOP_K, feature=feature
            )
            await connections.hop(lambda: None)()  # hand the search's connection back
            notices += result.notices
            result_hits, took = result.hits, result.took_ms
    except Exception:
        logger.exception("Retrieval failed")
        result_hits, took = [], 0.0
        notices = ["Searching the attached collections failed; answered without them."]
    context = context_build(hits=result_hits)
    record = retrieval_record(context=context, notices=notices, took_ms=took)
    return with_context(request, context.text), record
