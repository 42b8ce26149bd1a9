"""Shared context for a comparison (issue 14, "Use it everywhere"): collections attached to a
comparison are searched ONCE per run, with the run's input, and every slot receives the exact
same context — the comparison is of the models, not of what each happened to retrieve.

The rules are chat's (chats.grounding): a team comparison takes only its team's collections
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

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import Http404

from accounts import access
from accounts.access import Action
from playground.models import Comparison, ComparisonCollection, Run
from providers.adapters.base import CompletionRequest
from rag.models import Collection

logger = logging.getLogger(__name__)

MAX_LINKED = 10  # collections attached to one comparison (chat's limit)


def collections_attachable(*, user, comparison: Comparison) -> QuerySet[Collection]:
    """What the picker offers: collections `user` may read that fit the comparison's owner
    (its team's for a team comparison), not attached yet; conversations' files excluded."""
    collections = access.scope(Collection.objects.all(), user).filter(for_conversation=False)
    if comparison.owner_team_id is not None:
        collections = collections.filter(owner_team_id=comparison.owner_team_id)
    linked = ComparisonCollection.objects.filter(comparison=comparison).values("collection_id")
    return collections.exclude(pk__in=linked).select_related("owner_team").order_by("name", "pk")


def comparison_collections(*, comparison: Comparison) -> list[Collection]:
    """The attached collections, oldest first (every reader of the comparison sees them)."""
    return [
        link.collection
        for link in ComparisonCollection.objects.filter(comparison=comparison)
        .select_related("collection", "collection__owner_team")
        .order_by("added_at", "id")
    ]


def _refusal(comparison: Comparison, collection: Collection) -> str | None:
    """Why `collection` may not ground `comparison` (None: it may)."""
    if collection.for_conversation:
        return "That is a conversation's files collection; it stays with its conversation."
    if comparison.owner_team_id is not None:
        if collection.owner_team_id != comparison.owner_team_id:
            return (
                "A team comparison can use only its team's collections: everyone in the team "
                "reads its runs and their sources."
            )
    elif collection.owner_team_id is None and collection.owner_user_id != comparison.owner_user_id:
        return "That collection isn't yours."
    return None


@transaction.atomic
def collection_attach(*, actor, comparison: Comparison, collection_id) -> Collection:
    """Attach a collection (404 for one `actor` may not read, whatever the reason)."""
    access.require(actor, comparison, Action.WRITE)
    collection = access.get_for(actor, Collection.objects.all(), collection_id, Action.READ)
    reason = _refusal(comparison, collection)
    if reason is not None:
        raise ValidationError({"collection_id": reason})
    linked = ComparisonCollection.objects.filter(comparison=comparison)
    if linked.filter(collection=collection).exists():
        return collection
    if linked.count() >= MAX_LINKED:
        raise ValidationError(
            {"collection_id": f"At most {MAX_LINKED} collections per comparison."}
        )
    try:
        with transaction.atomic():
            ComparisonCollection.objects.create(
                comparison=comparison, collection=collection, added_by=actor
            )
    except IntegrityError:  # attached meanwhile (another tab): the same outcome
        pass
    return collection


def collection_detach(*, actor, comparison: Comparison, collection_id) -> None:
    """Detach a collection; an id not attached to *this* comparison is 404."""
    access.require(actor, comparison, Action.WRITE)
    parsed = access.parse_id(collection_id)
    if parsed is None:
        raise Http404
    deleted, _ = ComparisonCollection.objects.filter(
        comparison=comparison, collection_id=parsed
    ).delete()
    if not deleted:
        raise Http404("That collection isn't attached to this comparison.")


def run_collection_ids(*, comparison: Comparison) -> tuple[int, ...]:
    """The collections a new run searches: the attached ones that still fit the comparison's
    owner (checked again here, not only when attached). The runner's read access is checked
    when the retrieval runs."""
    links = ComparisonCollection.objects.filter(comparison=comparison).select_related("collection")
    return tuple(
        link.collection_id
        for link in links.order_by("added_at", "id")
        if _refusal(comparison, link.collection) is None
    )


def _save(run_id: int, record: dict) -> None:
    Run.objects.filter(pk=run_id).update(retrieval=record)


async def shared_context(*, run_id: int, user, collection_ids: tuple[int, ...], request) -> str:
    """Retrieve once for the run's input (its last user turn), store the record on the run (one
    UPDATE) and return the context text every slot gets. Never raises: retrieval trouble is a
    notice on the run and the slots answer without context."""
    from chats import grounding
    from workbench import connections

    try:
        question = CompletionRequest(model="", messages=request.messages)
        _, record = await grounding.ground(
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
