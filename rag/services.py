"""Writes for collections and documents. Ingestion itself runs in the task worker
(rag.ingestion, rag.tasks); these functions validate, store and enqueue."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from accounts import access
from accounts.access import Action
from accounts.models import Team
from providers.models import ProviderCredential
from rag import extraction, uploads
from rag.chunking import MAX_SIZE, MIN_SIZE
from rag.embedders import UnknownModel, builtin_model
from rag.models import Collection, DocStatus, Document, Embedder, SourceKind
from workbench import egress

logger = logging.getLogger(__name__)

MAX_PASTE_CHARS = 1_000_000


def max_documents() -> int:
    return int(getattr(settings, "WORKBENCH_MAX_DOCUMENTS_PER_COLLECTION", 10_000))


def _next_generation() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval('rag_generation_seq')")
        return cursor.fetchone()[0]


def _check_embedding(actor, embedder: str, credential, model: str) -> tuple:
    """(credential, model id) for a collection's embedder; a built-in one has no credential and
    a built-in model id (blank: the default)."""
    if embedder == Embedder.BUILTIN:
        try:
            return None, builtin_model((model or "").strip()).id
        except UnknownModel as exc:
            raise ValidationError({"embedding_model": str(exc)}) from None
    if embedder != Embedder.PROVIDER:
        raise ValidationError({"embedder": "Pick the built-in embedder or a provider's model."})
    if credential is None:
        raise ValidationError(
            {"embedding_credential": "Pick the provider credential to embed with."}
        )
    if not isinstance(credential, ProviderCredential):
        credential = access.get_for(actor, ProviderCredential, credential, Action.USE)
    else:
        access.require(actor, credential, Action.USE)
    if not credential.preset_row.embeddings:
        raise ValidationError(
            {"embedding_credential": f"{credential.preset_row.label} does not offer embeddings."}
        )
    model = (model or "").strip()
    if not model:
        raise ValidationError(
            {"embedding_model": "Name the embedding model, e.g. text-embedding-3-small."}
        )
    return credential, model[:200]


def _check_chunking(size, overlap) -> tuple[int, int]:
    size = int(size)
    overlap = int(overlap)
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValidationError({"chunk_size": f"Between {MIN_SIZE} and {MAX_SIZE} characters."})
    if not 0 <= overlap <= size // 2:
        raise ValidationError({"chunk_overlap": "Between 0 and half the chunk size."})
    return size, overlap


@transaction.atomic
def collection_create(
    *,
    actor,
    name: str,
    description: str = "",
    owner_team: Team | None = None,
    embedder: str = Embedder.BUILTIN,
    embedding_credential=None,
    embedding_model: str = "",
    chunk_size: int = 1000,
    chunk_overlap: int = 150,
) -> Collection:
    if owner_team is not None:
        access.require(actor, owner_team, Action.WRITE)
    name = extraction.clean_text(name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the collection a name."})
    credential, model = _check_embedding(actor, embedder, embedding_credential, embedding_model)
    size, overlap = _check_chunking(chunk_size, chunk_overlap)
    collection = Collection(
        name=name[:120],
        description=extraction.clean_text(description or "").strip()[:2000],
        embedder=embedder,
        embedding_credential=credential,
        embedding_model=model,
        embedding_dims=builtin_model(model).dims if embedder == Embedder.BUILTIN else None,
        generation=_next_generation(),
        chunk_size=size,
        chunk_overlap=overlap,
        created_by=actor,
    )
    collection.set_owner(owner_team or actor)
    collection.save()
    return collection


@transaction.atomic
def collection_update(*, actor, collection: Collection, **changes) -> Collection:
    """Rename, describe, change chunking (applies to documents added later) or change the
    embedding model — which re-embeds every chunk in the background."""
    access.require(actor, collection, Action.WRITE)
    collection = Collection.objects.select_for_update().get(pk=collection.pk)
    if "name" in changes and changes["name"] is not None:
        name = extraction.clean_text(changes["name"]).strip()
        if not name:
            raise ValidationError({"name": "Give the collection a name."})
        collection.name = name[:120]
    if "description" in changes and changes["description"] is not None:
        collection.description = extraction.clean_text(changes["description"]).strip()[:2000]
    if changes.get("chunk_size") is not None or changes.get("chunk_overlap") is not None:
        collection.chunk_size, collection.chunk_overlap = _check_chunking(
            changes.get("chunk_size") or collection.chunk_size,
            changes.get("chunk_overlap")
            if changes.get("chunk_overlap") is not None
            else collection.chunk_overlap,
        )
    reembed = False
    if any(
        changes.get(key) is not None
        for key in ("embedder", "embedding_model", "embedding_credential")
    ):
        embedder = changes.get("embedder") or collection.embedder
        same_kind = embedder == collection.embedder
        # Unnamed parts of the model stay as they are — unless the kind changes: a provider's
        # model id means nothing to the built-in embedder (blank there: its default model).
        credential, model = _check_embedding(
            actor,
            embedder,
            changes.get("embedding_credential")
            or (collection.embedding_credential if same_kind else None),
            changes["embedding_model"]
            if changes.get("embedding_model") is not None
            else (collection.embedding_model if same_kind else ""),
        )
        current_model = (
            collection.builtin_model.id
            if collection.embedder == Embedder.BUILTIN
            else collection.embedding_model
        )
        if (embedder, credential and credential.pk, model) != (
            collection.embedder,
            collection.embedding_credential_id,
            current_model,
        ):
            collection.embedder = embedder
            collection.embedding_credential = credential
            collection.embedding_model = model
            collection.embedding_dims = (
                builtin_model(model).dims if embedder == Embedder.BUILTIN else None
            )
            collection.generation = _next_generation()
            collection.reembed_state, collection.reembed_progress = "running", 0
            collection.reembed_error = ""
            reembed = True
    collection.updated_at = timezone.now()
    collection.save()
    if reembed:
        from rag.tasks import reembed_collection

        generation = collection.generation
        transaction.on_commit(
            lambda: reembed_collection.enqueue(collection.pk, actor.pk, generation)
        )
    return collection


def collection_delete(*, actor, collection: Collection) -> None:
    """Its documents, chunks, stored uploads and own HNSW graphs go (the files and graphs once
    the deletion commits: `storage_release_on_delete`)."""
    access.require(actor, collection, Action.MANAGE if collection.owner_team_id else Action.WRITE)
    collection.delete()


def storage_release_on_delete(sender, instance, **kwargs) -> None:
    """pre_delete receiver for collections and documents (rag.apps): a document's stored upload
    and a collection's own graphs go once the deletion commits (a rollback keeps them) — however
    the row goes: here, or by cascade when its owner (an account, a team) is deleted, which
    `accounts` can't tell rag about."""
    if isinstance(instance, Document):
        if instance.stored_name:
            transaction.on_commit(lambda: uploads.discard(instance.stored_name))
        return
    from rag.tasks import drop_collection_indexes

    pk = instance.pk
    transaction.on_commit(lambda: drop_collection_indexes.enqueue(pk))


