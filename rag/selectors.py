"""Reads for collections and documents, scoped to the user asking — and `chunk_search`, the one
retrieval every feature uses (the search page, REST, and later chat, playground and prompts).

`chunk_search` is hybrid: a vector branch (HNSW over `halfvec`, cosine) and a full-text branch
(`tsvector` + GIN), fused by reciprocal rank fusion in one SQL statement per embedding space.
The collection filter sits inside that statement; pgvector 0.8's iterative index scan keeps
walking the HNSW graph until enough rows of the wanted collections pass the filter, so a small
collection inside a big table still gets its top-k.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.utils.safestring import SafeString, mark_safe

from accounts import access
from accounts.access import Action
from rag import indexing
from rag.embedding import EmbeddingFailed, aembed_query, embed_query
from rag.models import Collection, DocStatus, Document, Embedder

RRF_K = 60
MAX_QUERY_CHARS = 2000
MAX_TOP_K = 50
EF_SEARCH = 200  # hnsw.ef_search; 100 lost 8 of 500 queries at 1M chunks (P7)
MAX_SCAN_TUPLES = 20000
# Up to this many chunks in the searched collections, the vector branch is an exact scan (an
# index-only scan of the covering btree `rag_chunk_exact`, then a sort: recall 1.0, ~0.5 µs a
# chunk); above it, an HNSW index: a big collection's own graph when it is searched alone, else
# the shared graph with an iterative scan. See docs/performance.md (P7).
EXACT_MAX_CHUNKS = indexing.OWN_INDEX_MIN_CHUNKS
MARK_START, MARK_END = "\ue000", "\ue001"  # private-use code points: never in escaped text


def collections_for_user(*, user, team=None) -> QuerySet[Collection]:
    """What the collections list shows: the user's own plus the current team's."""
    return (
        access.in_view(Collection.objects.all(), user, team)
        .select_related("owner_team", "embedding_credential")
        .annotate(
            document_count=Count("documents", distinct=True),
            active_count=Count(
                "documents",
                filter=Q(documents__status__in=[DocStatus.QUEUED, DocStatus.PROCESSING]),
                distinct=True,
            ),
        )
        .order_by("name", "pk")
    )


def collections_readable(*, user) -> QuerySet[Collection]:
    """Every collection the user may read (REST lists, pickers)."""
    return access.scope(Collection.objects.all(), user).select_related("owner_team")


def collection_for_user(*, user, pk, action: Action = Action.READ) -> Collection:
    return access.get_for(
        user, Collection.objects.select_related("owner_team", "embedding_credential"), pk, action
    )


def documents_for(*, user, collection: Collection) -> QuerySet[Document]:
    access.require(user, collection, Action.READ)
    return collection.documents.all().order_by("-created_at", "-id")


def document_for_user(*, user, pk, action: Action = Action.READ, collection=None) -> Document:
    """A document through its collection's rules; 404 outside the tenant (or the collection)."""
    queryset = Document.objects.select_related("collection", "collection__owner_team")
    if collection is not None:
        queryset = queryset.filter(collection=collection)
    try:
        document = queryset.filter(pk=pk).first()
    except (ValueError, TypeError):
        raise Http404 from None
    if document is None:
        raise Http404
    access.require(user, document.collection, action)
    return document


def ingestion_status(*, user, collection: Collection) -> dict:
    """Counts per status and the overall progress for a progress bar."""
    access.require(user, collection, Action.READ)
    rows = collection.documents.values_list("status", "progress")
    counts = {status: 0 for status in DocStatus.values}
    active_progress = []
    for status, progress in rows:
        counts[status] += 1
        if status in {DocStatus.QUEUED, DocStatus.PROCESSING}:
            active_progress.append(progress)
    active = len(active_progress)
    return {
        "counts": counts,
        "active": active,
        "progress": int(sum(active_progress) / active) if active else 100,
        "reembed_state": collection.reembed_state,
        "reembed_progress": collection.reembed_progress,
    }


