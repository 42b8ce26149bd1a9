"""What the task worker does with a queued document, and with a collection whose model changed.

A document goes queued → processing → ready | failed | cancelled. Nothing of it is searchable
until it is ready: its chunks are written in one transaction at the end (one binary COPY), so a
failure or a cancel leaves the collection exactly as it was. Progress (0–100) is written at most
once per embedding batch, and each write also notices a cancel or a deletion.
"""

from __future__ import annotations

import hashlib
import logging

import httpx
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from accounts import access
from accounts.access import Action
from rag import chunking, extraction, indexing, uploads
from rag.embedding import EmbeddingFailed, embed_texts
from rag.models import Chunk, Collection, DocStatus, Document, SourceKind
from workbench import egress

logger = logging.getLogger(__name__)

FETCH_TIMEOUTS = egress.Timeouts(connect=5.0, read=15.0, write=10.0, pool=5.0, total=30.0)
CONTENT_TYPES = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/plain": "txt",
    "text/markdown": "md",
    "text/csv": "csv",
    "application/json": "json",
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
}


class Stop(Exception):
    """The document was cancelled or deleted while we worked: leave quietly."""


def _actor(user_id):
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise EmbeddingFailed("The account that added this document is gone.")
    return user


def _fetch(url: str) -> tuple[bytes, str]:
    """The page's bytes and its type, through the egress guard (no redirects, bounded size)."""
    limit = uploads.max_upload_bytes()
    try:
        with egress.sync_client(
            flavor="httpx",
            timeout=FETCH_TIMEOUTS,
            max_bytes=limit + 1,
            headers={"User-Agent": "Workbench/1 (document fetch)"},
        ) as client:
            response = client.get(url)
    except egress.EgressError as exc:
        raise extraction.ExtractionError(f"Can't fetch this address: {exc}") from None
    except httpx.HTTPError as exc:
        found = egress.find_egress_error(exc)
        if found is not None:
            raise extraction.ExtractionError(f"Can't fetch this address: {found}") from None
        raise extraction.ExtractionError(
            f"Can't fetch this address ({type(exc).__name__})."
        ) from None
    if egress.is_redirect(response):
        where = response.headers.get("location", "")[:200]
        raise extraction.ExtractionError(
            f"The page redirects to {where or 'another address'}; add that address instead."
        )
    if response.status_code >= 400:
        raise extraction.ExtractionError(f"The server answered {response.status_code}.")
    data = response.content
    if len(data) > limit:
        raise extraction.ExtractionError(
            f"The page is larger than the {limit / 1048576:g} MB limit."
        )
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    file_type = CONTENT_TYPES.get(content_type)
    if file_type is None:
        raise extraction.ExtractionError(f"Can't read pages of type {content_type or 'unknown'}.")
    return data, file_type


def _set(document_id: int, **fields) -> None:
    """Update a running document; Stop when it was cancelled or deleted meanwhile."""
    updated = Document.objects.filter(pk=document_id, status=DocStatus.PROCESSING).update(**fields)
    if not updated:
        raise Stop