# --- Documents -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One line of an upload's per-file report."""

    name: str
    status: str  # added | duplicate | refused
    message: str = ""
    document: Document | None = None


def _room_for(collection: Collection, count: int = 1) -> None:
    if collection.documents.count() + count > max_documents():
        raise ValidationError(f"A collection holds at most {max_documents():,} documents.")


def _enqueue(document: Document, actor) -> None:
    from rag.tasks import ingest_document

    transaction.on_commit(lambda: ingest_document.enqueue(document.pk, actor.pk))


def document_add_bytes(
    *,
    actor,
    collection: Collection,
    filename: str,
    data: bytes,
    source_kind: str = SourceKind.UPLOAD,
) -> Outcome:
    """Sniff, dedup, store under a generated name and queue one file. Never raises for the
    file's content: a refusal is an Outcome with the reason."""
    access.require(actor, collection, Action.WRITE)
    filename = uploads.clean_filename(extraction.clean_text(filename or ""))[:255] or "untitled.txt"
    if len(data) > uploads.max_upload_bytes():
        return Outcome(
            filename,
            "refused",
            f"Larger than the {uploads.max_upload_bytes() / 1048576:g} MB limit.",
        )
    if not data:
        return Outcome(filename, "refused", "The file is empty.")
    try:
        file_type = extraction.sniff(data, filename)
    except extraction.ExtractionError as exc:
        return Outcome(filename, "refused", str(exc))
    digest = hashlib.sha256(data).hexdigest()
    with transaction.atomic():
        Collection.objects.select_for_update().filter(pk=collection.pk).first()
        existing = collection.documents.filter(sha256=digest).first()
        if existing is not None:
            return Outcome(filename, "duplicate", f"Same content as “{existing.title}”.", existing)
        try:
            _room_for(collection)
        except ValidationError as exc:
            return Outcome(filename, "refused", exc.messages[0])
        stored = uploads.store(data)
        document = Document.objects.create(
            collection=collection,
            title=filename.rsplit("/", 1)[-1][:300],
            source_kind=source_kind,
            source=filename,
            file_type=file_type,
            size_bytes=len(data),
            sha256=digest,
            stored_name=stored,
            created_by=actor,
        )
        _enqueue(document, actor)
    return Outcome(filename, "added", "", document)