# --- Retrieval ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    document_id: int
    collection_id: int
    document_title: str
    source: str
    page: int | None
    heading: str
    text: str
    score: float  # reciprocal rank fusion score
    similarity: float | None  # cosine similarity, when the vector branch found it
    text_rank: float | None  # ts_rank_cd, when the full-text branch found it
    highlight: SafeString  # escaped text with <mark> around matched words

    @property
    def matched_by(self) -> str:
        if self.similarity is not None and self.text_rank is not None:
            return "both"
        return "meaning" if self.similarity is not None else "words"


@dataclass
class SearchResult:
    hits: list[Hit]
    notices: list[str] = field(default_factory=list)
    took_ms: float = 0.0


def _highlight(marked: str) -> SafeString:
    escaped = html.escape(marked)
    return mark_safe(  # noqa: S308 - escaped above; only our own markers become tags
        escaped.replace(MARK_START, "<mark>").replace(MARK_END, "</mark>")
    )


def _sql(dims: int | None, exact: bool = True) -> str:
    """The fused query. `dims` and the cast are inlined (integers we control) so the planner
    matches the partial HNSW index `WHERE dims = N`.

    Only vectors of the collections' current generation (their current model) take part: while
    a re-embedding catches up, old vectors of another model may have the same size.

    `exact`: the distance is written so no HNSW index can serve the ORDER BY (the uncast
    column, not the index's `embedding::halfvec(N)` expression): left free, the planner
    sometimes walks the graph with the collection as a plain filter — without an iterative scan
    that keeps only the few of `ef_search` candidates that happen to be in the collection
    (recall 0.35 at 20k rows, none at all for a small collection in a big table). Not `exact`:
    the collection filter is written so the btree can't serve it (`collection_id + 0`),
    leaving the planner the HNSW index — left to itself it picks the btree (its row estimate
    for `= ANY(array)` is low) and sorts a big collection exactly.

    The text branch casts the ids to `bigint[]`: btree_gin's operator class has no cross-type
    equality and psycopg sends small ints as `smallint[]`, which would leave the
    `(collection_id, tsv)` GIN serving the tsv alone (every collection's matches, filtered)."""
    collection_filter = (
        "collection_id = ANY(%(ids)s) AND generation = ANY(%(gens)s)"
        if exact
        # `+ 0` on both: PostgreSQL 18's skip scan would otherwise serve the generation alone
        # from the (collection_id, generation) btree, and sort the collection exactly.
        else "collection_id + 0 = ANY(%(ids)s) AND generation + 0 = ANY(%(gens)s)"
    )
    distance = (
        f"embedding <=> %(vector)s::halfvec({dims})"
        if exact
        else f"embedding::halfvec({dims}) <=> %(vector)s::halfvec({dims})"
    )
    headline = (
        f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=45, MinWords=20, "
        'ShortWord=2, MaxFragments=2, FragmentDelimiter=" … "'
    )
    if dims:
        vector = f"""
        vec AS MATERIALIZED (
            SELECT id, {distance} AS distance
            FROM rag_chunk
            WHERE dims = {dims} AND {collection_filter}
            ORDER BY {distance}
            LIMIT %(candidates)s
        ),
        vec_ranked AS (
            SELECT id, distance, row_number() OVER (ORDER BY distance) AS rank
            FROM vec WHERE 1 - distance >= %(threshold)s
        ),"""  # noqa: S608 - only integers we control are formatted in
    else:
        vector = """
        vec_ranked AS (SELECT NULL::bigint AS id, NULL::float8 AS distance, NULL::bigint AS rank
                       WHERE false),"""
    return f"""
    WITH {vector}
    txt AS (
        SELECT id, rank_score, row_number() OVER (ORDER BY rank_score DESC, id) AS rank
        FROM (
            SELECT id, ts_rank_cd(tsv, q) AS rank_score
            FROM rag_chunk, websearch_to_tsquery('english', %(text)s) AS q
            WHERE %(use_text)s AND collection_id = ANY(%(ids)s::bigint[]) AND tsv @@ q
            ORDER BY rank_score DESC, id
            LIMIT %(candidates)s
        ) ranked
    ),
    fused AS (
        SELECT COALESCE(v.id, t.id) AS id,
               COALESCE(1.0 / ({RRF_K} + v.rank), 0) + COALESCE(1.0 / ({RRF_K} + t.rank), 0) AS score,
               1 - v.distance AS similarity,
               t.rank_score
        FROM vec_ranked v FULL OUTER JOIN txt t ON v.id = t.id
        ORDER BY score DESC, id
        LIMIT %(top_k)s
    )
    SELECT c.id, c.document_id, c.collection_id, d.title, d.source, c.page, c.heading, c.text,
           f.score, f.similarity, f.rank_score,
           ts_headline('english', c.text, websearch_to_tsquery('english', %(text)s), '{headline}')
    FROM fused f
    JOIN rag_chunk c ON c.id = f.id
    JOIN rag_document d ON d.id = c.document_id
    WHERE d.status = 'ready'
    ORDER BY f.score DESC, c.id
    """  # noqa: S608 - constants and the integer-only vector part above