def document_ingest(*, document_id: int, user_id: int) -> str:
    """The body of the ingestion task. Returns the document's final status."""
    claimed = Document.objects.filter(pk=document_id, status=DocStatus.QUEUED).update(
        status=DocStatus.PROCESSING, progress=0, error=""
    )
    if not claimed:
        return "skipped"  # cancelled or deleted before it started, or already taken
    document = Document.objects.select_related("collection").get(pk=document_id)
    collection = document.collection
    try:
        user = _actor(user_id)
        try:
            access.require(user, collection, Action.WRITE)
        except (Http404, PermissionDenied):
            raise EmbeddingFailed("You no longer have access to this collection.") from None
        if document.source_kind == SourceKind.URL:
            data, declared = _fetch(document.source)
            file_type = extraction.sniff(data, f"page.{declared}")
            digest = hashlib.sha256(data).hexdigest()
            duplicate = collection.documents.filter(sha256=digest).exclude(pk=document.pk).first()
            if duplicate is not None:
                raise extraction.ExtractionError(f"Same content as “{duplicate.title}”.")
            _set(document_id, sha256=digest, size_bytes=len(data), file_type=file_type)
        else:
            data, file_type = uploads.load(document.stored_name), document.file_type
        extracted = extraction.extract(data, file_type)
        del data
        if document.source_kind == SourceKind.URL and extracted.title:
            _set(document_id, title=extracted.title[:300])
        pieces = chunking.chunk_blocks(
            extracted.blocks, size=collection.chunk_size, overlap=collection.chunk_overlap
        )
        generation = collection.generation
        texts = [f"{p.heading}\n{p.text}" if p.heading else p.text for p in pieces]

        def progress(done: int) -> bool:
            _set(document_id, progress=min(99, int(done * 100 / max(1, len(texts)))))
            return True

        vectors = embed_texts(collection=collection, texts=texts, user=user, progress=progress)
        dims = len(vectors[0]) if vectors else 0
        with transaction.atomic():
            locked = Collection.objects.select_for_update().get(pk=collection.pk)
            current = Document.objects.select_for_update().filter(pk=document_id).first()
            if current is None or current.status != DocStatus.PROCESSING:
                raise Stop
            stale = locked.generation != generation  # the model changed while we embedded
            Chunk.objects.filter(document_id=document_id).delete()
            indexing.chunks_copy(
                indexing.ChunkRow(
                    collection_id=collection.pk,
                    document_id=document_id,
                    ordinal=piece.ordinal,
                    text=piece.text,
                    heading=piece.heading,
                    page=piece.page,
                    generation=generation,
                    vector=None if stale else vector,
                )
                for piece, vector in zip(pieces, vectors, strict=True)
            )
            if not stale and locked.embedding_dims != dims:
                locked.embedding_dims = dims
                locked.save(update_fields=["embedding_dims"])
            Document.objects.filter(pk=document_id).update(
                status=DocStatus.READY,
                progress=100,
                chunk_count=len(pieces),
                page_count=extracted.page_count,
                finished_at=timezone.now(),
            )
        if stale:
            from rag.tasks import reembed_collection

            reembed_collection.enqueue(collection.pk, user_id, locked.generation)
        elif dims:
            indexing.hnsw_ensure(dims)  # after the first load of this size: built once
            indexing.collection_index_sync(
                collection.pk, dims=dims, chunks=collection_chunk_total(collection.pk)
            )
        return DocStatus.READY
    except Stop:
        return "stopped"
    except (extraction.ExtractionError, EmbeddingFailed, FileNotFoundError) as exc:
        message = (
            str(exc) if not isinstance(exc, FileNotFoundError) else "The stored file is missing."
        )
        if message == "cancelled":
            return "stopped"
        _fail(document_id, message)
        return DocStatus.FAILED
    except Exception:
        logger.exception("Ingesting document %s failed", document_id)
        _fail(document_id, "Something went wrong on our side while reading this document.")
        return DocStatus.FAILED


def _fail(document_id: int, message: str) -> None:
    Document.objects.filter(pk=document_id, status=DocStatus.PROCESSING).update(
        status=DocStatus.FAILED, error=message[:500], finished_at=timezone.now()
    )


REEMBED_BATCH = 64


def collection_chunk_total(collection_id: int) -> int:
    """Chunks of the collection's ready documents (what search decides its path on)."""
    from django.db.models import Sum

    return (
        Document.objects.filter(collection_id=collection_id, status=DocStatus.READY).aggregate(
            total=Sum("chunk_count")
        )["total"]
        or 0
    )


def collection_reembed(*, collection_id: int, user_id: int, generation: int) -> str:
    """Re-embed every chunk whose vector belongs to an older model, in batches, until none is
    left. A newer model change (another generation) makes this run stop: its own task goes on."""
    collection = Collection.objects.filter(pk=collection_id).first()
    if collection is None or collection.generation != generation:
        return "superseded"
    try:
        user = _actor(user_id)
        total = (
            Chunk.objects.filter(collection_id=collection_id).exclude(generation=generation).count()
        )
        done = 0
        while True:
            batch = list(
                Chunk.objects.filter(collection_id=collection_id)
                .exclude(generation=generation)
                .order_by("id")
                .values_list("id", "heading", "text")[:REEMBED_BATCH]
            )
            if not batch:
                break
            texts = [f"{h}\n{t}" if h else t for _, h, t in batch]
            vectors = embed_texts(collection=collection, texts=texts, user=user)
            dims = len(vectors[0])
            with transaction.atomic():
                locked = Collection.objects.select_for_update().get(pk=collection_id)
                if locked.generation != generation:
                    return "superseded"
                from django.db import connection

                with connection.cursor() as cursor:
                    cursor.execute(
                        "UPDATE rag_chunk SET embedding = v.e::halfvec, dims = %s, generation = %s "
                        "FROM unnest(%s::bigint[], %s::text[]) AS v(id, e) WHERE rag_chunk.id = v.id",
                        [
                            dims,
                            generation,
                            [pk for pk, _, _ in batch],
                            ["[" + ",".join(f"{x:.6g}" for x in vec) + "]" for vec in vectors],
                        ],
                    )
                done += len(batch)
                Collection.objects.filter(pk=collection_id).update(
                    embedding_dims=dims,
                    reembed_progress=min(99, int(done * 100 / max(1, total))),
                )
        Collection.objects.filter(pk=collection_id, generation=generation).update(
            reembed_state="", reembed_progress=100
        )
        collection.refresh_from_db()
        if collection.embedding_dims:
            indexing.hnsw_ensure(collection.embedding_dims)
        indexing.collection_index_sync(
            collection_id,
            dims=collection.embedding_dims,
            chunks=collection_chunk_total(collection_id),
        )
        return "done"
    except EmbeddingFailed as exc:
        Collection.objects.filter(pk=collection_id, generation=generation).update(
            reembed_state="failed", reembed_error=str(exc)[:300]
        )
        return "failed"
