"""Ranking correctness of `chunk_search`'s vector branch against an exact search, on synthetic
vectors written with the product's COPY (no embedding model involved)."""

from __future__ import annotations

import numpy as np
from django.db import connection
from django_tasks_db.models import DBTaskResult

from rag import indexing, selectors, services
from rag.models import Document
from rag.tasks import drop_collection_indexes
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


def own_indexes(collection_id) -> list[str]:
    with connection.cursor() as cursor:
        return indexing._collection_indexes(cursor, collection_id)


def test_a_big_collection_is_searched_through_its_own_graph_until_it_is_deleted(
    alice, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(indexing, "OWN_INDEX_MIN_CHUNKS", 200)
    monkeypatch.setattr(selectors, "EXACT_MAX_CHUNKS", 200)
    (big, small), data = load_synthetic(alice, collections=2, per_collection=300)
    big_id = big.pk
    assert indexing.collection_index_sync(big.pk, dims=DIMS, chunks=300)
    assert not indexing.collection_index_sync(big.pk, dims=DIMS, chunks=300)  # there already
    assert own_indexes(big_id) == [f"rag_chunk_hnsw_384_c{big.pk}"]
    ids, vectors = data[0]
    query = vectors[5].astype(np.float32)
    plan = selectors._Plan([big], vector=[float(x) for x in query])
    dims, params, exact = selectors._params(plan, "", 10, -1.0, "vector")
    assert not exact
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('enable_seqscan', 'off', true)")
        cursor.execute("EXPLAIN " + selectors._sql(dims, exact), params)
        plan_text = "\n".join(row[0] for row in cursor.fetchall())
    assert f"rag_chunk_hnsw_384_c{big.pk}" in plan_text
    got, _ = vector_top(big, query)
    sims = vectors.astype(np.float32) @ query
    assert got[0] == ids[5] and len(set(got) & set(ids[np.argsort(-sims)[:10]].tolist())) >= 9
    # Searched with another collection, it goes through the shared graph, filtered.
    both = selectors._Plan([big, small], vector=[float(x) for x in query])
    dims, params, exact = selectors._params(both, "", 10, -1.0, "vector")
    hits = selectors._run(dims, params, exact)
    assert hits[0].chunk_id == ids[5]
    # A model of another size: the old graph goes; too small: none.
    indexing.collection_index_sync(big.pk, dims=16, chunks=10)
    assert own_indexes(big_id) == []
    indexing.collection_index_sync(big.pk, dims=DIMS, chunks=300)
    with django_capture_on_commit_callbacks(execute=True):
        services.collection_delete(actor=alice, collection=big)
    queued = DBTaskResult.objects.get(task_path="rag.tasks.drop_collection_indexes")
    assert queued.args_kwargs["args"] == [big_id]
    drop_collection_indexes.call(big_id)  # what the worker runs
    assert own_indexes(big_id) == []


def test_ingesting_past_the_size_gives_the_collection_its_own_graph(
    alice, make_credential, ingest, monkeypatch
):
    monkeypatch.setattr(indexing, "OWN_INDEX_MIN_CHUNKS", 2)
    collection = services.collection_create(
        actor=alice,
        name="Paid",
        embedder="provider",
        embedding_credential=make_credential(alice, "openai"),
        embedding_model="text-embedding-3-small",
    )
    add_text(alice, collection, "a.txt", "alpha beta")
    ingest()
    assert own_indexes(collection.pk) == []  # one chunk
    add_text(alice, collection, "b.txt", "gamma delta")
    ingest()
    assert own_indexes(collection.pk) == [f"rag_chunk_hnsw_16_c{collection.pk}"]


def test_a_bulk_load_is_searched_the_same_through_every_path(alice, monkeypatch):
    # After a bulk COPY and the index builds that follow it, hybrid results are the same
    # whether the vector branch is exact, walks the collection's own graph or the shared one
    # (at this size HNSW finds the true neighbours).
    (collection,), data = load_synthetic(alice, collections=1, per_collection=400)
    _, vectors = data[0]
    query = [float(x) for x in vectors[7]]

    def search(exact_max: int, own: bool):
        monkeypatch.setattr(selectors, "EXACT_MAX_CHUNKS", exact_max)
        indexing.collection_index_sync(collection.pk, dims=DIMS, chunks=400 if own else 0)
        plan = selectors._Plan([collection], vector=query)
        dims, params, exact = selectors._params(plan, "retrieval postgres", 10, -1.0, "hybrid")
        assert exact == (exact_max >= 400)
        return [(hit.chunk_id, round(hit.score, 9)) for hit in selectors._run(dims, params, exact)]

    monkeypatch.setattr(indexing, "OWN_INDEX_MIN_CHUNKS", 100)
    exact = search(10_000, own=False)
    assert len(exact) == 10
    assert search(0, own=True) == exact
    assert search(0, own=False) == exact


def test_the_exact_path_reads_vectors_from_the_covering_index(alice):
    (collection,), data = load_synthetic(alice, collections=1, per_collection=50)
    plan = selectors._Plan([collection], vector=[float(x) for x in data[0][1][0]])
    dims, params, exact = selectors._params(plan, "", 10, -1.0, "vector")
    assert exact
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('enable_seqscan', 'off', true)")
        cursor.execute("EXPLAIN " + selectors._sql(dims, exact), params)
        plan_text = "\n".join(row[0] for row in cursor.fetchall())
    # An index-only scan once autovacuum has marked the pages all-visible; a bitmap scan of
    # the same index before (as here, inside the test's transaction).
    assert "rag_chunk_exact" in plan_text


def test_a_text_query_reads_only_its_collections_matches_from_the_index(alice):
    # The collection is an index condition of the full-text GIN (btree_gin), not a filter
    # applied after fetching every tenant's matching rows (docs/performance.md, P7 at 1M).
    (collection, *_others), data = load_synthetic(alice, collections=10, per_collection=60)
    plan = selectors._Plan([collection], vector=[float(x) for x in data[0][1][0]])
    dims, params, exact = selectors._params(plan, "retrieval postgres", 10, -1.0, "text")
    with connection.cursor() as cursor:
        # At this size the collection's btree is the cheaper way in; at 100k chunks a
        # collection it is the GIN. Without the btree (dropped inside the test's
        # transaction) the plan shows what the GIN can take as its condition.
        cursor.execute("DROP INDEX rag_chunk_exact")
        cursor.execute("SELECT set_config('enable_seqscan', 'off', true)")
        cursor.execute("EXPLAIN " + selectors._sql(dims, exact), params)
        plan_text = "\n".join(row[0] for row in cursor.fetchall())
    scan = plan_text[plan_text.index("rag_chunk_coll_tsv") :]
    index_cond = scan[scan.index("Index Cond:") :].splitlines()[0]
    assert "collection_id" in index_cond and "tsv @@" in index_cond


def test_the_tsvector_stays_in_the_row_and_the_embedding_goes_out_of_line(db):
    # Ranking reads every match's tsvector; a TOASTed one costs ~4 buffer visits a match.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname, attstorage FROM pg_attribute WHERE attrelid = 'rag_chunk'::regclass"
            " AND attname IN ('tsv', 'embedding')"
        )
        assert dict(cursor.fetchall()) == {"tsv": "m", "embedding": "e"}


def test_a_graph_another_worker_is_building_is_left_to_it(alice, monkeypatch):
    # Two workers finishing documents of one collection: the second must neither build the
    # graph again nor drop the first one's build in progress (invalid until done).
    monkeypatch.setattr(indexing, "OWN_INDEX_MIN_CHUNKS", 100)
    (collection,), _ = load_synthetic(alice, collections=1, per_collection=150)
    other = connection.get_new_connection(connection.get_connection_params())
    try:
        other.autocommit = True
        other.execute(
            "SELECT pg_advisory_lock(%s, %s)", [indexing._LOCK_OWN, collection.pk % 2**31]
        )
        assert not indexing.collection_index_sync(collection.pk, dims=DIMS, chunks=150)
        assert own_indexes(collection.pk) == []
        other.execute(
            "SELECT pg_advisory_unlock(%s, %s)", [indexing._LOCK_OWN, collection.pk % 2**31]
        )
        assert indexing.collection_index_sync(collection.pk, dims=DIMS, chunks=150)
    finally:
        other.close()