def _run(dims, params, exact: bool = True) -> list[Hit]:
    with transaction.atomic(), connection.cursor() as cursor:
        if dims and not exact:
            # A big collection: the HNSW index, walked until enough rows pass the filter. The
            # planner's seq-scan estimate for the filtered top-k is misleadingly cheap; with
            # no index for this size it still falls back to a seq scan.
            cursor.execute(
                "SELECT set_config('hnsw.ef_search', %s, true), "
                "set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                "set_config('hnsw.max_scan_tuples', %s, true), "
                "set_config('enable_seqscan', 'off', true)",
                [str(EF_SEARCH), str(MAX_SCAN_TUPLES)],
            )
        cursor.execute(_sql(dims, exact), params)
        rows = cursor.fetchall()
    return [
        Hit(
            chunk_id=r[0],
            document_id=r[1],
            collection_id=r[2],
            document_title=r[3],
            source=r[4],
            page=r[5],
            heading=r[6],
            text=r[7],
            score=float(r[8]),
            similarity=None if r[9] is None else float(r[9]),
            text_rank=None if r[10] is None else float(r[10]),
            highlight=_highlight(r[11] or ""),
        )
        for r in rows
    ]


@dataclass
class _Plan:
    """The collections of one embedding space, searched by one statement."""

    collections: list[Collection]
    vector: list[float] | None = None
    notice: str = ""


def _plans(user, collections: Iterable, action_check: bool = True) -> list[_Plan]:
    checked: dict[int, Collection] = {}
    for item in collections:
        if isinstance(item, Collection):
            access.require(user, item, Action.READ)
            checked[item.pk] = item
        else:
            found = access.get_for(user, Collection.objects.all(), item, Action.READ)
            checked[found.pk] = found
    spaces: dict[tuple, _Plan] = {}
    for collection in checked.values():
        # One space per model: the two built-in models are two spaces, like two providers'.
        key = (
            collection.embedder,
            collection.embedding_credential_id
            if collection.embedder == Embedder.PROVIDER
            else None,
            collection.embedding_model
            if collection.embedder == Embedder.PROVIDER
            else collection.builtin_model.id,
            collection.embedding_dims,
        )
        spaces.setdefault(key, _Plan([])).collections.append(collection)
    return list(spaces.values())


def _chunk_total(collections: list[Collection]) -> int:
    from django.db.models import Sum

    return (
        Document.objects.filter(collection__in=collections, status=DocStatus.READY).aggregate(
            total=Sum("chunk_count")
        )["total"]
        or 0
    )


def _params(plan: _Plan, query: str, top_k: int, threshold: float, mode: str) -> tuple:
    dims = plan.collections[0].embedding_dims if plan.vector is not None else None
    candidates = max(40, top_k * 4)
    params = {
        "ids": [c.pk for c in plan.collections],
        "gens": [c.generation for c in plan.collections],
        "text": query,
        "use_text": mode != "vector",
        "candidates": candidates,
        "top_k": top_k,
        "threshold": threshold,
    }
    if dims:
        params["vector"] = "[" + ",".join(f"{x:.6g}" for x in plan.vector) + "]"
    exact = not dims or _chunk_total(plan.collections) <= EXACT_MAX_CHUNKS
    return dims, params, exact


