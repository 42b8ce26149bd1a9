"""Shared context for a comparison (issue 14, "Use it everywhere"): collections attached to a
comparison are searched ONCE per run, with the run's input, and every slot receives the exact
same context — the comparison is of the models, not of what each happened to retrieve.

The rules and the retrieval are rag.grounding's, shared with chat: a team comparison takes only its team's collections
(every member reads its runs and their sources), a personal one any collection its owner may
read (its own, its teams'); the *runner's* read access is checked again when the run starts (a collection they lost
is skipped with a notice that names nothing about it). The context is chat's one format
(rag.context: quoted, escaped `<source>` elements behind a "data, not instructions" preamble),
put in front of the last user turn, never into the system prompt. The run stores what was
retrieved (`Run.retrieval`: the context text, the numbered sources, notices); the results page
shows exactly that text, which is what Echo streams back.
"""

from __future__ import annotations

import logging

from django.db.models import QuerySet

from playground.models import Comparison, ComparisonCollection, Run
from providers.adapters.base import CompletionRequest
from rag import grounding as rag_grounding
from rag.grounding import MAX_LINKED
from rag.models import Collection

__all__ = ["MAX_LINKED"]

logger = logging.getLogger(__name__)

ATTACHMENTS = rag_grounding.Attachments(
    link=ComparisonCollection,
    owner_field="comparison",
    team_readers_see="its runs",
    files_refusal="That is a conversation's files collection; it stays with its conversation.",
)


def collections_attachable(*, user, comparison: Comparison) -> QuerySet[Collection]:
    """What the picker offers: collections `user` may read that fit the comparison's owner
    (its team's for a team comparison), not attached yet; conversations' files excluded."""
    return rag_grounding.collections_attachable(user=user, owner=comparison, kind=ATTACHMENTS)


def comparison_collections(*, comparison: Comparison) -> list[Collection]:
    """The attached collections, oldest first (every reader of the comparison sees them)."""
    return rag_grounding.collections_attached(owner=comparison, kind=ATTACHMENTS)


def collection_attach(*, actor, comparison: Comparison, collection_id) -> Collection:
    """Attach a collection (404 for one `actor` may not read, whatever the reason)."""
    return rag_grounding.collection_attach(
        actor=actor, owner=comparison, collection_id=collection_id, kind=ATTACHMENTS
    )


def collection_detach(*, actor, comparison: Comparison, collection_id) -> None:
    """Detach a collection; an id not attached to *this* comparison is 404."""
    rag_grounding.collection_detach(
        actor=actor, owner=comparison, collection_id=collection_id, kind=ATTACHMENTS
    )


def run_collection_ids(*, comparison: Comparison) -> tuple[int, ...]:
    """The collections a new run searches: the attached ones that still fit the comparison's
    owner (checked again here, not only when attached). The runner's read access is checked
    when the retrieval runs."""
    links = ComparisonCollection.objects.filter(comparison=comparison).select_related("collection")
    return tuple(
        link.collection_id
        for link in links.order_by("added_at", "id")
        if rag_grounding.attach_refusal(
            owner=comparison, collection=link.collection, kind=ATTACHMENTS
        )
        is None
    )


def _save(run_id: int, record: dict) -> None:
    Run.objects.filter(pk=run_id).update(retrieval=record)


async def shared_context(*, run_id: int, user, collection_ids: tuple[int, ...], request) -> str:
    """Retrieve once for the run's input (its last user turn), store the record on the run (one
    UPDATE) and return the context text every slot gets. Never raises: retrieval trouble is a
    notice on the run and the slots answer without context."""
    from workbench import connections

    try:
        question = CompletionRequest(model="", messages=request.messages)
        _, record = await rag_grounding.ground(
            user=user, collection_ids=collection_ids, request=question, feature="playground"
        )
        await connections.hop(_save)(run_id, record)
        return record["context"]
    except Exception:
        logger.exception("Shared context for run %s failed", run_id)
        record = {
            "context": "",
            "sources": [],
            "notices": ["Searching the attached collections failed; the models answered without."],
            "took_ms": 0,
        }
        try:
            await connections.hop(_save)(run_id, record)
        except Exception:
            logger.exception("Saving run %s's retrieval failed", run_id)
        return ""