def document_paste(*, actor, collection: Collection, title: str, text: str) -> Outcome:
    text = text or ""
    if len(text) > MAX_PASTE_CHARS:
        raise ValidationError({"text": f"At most {MAX_PASTE_CHARS:,} characters."})
    if not text.strip():
        raise ValidationError({"text": "Paste some text."})
    title = extraction.clean_text(title or "").strip() or text.strip().splitlines()[0][:80]
    outcome = document_add_bytes(
        actor=actor,
        collection=collection,
        filename=title if title.lower().endswith((".md", ".txt")) else f"{title}.md",
        data=extraction.clean_text(text).encode(),
        source_kind=SourceKind.PASTE,
    )
    if outcome.document is not None and outcome.status == "added":
        Document.objects.filter(pk=outcome.document.pk).update(title=title[:300])
        outcome.document.title = title[:300]
    return outcome


def document_add_url(*, actor, collection: Collection, url: str) -> Document:
    """Queue a web page; the worker fetches it through the egress guard."""
    access.require(actor, collection, Action.WRITE)
    url = (url or "").strip()
    try:
        egress.parse_url(url)
    except egress.EgressError as exc:
        raise ValidationError({"url": str(exc)}) from None
    with transaction.atomic():
        _room_for(collection)
        document = Document.objects.create(
            collection=collection,
            title=url[:300],
            source_kind=SourceKind.URL,
            source=url[:2000],
            file_type="html",
            # Until the page is fetched its hash is unknown: a unique placeholder.
            sha256="url:"
            + hashlib.sha256(f"{url}{timezone.now().isoformat()}".encode()).hexdigest()[:60],
            created_by=actor,
        )
        _enqueue(document, actor)
    return document


def document_cancel(*, actor, document: Document) -> Document:
    access.require(actor, document.collection, Action.WRITE)
    updated = Document.objects.filter(
        pk=document.pk, status__in=[DocStatus.QUEUED, DocStatus.PROCESSING]
    ).update(status=DocStatus.CANCELLED, error="Cancelled.", finished_at=timezone.now())
    document.refresh_from_db()
    if not updated and document.status not in {DocStatus.CANCELLED}:
        raise ValidationError("Only a queued or running ingestion can be cancelled.")
    return document


def document_retry(*, actor, document: Document) -> Document:
    access.require(actor, document.collection, Action.WRITE)
    if document.status not in {DocStatus.FAILED, DocStatus.CANCELLED}:
        raise ValidationError("Only a failed or cancelled document can be retried.")
    with transaction.atomic():
        Document.objects.filter(pk=document.pk).update(
            status=DocStatus.QUEUED, progress=0, error="", finished_at=None
        )
        _enqueue(document, actor)
    document.refresh_from_db()
    return document


def document_delete(*, actor, document: Document) -> None:
    """Removes the document, its chunks (cascade) and its stored file. A running ingestion
    notices the document is gone and stops."""
    access.require(actor, document.collection, Action.WRITE)
    document.delete()  # its stored file goes once this commits (storage_release_on_delete)