def _clean_query(query: str, top_k: int, threshold: float, mode: str) -> tuple:
    from rag.extraction import clean_text

    query = clean_text(query or "").strip()[:MAX_QUERY_CHARS]
    top_k = max(1, min(MAX_TOP_K, int(top_k)))
    threshold = max(-1.0, min(1.0, float(threshold)))
    if mode not in {"hybrid", "vector", "text"}:
        mode = "hybrid"
    return query, top_k, threshold, mode


def _merge(results: list[list[Hit]], top_k: int) -> list[Hit]:
    hits = [hit for result in results for hit in result]
    hits.sort(key=lambda hit: (-hit.score, hit.chunk_id))
    return hits[:top_k]


def _vector_notice(collection: Collection, exc: Exception) -> str:
    if isinstance(exc, (Http404, PermissionDenied)):
        return (
            f"“{collection.name}”: matched by words only — searching by meaning needs permission "
            "to use its embedding credential."
        )
    return f"“{collection.name}”: matched by words only — {exc}"


def chunk_search(
    *,
    user,
    collections: Iterable,
    query: str,
    top_k: int = 8,
    threshold: float = 0.25,
    mode: str = "hybrid",
    feature: str = "rag",
) -> SearchResult:
    """The `top_k` chunks of `collections` (ids or objects, each checked: 404 outside the
    tenant) that best match `query`. Hybrid by default; `mode="vector"` or `"text"` for one
    branch. `threshold` is the least cosine similarity a vector match needs. Vector search of a
    collection the user may not embed for (a team's paid credential, for a viewer) falls back
    to words only, with a notice."""
    started = time.perf_counter()
    query, top_k, threshold, mode = _clean_query(query, top_k, threshold, mode)
    plans = _plans(user, collections)
    if not query or not plans:
        return SearchResult([], [], 0.0)
    notices, results = [], []
    for plan in plans:
        first = plan.collections[0]
        if mode != "text" and first.embedding_dims:
            try:
                plan.vector = embed_query(collection=first, text=query, user=user, feature=feature)
            except (EmbeddingFailed, Http404, PermissionDenied) as exc:
                notices.append(_vector_notice(first, exc))
        dims, params, exact = _params(plan, query, top_k, threshold, mode)
        if dims and len(plan.vector) != dims:
            notices.append(
                f"“{first.name}”: the model's vector size changed; re-embed the collection."
            )
            dims, params, exact = _params(_Plan(plan.collections), query, top_k, threshold, mode)
        results.append(_run(dims, params, exact))
    return SearchResult(_merge(results, top_k), notices, (time.perf_counter() - started) * 1000)


async def achunk_search(
    *,
    user,
    collections: Iterable,
    query: str,
    top_k: int = 8,
    threshold: float = 0.25,
    mode: str = "hybrid",
    feature: str = "rag",
) -> SearchResult:
    """`chunk_search` for async callers (chat, playground): embeddings awaited on the loop, the
    database work in one `sync_to_async` hop per statement group."""
    started = time.perf_counter()
    query, top_k, threshold, mode = _clean_query(query, top_k, threshold, mode)
    plans = await sync_to_async(_plans)(user, list(collections))
    if not query or not plans:
        return SearchResult([], [], 0.0)
    notices = []
    for plan in plans:
        first = plan.collections[0]
        if mode != "text" and first.embedding_dims:
            try:
                plan.vector = await aembed_query(
                    collection=first, text=query, user=user, feature=feature
                )
            except (EmbeddingFailed, Http404, PermissionDenied) as exc:
                notices.append(_vector_notice(first, exc))
                plan.vector = None
            if plan.vector is not None and len(plan.vector) != first.embedding_dims:
                plan.vector = None

    def run_all():
        return [_run(*_params(plan, query, top_k, threshold, mode)) for plan in plans]

    results = await sync_to_async(run_all)()
    return SearchResult(_merge(results, top_k), notices, (time.perf_counter() - started) * 1000)
