"""Collections of documents, their chunks (pgvector `halfvec` + full text) and ingestion state.

Vectors of every collection live in one table, whatever their dimension: `Chunk.embedding` is an
unsized `halfvec` and `Chunk.dims` says its size. HNSW indexes are partial expression indexes per
dimension (`(embedding::halfvec(384)) WHERE dims = 384`, see the migrations and `indexing.py`),
so a 384-d collection and a 1536-d one share the table and each is searched through its own
index. `Chunk.generation` ties a vector to the embedding model that made it: changing a
collection's model gives it a new generation, and only chunks of the current one take part in
vector search while the background re-embedding catches up.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.utils import timezone
from pgvector.django import HalfVectorField

from accounts.ownership import Owned
from rag.embedders import BUILTIN_MODELS, DEFAULT_MODEL, BuiltinModel


class Embedder(models.TextChoices):
    BUILTIN = "builtin", "A built-in offline model"
    PROVIDER = "provider", "A provider's embedding model"


class Collection(Owned):
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True, max_length=2000)
    embedder = models.CharField(max_length=10, choices=Embedder.choices, default=Embedder.BUILTIN)
    # For provider embeddings: the credential (used through the gate, metered) and model id. For
    # built-in ones: a `rag.embedders.BUILTIN_MODELS` id (blank, before migration 0006: MiniLM).
    embedding_credential = models.ForeignKey(
        "providers.ProviderCredential",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    embedding_model = models.CharField(max_length=200, blank=True)
    # Known after the first vectors arrive (a provider's model says its size only by answering).
    embedding_dims = models.PositiveIntegerField(null=True, blank=True)
    # Globally unique (a sequence): vectors of the current model carry this number.
    generation = models.BigIntegerField(default=0)
    chunk_size = models.PositiveIntegerField(default=1000)  # characters
    chunk_overlap = models.PositiveIntegerField(default=150)
    # Re-embedding after a model change: "" (none), "running", "failed"; progress 0–100.
    reembed_state = models.CharField(max_length=10, blank=True)
    reembed_progress = models.PositiveSmallIntegerField(default=0)
    reembed_error = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # The files attached in one conversation (chat makes one per conversation that needs it):
    # left out of the collections list and pickers, reached through the conversation.
    for_conversation = models.BooleanField(default=False)

    class Meta(Owned.Meta):
        ordering = ["name", "id"]
        indexes = [
            models.Index(fields=["owner_user", "name"]),
            models.Index(fields=["owner_team", "name"]),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def builtin_model(self) -> BuiltinModel:
        """The built-in model of a built-in collection (an unknown id, which only a hand-edited
        row can hold, reads as the default rather than breaking every page)."""
        return BUILTIN_MODELS.get(self.embedding_model) or BUILTIN_MODELS[DEFAULT_MODEL]

    @property
    def model_label(self) -> str:
        if self.embedder == Embedder.BUILTIN:
            return self.builtin_model.name
        credential = self.embedding_credential
        return f"{self.embedding_model} via {credential.name if credential else 'a deleted credential'}"


class SourceKind(models.TextChoices):
    UPLOAD = "upload", "Upload"
    PASTE = "paste", "Pasted text"
    URL = "url", "Web page"


class DocStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PROCESSING = "processing", "Processing"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Document(models.Model):
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(max_length=300)
    source_kind = models.CharField(max_length=10, choices=SourceKind.choices)
    source = models.CharField(max_length=2000, blank=True)  # original file name or URL
    # What the bytes are (sniffed, not what the name or browser claimed): txt, md, html, pdf…
    file_type = models.CharField(max_length=10)
    size_bytes = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    stored_name = models.CharField(max_length=80, blank=True)  # generated, under the data dir
    status = models.CharField(max_length=12, choices=DocStatus.choices, default=DocStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)  # 0–100
    error = models.CharField(max_length=500, blank=True)
    page_count = models.PositiveIntegerField(null=True, blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # The same content once per collection (dedup by hash).
            models.UniqueConstraint(
                fields=["collection", "sha256"], name="rag_document_unique_hash"
            )
        ]
        indexes = [models.Index(fields=["collection", "status"])]

    def __str__(self) -> str:
        return self.title

    @property
    def is_active(self) -> bool:
        return self.status in {DocStatus.QUEUED, DocStatus.PROCESSING}


class Chunk(models.Model):
    """A piece of a document with where it came from (page, heading) for citations."""

    # No single-column indexes on the two keys: the composite ones below lead with them and
    # serve every lookup (and cascade) by collection or document; each index costs ingest time.
    collection = models.ForeignKey(
        Collection, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    document = models.ForeignKey(
        Document, on_delete=models.CASCADE, related_name="chunks", db_index=False
    )
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    heading = models.CharField(max_length=500, blank=True)
    page = models.PositiveIntegerField(null=True, blank=True)
    generation = models.BigIntegerField(default=0)
    dims = models.PositiveSmallIntegerField(default=0)  # 0: no vector (yet)
    embedding = HalfVectorField(null=True, blank=True)
    tsv = models.GeneratedField(
        expression=SearchVector("text", config="english"),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["document", "ordinal"]
        indexes = [
            # Covering: the exact vector search of a collection reads its vectors from this
            # index alone (an index-only scan, no visit to the wide rows scattered over the
            # table): ~0.5 µs a chunk instead of 2–5 (docs/performance.md, P7).
            models.Index(
                fields=["collection", "generation"],
                include=["dims", "id", "embedding"],
                name="rag_chunk_exact",
            ),
            models.Index(fields=["document", "ordinal"]),
            # The collection inside the full-text index (btree_gin): a text query visits only
            # its collections' matches, not every tenant's (1M chunks in 10 collections: 1,253
            # heap visits instead of 12,100; docs/performance.md, P7).
            GinIndex(fields=["collection", "tsv"], name="rag_chunk_coll_tsv"),
        ]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.ordinal}"
