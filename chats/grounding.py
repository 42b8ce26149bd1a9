"""Replies grounded in document collections (issue 14, "RAG in chat").

- A conversation has collections attached (`ConversationCollection`), plus the files collection
  its attached documents are read into. A team conversation takes only its team's collections
  (everyone who reads the conversation reads its citations, so nothing personal may leak into
  it); a personal one any collection its owner may read.
- At every send the *sender's* access is checked again: a collection they can no longer read is
  skipped (with a notice), never searched.
- Retrieval runs in the reply's task, before the model call (`ground`): the question is the last
  user turn; the context (rag.context: quoted, escaped `<source>` elements and a preamble that
  says they are data, not instructions) is put in front of that turn only. What the model
  received is stored on the reply (`Message.retrieval`): the page shows exactly that text, and
  Echo, which streams back its request, shows the same.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import Http404

from accounts import access
from accounts.access import Action
from chats.models import Conversation, ConversationCollection, Message
from providers.adapters.base import CompletionRequest
from rag.models import Collection

logger = logging.getLogger(__name__)

MAX_LINKED = 10  # collections attached to one conversation
TOP_K = 6


# --- Which collections ---------------------------------------------------------------------------


def collections_attachable(*, user, conversation: Conversation) -> QuerySet[Collection]:
    """What the picker offers: collections `user` may read that fit the conversation's owner
    (its team's for a team conversation), not already attached, files collections excluded."""
    collections = access.scope(Collection.objects.all(), user).filter(for_conversation=False)
    if conversation.owner_team_id is not None:
        collections = collections.filter(owner_team_id=conversation.owner_team_id)
    linked = ConversationCollection.objects.filter(conversation=conversation).values(
        "collection_id"
    )
    return collections.exclude(pk__in=linked).select_related("owner_team").order_by("name", "pk")


def conversation_collections(*, conversation: Conversation) -> list[Collection]:
    """The collections attached to `conversation` (the page shows them to every reader)."""
    return [
        link.collection
        for link in ConversationCollection.objects.filter(conversation=conversation)
        .select_related("collection", "collection__owner_team")
        .order_by("added_at", "id")
    ]


def _refusal(conversation: Conversation, collection: Collection) -> str | None:
    if collection.for_conversation:
        return "That is a conversation's files collection; attach files to a message instead."
    if conversation.owner_team_id is not None:
        if collection.owner_team_id != conversation.owner_team_id:
            return (
                "A team conversation can use only its team's collections: everyone in the team "
                "reads its answers and their sources."
            )
    elif (
        collection.owner_team_id is None and collection.owner_user_id != conversation.owner_user_id
    ):
        return "That collection isn't yours."
    return None


@transaction.atomic
def collection_attach(*, actor, conversation: Conversation, collection_id) -> Collection:
    """Attach a collection (404 for one `actor` may not read, whatever the reason)."""
    access.require(actor, conversation, Action.WRITE)
    collection = access.get_for(actor, Collection.objects.all(), collection_id, Action.READ)
    reason = _refusal(conversation, collection)
    if reason is not None:
        raise ValidationError({"collection_id": reason})
    linked = ConversationCollection.objects.filter(conversation=conversation)
    if linked.filter(collection=collection).exists():
        return collection
    if linked.count() >= MAX_LINKED:
        raise ValidationError(
            {"collection_id": f"At most {MAX_LINKED} collections per conversation."}
        )
    try:
        with transaction.atomic():
            ConversationCollection.objects.create(
                conversation=conversation, collection=collection, added_by=actor
            )
    except IntegrityError:  # attached meanwhile by someone else: the same outcome
        pass
    return collection


def collections_carry(*, actor, conversation: Conversation, collection_ids) -> int:
    """Attach to a conversation made from elsewhere (a grounded playground answer) the
    collections it was grounded in — each one `actor` may read and the conversation may use
    (chat's owner rule), up to MAX_LINKED. Returns how many were left out, naming none."""
    access.require(actor, conversation, Action.WRITE)
    wanted = list(dict.fromkeys(int(pk) for pk in collection_ids))
    readable = {
        c.pk: c for c in access.scope(Collection.objects.all(), actor).filter(pk__in=wanted)
    }
    carried = [
        readable[pk]
        for pk in wanted
        if pk in readable and _refusal(conversation, readable[pk]) is None
    ][:MAX_LINKED]
    ConversationCollection.objects.bulk_create(
        [
            ConversationCollection(conversation=conversation, collection=c, added_by=actor)
            for c in carried
        ],
        ignore_conflicts=True,
    )
    return len(wanted) - len(carried)


def collection_detach(*, actor, conversation: Conversation, collection_id) -> None:
    """Detach a collection; an id that isn't attached to *this* conversation is 404."""
    access.require(actor, conversation, Action.WRITE)
    try:
        deleted, _ = ConversationCollection.objects.filter(
            conversation=conversation, collection_id=int(collection_id)
        ).delete()
    except (TypeError, ValueError):
        raise Http404 from None
    if not deleted:
        raise Http404("That collection isn't attached to this conversation.")


def grounding_ids(*, conversation: Conversation) -> tuple[int, ...]:
    """The collections a new reply in `conversation` retrieves from (attached + its files),
    fixed when the reply is planned; the sender's access is checked when it runs."""
    if hasattr(conversation, "send_linked"):  # read with send_state_annotations
        ids = list(conversation.send_linked)
    else:
        ids = list(
            ConversationCollection.objects.filter(conversation=conversation).values_list(
                "collection_id", flat=True
            )
        )
    if conversation.files_collection_id is not None:
        ids.append(conversation.files_collection_id)
    return tuple(dict.fromkeys(ids))


def send_state_annotations(*, actor) -> dict:
    """Annotations for a conversation query (the consumer's access check): what `send_state`
    would ask for, read with the conversation instead of by a query of its own."""
    from django.contrib.postgres.expressions import ArraySubquery
    from django.db.models import Exists, OuterRef, Value

    from chats.models import Attachment

    return {
        "send_linked": ArraySubquery(
            ConversationCollection.objects.filter(conversation_id=OuterRef("pk"))
            .order_by("added_at", "id")
            .values("collection_id")
        ),
        "send_pending": Exists(
            Attachment.objects.filter(
                conversation_id=OuterRef("pk"), uploaded_by_id=actor.pk, message__isnull=True
            )
        ),
        "send_state_of": Value(actor.pk),
    }


def send_state(*, conversation: Conversation, actor) -> tuple[tuple[int, ...], bool]:
    """For a new message, in one query (none when the conversation was read with
    `send_state_annotations` for `actor`): the collections its reply retrieves from (attached +
    the files collection) and whether `actor` has attachments waiting to go with it."""
    if getattr(conversation, "send_state_of", None) == actor.pk:
        linked, pending = conversation.send_linked, conversation.send_pending
        files_id = conversation.files_collection_id
    else:
        linked, pending, files_id = (
            Conversation.objects.filter(pk=conversation.pk)
            .annotate(**send_state_annotations(actor=actor))
            .values_list("send_linked", "send_pending", "files_collection_id")
            .get()
        )
    ids = [*linked, files_id] if files_id is not None else list(linked)
    return tuple(dict.fromkeys(ids)), pending


# --- Retrieval for one reply ----------------------------------------------------------------------


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
    """The sender's view of the planned collections, checked now: a collection they may no
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
    """What is stored on the reply (`Message.retrieval`) and rendered under it."""
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


def retrieval_save(*, message_id: int, retrieval: dict) -> None:
    """One UPDATE: the reply's retrieval, before the model is called."""
    Message.objects.filter(pk=message_id).update(retrieval=retrieval)


def continued_request(*, message: Message, request: CompletionRequest) -> CompletionRequest:
    """A continued reply gets the context its first part was written with, unchanged."""
    context = (message.retrieval or {}).get("context") or ""
    return with_context(request, context) if context else request
