"""P7 (filtered retrieval recall@10 and latency) and P8 (COPY ingest rows/s, HNSW build time).

Clustered synthetic 384-d data with exact ground truth: `--rows` chunks spread over
`--collections` collections (so a query filtered to one collection keeps ~1/N of the table),
written with the product's binary COPY (`rag.indexing.chunks_copy`) into the real `rag_chunk`
table (its tsvector column, GIN and btree indexes included), then the HNSW index is built
after the load (`rag.indexing.hnsw_ensure`), then queries run the product's vector statement
(`rag.selectors._run`, the one `chunk_search` uses) filtered by collection, compared with an
exact numpy search over the same (half-precision) vectors.

    .venv/bin/python bench/p7_p8_vectors.py --rows 100000
    .venv/bin/python bench/p7_p8_vectors.py --rows 1000000 --queries 500   # quiet machine

Uses its own data directory (.data/bench) and deletes what it made at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "vector",
    "index",
    "search",
    "retrieval",
    "postgres",
    "chunk",
    "document",
    "table",
    "code",
    "heading",
    "paragraph",
    "model",
    "token",
    "budget",
    "team",
    "user",
    "collection",
    "cluster",
    "recall",
    "latency",
    "query",
    "memory",
    "disk",
    "page",
    "cache",
    "embedding",
    "cosine",
    "distance",
    "graph",
    "layer",
    "neighbour",
    "build",
    "load",
    "copy",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--collections", type=int, default=10)
    parser.add_argument("--clusters", type=int, default=500)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef-search", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="Keep the rows (rerun queries).")
    parser.add_argument("--explain", action="store_true", help="Print the first query's plan.")
    parser.add_argument(
        "--exact-max", type=int, default=None, help="selectors.EXACT_MAX_CHUNKS (0: always HNSW)."
    )
    args = parser.parse_args()
    harness.django_setup()
    import numpy as np
    from django.db import connection, transaction

    from accounts.models import User
    from rag import indexing, selectors, services
    from rag.models import Chunk, Collection, Document

    if args.ef_search:
        selectors.EF_SEARCH = args.ef_search
    if args.exact_max is not None:
        selectors.EXACT_MAX_CHUNKS = args.exact_max

    def percentile(values, p):
        return float(np.percentile(values, p))

    print(f"load: {os.getloadavg()}  rows={args.rows:,} collections={args.collections}")
    rng = np.random.default_rng(7)
    random.seed(7)
    dims = 384
    centers = rng.normal(size=(args.clusters, dims)).astype(np.float32)
    user, _ = User.objects.get_or_create(username="bench-rag")
    Collection.objects.filter(created_by=user).delete()
    collections = [
        services.collection_create(actor=user, name=f"bench {i}") for i in range(args.collections)
    ]
    docs = [
        Document.objects.create(
            collection=c,
            title="bench",
            source_kind="paste",
            file_type="txt",
            sha256=f"bench{c.pk}",
            status="ready",
        )
        for c in collections
    ]
    # Vectors: cluster centre + noise, normalised, rounded to half precision like halfvec.
    assignment = rng.integers(0, args.collections, size=args.rows)
    vectors = np.empty((args.rows, dims), dtype=np.float16)
    for start in range(0, args.rows, 100_000):
        end = min(args.rows, start + 100_000)
        base = centers[rng.integers(0, args.clusters, size=end - start)]
        block = base + rng.normal(scale=0.35, size=base.shape).astype(np.float32)
        vectors[start:end] = block / np.linalg.norm(block, axis=1, keepdims=True)
    texts = [" ".join(random.choices(WORDS, k=90)) for _ in range(min(args.rows, 50_000))]

    def rows():
        for i in range(args.rows):
            c = int(assignment[i])
            yield indexing.ChunkRow(
                collection_id=collections[c].pk,
                document_id=docs[c].pk,
                ordinal=i,
                text=texts[i % len(texts)],
                heading="",
                page=None,
                generation=collections[c].generation,
                vector=vectors[i],
            )

    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {indexing.hnsw_index_name(dims)}")
    started = time.perf_counter()
    with transaction.atomic():
        count = indexing.chunks_copy(rows())
    copy_s = time.perf_counter() - started
    for i, document in enumerate(docs):  # what ingestion records; chunk_search reads it
        Document.objects.filter(pk=document.pk).update(chunk_count=int((assignment == i).sum()))
    print(
        f"P8 COPY: {count:,} rows (384-d halfvec + ~600-char text, tsvector/GIN/btree maintained) "
        f"in {copy_s:.1f} s = {count / copy_s:,.0f} rows/s"
    )
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET max_parallel_maintenance_workers = 1")
    indexing.hnsw_ensure(dims, maintenance_mem="1GB")
    build_s = time.perf_counter() - started
    print(
        f"P8 HNSW build (m={indexing.HNSW_M}, ef_construction={indexing.HNSW_EF_CONSTRUCTION}): "
        f"{build_s:.1f} s for {count:,} × {dims}"
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE rag_chunk")

    # P7: filtered top-10 against exact ground truth.
    ids_by_collection = {}
    chunk_ids = dict(
        Chunk.objects.filter(collection__in=collections).values_list("ordinal", "id").iterator()
    )
    for c in range(args.collections):
        ids_by_collection[c] = np.flatnonzero(assignment == c)
    recalls, latencies = [], []
    for q in range(args.queries):
        c = q % args.collections
        centre = centers[rng.integers(0, args.clusters)]
        query = centre + rng.normal(scale=0.35, size=dims).astype(np.float32)
        query /= np.linalg.norm(query)
        members = ids_by_collection[c]
        sims = vectors[members].astype(np.float32) @ query.astype(np.float16).astype(np.float32)
        truth = {chunk_ids[int(members[i])] for i in np.argsort(-sims)[:10]}
        plan = selectors._Plan([collections[c]], vector=[float(x) for x in query])
        dims_, params, exact = selectors._params(plan, "", 10, -1.0, "vector")
        if args.explain and q == 0:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('hnsw.ef_search', %s, true), "
                    "set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                    "set_config('enable_seqscan', %s, true)",
                    [str(selectors.EF_SEARCH), "on" if exact else "off"],
                )
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + selectors._sql(dims_, exact), params)
                print("\n".join(row[0] for row in cursor.fetchall()))
        started = time.perf_counter()
        hits = selectors._run(dims_, params, exact)
        latencies.append((time.perf_counter() - started) * 1000)
        recalls.append(len(truth & {h.chunk_id for h in hits}) / 10)
    print(
        f"P7 filtered (1/{args.collections} of the table per query), ef_search={selectors.EF_SEARCH}, "
        f"{'exact' if exact else 'HNSW'} path, "
        f"iterative_scan=relaxed_order: recall@10 {np.mean(recalls):.3f} (min {min(recalls):.1f}), "
        f"p50 {percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms "
        f"over {args.queries} queries (one connection, statement + fetch + highlight)"
    )
    print(f"load after: {os.getloadavg()}")
    if not args.keep:
        Collection.objects.filter(created_by=user).delete()


if __name__ == "__main__":
    main()
