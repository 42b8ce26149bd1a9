"""Ranking correctness of `chunk_search`'s vector branch against an exact search, on synthetic
vectors written with the product's COPY (no embedding model involved)."""

from __future__ import annotations

import numpy as np
from django.db import connection

from rag import indexing, selectors, services
from rag.models import Document
from rag.tests.conftest import add_text

DIMS = 384
# Real chunks are ~600–1,000 characters: row size is what makes the planner's costs realistic.
FILLER = " ".join(["retrieval", "augmented", "generation", "with", "postgres", "vectors"] * 15)


def load_synthetic(alice, *, collections: int, per_collection: int, seed: int = 7):
    """`collections` collections of alice's, each with one ready document of `per_collection`
    clustered unit vectors (rounded to half precision, as stored). Returns the collections and,
    per collection, (chunk ids, vectors)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, DIMS)).astype(np.float32)
    made, docs, vectors = [], [], []
    for i in range(collections):
        collection = services.collection_create(actor=alice, name=f"synthetic {i}")
        made.append(collection)
        docs.append(
            Document.objects.create(
                collection=collection,
                title=f"doc {i}",
                source_kind="paste",
                file_type="txt",
                sha256=f"synthetic-{i}",
                status="ready",
                chunk_count=per_collection,
            )
        )
        block = centres[rng.integers(0, len(centres), per_collection)]
        block = block + rng.normal(scale=0.35, size=block.shape).astype(np.float32)
        vectors.append((block / np.linalg.norm(block, axis=1, keepdims=True)).astype(np.float16))
    rows = (
        indexing.ChunkRow(
            collection_id=collection.pk,
            document_id=doc.pk,
            ordinal=n,
            text=f"chunk {n} of {collection.name}: " + FILLER,
            heading="",
            page=None,
            generation=collection.generation,
            vector=vectors[i][n],
        )
        # Interleaved, as documents of many users arrive: a collection's rows are spread over
        # the table, so reading them through the btree costs what it does in production.
        for n in range(per_collection)
        for i, (collection, doc) in enumerate(zip(made, docs, strict=True))
    )
    indexing.chunks_copy(rows)
    indexing.hnsw_ensure(DIMS)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE rag_chunk")
        cursor.execute(
            "SELECT collection_id, ordinal, id FROM rag_chunk WHERE collection_id = ANY(%s)",
            [[c.pk for c in made]],
        )
        ids = {(c, o): pk for c, o, pk in cursor.fetchall()}
    return made, [
        (np.array([ids[(c.pk, n)] for n in range(per_collection)]), vectors[i])
        for i, c in enumerate(made)
    ]


def vector_top(collection, query, k=10):
    plan = selectors._Plan([collection], vector=[float(x) for x in query])
    dims, params, exact = selectors._params(plan, "", k, -1.0, "vector")
    return [hit.chunk_id for hit in selectors._run(dims, params, exact)], exact


def test_a_small_collection_in_a_big_table_gets_its_exact_top_k_with_an_hnsw_index_present(
    alice,
):
    # Left free, the planner served the "exact" branch from the HNSW graph with the collection
    # as a plain filter: of ef_search candidates only the few in this collection survived.
    collections, data = load_synthetic(alice, collections=10, per_collection=500)
    rng = np.random.default_rng(11)
    found = total = 0
    for round_ in range(20):
        index = round_ % len(collections)
        ids, vectors = data[index]
        query = vectors[rng.integers(0, len(vectors))].astype(np.float32)
        query = query + rng.normal(scale=0.2, size=DIMS).astype(np.float32)
        query /= np.linalg.norm(query)
        sims = vectors.astype(np.float32) @ query
        truth = set(ids[np.argsort(-sims)[:10]].tolist())
        got, exact = vector_top(collections[index], query)
        assert exact
        assert len(got) == 10
        found += len(truth & set(got))
        total += 10
    assert found / total >= 0.99


def test_old_vectors_of_another_model_with_the_same_size_are_not_searched(
    alice, make_credential, ingest
):
    # The fake provider's vectors are a hash of the text, whatever the model: after a model
    # change, the old chunks' vectors would match the new query exactly if they took part.
    credential = make_credential(alice, "openai")
    collection = services.collection_create(
        actor=alice,
        name="Paid",
        embedder="provider",
        embedding_credential=credential,
        embedding_model="text-embedding-3-small",
    )
    add_text(alice, collection, "a.txt", "alpha beta")
    ingest()
    collection.refresh_from_db()
    found = selectors.chunk_search(
        user=alice, collections=[collection], query="alpha beta", mode="vector", threshold=-1
    )
    assert [hit.text for hit in found.hits] == ["alpha beta"]
    updated = services.collection_update(
        actor=alice,
        collection=collection,
        embedder="provider",
        embedding_credential=credential,
        embedding_model="text-embedding-3-large",
    )
    updated.embedding_dims = 16  # the same size as before: only the generation tells them apart
    updated.save(update_fields=["embedding_dims"])
    stale = selectors.chunk_search(
        user=alice, collections=[updated], query="alpha beta", mode="vector", threshold=-1
    )
    assert stale.hits == []
