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

The attaching rules and the retrieval are rag.grounding's (shared with the playground); this
module names the conversation's link and words, and keeps what only chat has: the files
collection, the send state, carrying collections over from elsewhere, continued replies.
"""

from __future__ import annotations

from django.db.models import QuerySet

from accounts import access
from accounts.access import Action
from chats.models import Conversation, ConversationCollection, Message
from providers.adapters.base import CompletionRequest
from rag import grounding as rag_grounding
from rag.grounding import (
    MAX_LINKED,
    TOP_K,
    WAIT_FOR_DOCUMENTS,
    documents_wait,
    ground,
    retrieval_record,
    with_context,
)
from rag.models import Collection

__all__ = [  # the retrieval, re-exported for chat's callers
    "MAX_LINKED",
    "TOP_K",
    "WAIT_FOR_DOCUMENTS",
    "documents_wait",
    "ground",
    "retrieval_record",
    "with_context",
]

ATTACHMENTS = rag_grounding.Attachments(
    link=ConversationCollection,
    owner_field="conversation",
    team_readers_see="its answers",
    files_refusal="That is a conversation's files collection; attach files to a message instead.",
)


# --- Which collections ---------------------------------------------------------------------------


def collections_attachable(*, user, conversation: Conversation) -> QuerySet[Collection]:
    """What the picker offers: collections `user` may read that fit the conversation's owner
    (its team's for a team conversation), not already attached, files collections excluded."""
    return rag_grounding.collections_attachable(user=user, owner=conversation, kind=ATTACHMENTS)


def conversation_collections(*, conversation: Conversation) -> list[Collection]:
    """The collections attached to `conversation` (the page shows them to every reader)."""
    return rag_grounding.collections_attached(owner=conversation, kind=ATTACHMENTS)


def collection_attach(*, actor, conversation: Conversation, collection_id) -> Collection:
    """Attach a collection (404 for one `actor` may not read, whatever the reason)."""
    return rag_grounding.collection_attach(
        actor=actor, owner=conversation, collection_id=collection_id, kind=ATTACHMENTS
    )


def collection_detach(*, actor, conversation: Conversation, collection_id) -> None:
    """Detach a collection; an id that isn't attached to *this* conversation is 404."""
    rag_grounding.collection_detach(
        actor=actor, owner=conversation, collection_id=collection_id, kind=ATTACHMENTS
    )


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
        if pk in readable
        and rag_grounding.attach_refusal(
            owner=conversation, collection=readable[pk], kind=ATTACHMENTS
        )
        is None
    ][:MAX_LINKED]
    ConversationCollection.objects.bulk_create(
        [
            ConversationCollection(conversation=conversation, collection=c, added_by=actor)
            for c in carried
        ],
        ignore_conflicts=True,
    )
    return len(wanted) - len(carried)


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


# --- Retrieval for one reply (rag.grounding) -------------------------------------------------------


def retrieval_save(*, message_id: int, retrieval: dict) -> None:
    """One UPDATE: the reply's retrieval, before the model is called."""
    Message.objects.filter(pk=message_id).update(retrieval=retrieval)


def continued_request(*, message: Message, request: CompletionRequest) -> CompletionRequest:
    """A continued reply gets the context its first part was written with, unchanged."""
    context = (message.retrieval or {}).get("context") or ""
    return with_context(request, context) if context else request
