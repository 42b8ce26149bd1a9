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


def vocabulary(rng, size: int = 20_000) -> list[str]:
    """Pronounceable made-up words (the English stemmer keeps them apart), used with Zipf
    frequencies like real text: a few words in most chunks, most words in few."""
    consonants, vowels = list("bdfgklmnprstvz"), list("aeiou")
    words: set[str] = set()
    while len(words) < size:
        n = int(rng.integers(2, 5))
        words.add(
            "".join(
                consonants[int(rng.integers(len(consonants)))] + vowels[int(rng.integers(5))]
                for _ in range(n)
            )
        )
    return sorted(words)


def backend_cpu_ms(pid: int) -> float:
    """utime + stime of one PostgreSQL backend (10 ms ticks: use over many queries)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--collections", type=int, default=10)
    parser.add_argument("--clusters", type=int, default=500)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef-search", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="Keep the rows for --reuse.")
    parser.add_argument("--reuse", action="store_true", help="Query the rows a --keep run left.")
    parser.add_argument("--explain", action="store_true", help="Print the first query's plans.")
    parser.add_argument(
        "--exact-max", type=int, default=None, help="selectors.EXACT_MAX_CHUNKS (0: always HNSW)."
    )
    parser.add_argument(
        "--maintenance-mem",
        default="1GB",
        help="maintenance_work_mem for the HNSW builds (1M × 384 needs ~2GB to build in memory).",
    )
    parser.add_argument(
        "--no-own-index",
        action="store_true",
        help="Search big collections through the shared graph (drops their own graphs).",
    )
    parser.add_argument(
        "--ingest-parts",
        type=int,
        default=0,
        help="P8 breakdown: COPY this many rows into copies of the table with and without "
        "the tsvector column, btrees, foreign keys and GIN, then stop.",
    )
    parser.add_argument(
        "--exact-sizes",
        type=int,
        nargs="*",
        default=None,
        help="Also time the exact path on the first N chunks of one collection, for each N.",
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
    words = vocabulary(rng)
    zipf = 1.0 / np.arange(1, len(words) + 1) ** 1.07
    zipf /= zipf.sum()
    user, _ = User.objects.get_or_create(username="bench-rag")
    # Vectors: cluster centre + noise, normalised, rounded to half precision like halfvec.
    assignment = rng.integers(0, args.collections, size=args.rows)
    vectors = np.empty((args.rows, dims), dtype=np.float16)
    for start in range(0, args.rows, 100_000):
        end = min(args.rows, start + 100_000)
        base = centers[rng.integers(0, args.clusters, size=end - start)]
        block = base + rng.normal(scale=0.35, size=base.shape).astype(np.float32)
        vectors[start:end] = block / np.linalg.norm(block, axis=1, keepdims=True)
    n_texts = min(args.rows, 50_000)
    picks = rng.choice(len(words), size=(n_texts, 90), p=zipf)
    texts = [" ".join(words[i] for i in row) for row in picks]  # ~600 characters each

    def rows(collections, docs, count=None):
        for i in range(count or args.rows):
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

    existing = list(Collection.objects.filter(created_by=user).order_by("pk"))
    if args.reuse and len(existing) == args.collections:
        collections = existing
        docs = [c.documents.get() for c in collections]
        print("reusing the rows of a --keep run")
    else:
        Collection.objects.filter(created_by=user).delete()
        collections = [
            services.collection_create(actor=user, name=f"bench {i}")
            for i in range(args.collections)
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
        if args.ingest_parts:
            ingest_parts(args.ingest_parts, lambda n: rows(collections, docs, n))
            Collection.objects.filter(created_by=user).delete()
            return
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX IF EXISTS {indexing.hnsw_index_name(dims)}")
        started = time.perf_counter()
        with transaction.atomic():
            count = indexing.chunks_copy(rows(collections, docs))
        copy_s = time.perf_counter() - started
        for i, document in enumerate(docs):  # what ingestion records; chunk_search reads it
            Document.objects.filter(pk=document.pk).update(chunk_count=int((assignment == i).sum()))
        print(
            f"P8 COPY: {count:,} rows (384-d halfvec + ~600-char text) into rag_chunk as it is "
            f"in {copy_s:.1f} s = {count / copy_s:,.0f} rows/s"
        )
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SET max_parallel_maintenance_workers = 1")
        indexing.hnsw_ensure(dims, maintenance_mem=args.maintenance_mem)
        build_s = time.perf_counter() - started
        print(
            f"P8 HNSW build (m={indexing.HNSW_M}, ef_construction={indexing.HNSW_EF_CONSTRUCTION},"
            f" 1 parallel worker, maintenance_work_mem {args.maintenance_mem}): {build_s:.1f} s for {count:,} × {dims}"
        )
    if not args.no_own_index:
        started = time.perf_counter()
        built = sum(
            indexing.collection_index_sync(
                c.pk,
                dims=dims,
                chunks=int((assignment == i).sum()),
                maintenance_mem=args.maintenance_mem,
            )
            for i, c in enumerate(collections)
        )
        if built:
            print(
                f"P8 own HNSW graphs for {built} collections of ≥ "
                f"{indexing.OWN_INDEX_MIN_CHUNKS:,} chunks: {time.perf_counter() - started:.1f} s"
            )
    else:
        for c in collections:
            indexing.collection_indexes_drop(c.pk)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE rag_chunk")

    # P7: filtered top-10 against exact ground truth; hybrid and text-only latency beside it.
    chunk_ids = np.empty(args.rows, dtype=np.int64)
    for ordinal, pk in (
        Chunk.objects.filter(collection__in=collections).values_list("ordinal", "id").iterator()
    ):
        chunk_ids[ordinal] = pk
    ids_by_collection = {c: np.flatnonzero(assignment == c) for c in range(args.collections)}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    modes = ("vector", "text", "hybrid")
    latencies = {mode: [] for mode in modes}
    cpu = dict.fromkeys(modes, 0.0)
    recalls, hybrid_overlap, exact_seen, text_hits = [], [], set(), []
    for q in range(args.queries):
        c = q % args.collections
        centre = centers[rng.integers(0, args.clusters)]
        query = centre + rng.normal(scale=0.35, size=dims).astype(np.float32)
        query /= np.linalg.norm(query)
        # Two content words (websearch_to_tsquery ANDs them): one common, one less so — a
        # few to a few hundred matches per collection, ranked by ts_rank_cd.
        text = f"{words[int(rng.integers(10, 100))]} {words[int(rng.integers(100, 1000))]}"
        members = ids_by_collection[c]
        sims = vectors[members].astype(np.float32) @ query.astype(np.float16).astype(np.float32)
        truth = set(chunk_ids[members[np.argsort(-sims)[:10]]].tolist())
        for mode in modes:
            plan = selectors._Plan(
                [collections[c]], vector=None if mode == "text" else [float(x) for x in query]
            )
            dims_, params, exact = selectors._params(plan, text, 10, -1.0, mode)
            if dims_:
                exact_seen.add(exact)
            if args.explain and q == 0:
                explain(connection, transaction, selectors, dims_, params, exact, mode)
            cpu_before = backend_cpu_ms(backend)
            started = time.perf_counter()
            hits = selectors._run(dims_, params, exact)
            latencies[mode].append((time.perf_counter() - started) * 1000)
            cpu[mode] += backend_cpu_ms(backend) - cpu_before
            if mode == "vector":
                recalls.append(len(truth & {h.chunk_id for h in hits}) / 10)
                if recalls[-1] < 0.5:
                    print(f"  query {q}: recall {recalls[-1]:.1f} with {len(hits)} hits")
            elif mode == "text":
                text_hits.append(len(hits))
            elif mode == "hybrid":
                hybrid_overlap.append(len(truth & {h.chunk_id for h in hits}) / 10)
    path = "/".join(sorted("exact" if e else "HNSW" for e in exact_seen))
    print(
        f"P7 filtered (1/{args.collections} of the table per query), {path} path, "
        f"ef_search={selectors.EF_SEARCH}, iterative_scan=relaxed_order, {args.queries} queries, "
        f"one connection:"
    )
    print(f"  vector recall@10 {np.mean(recalls):.3f} (min {min(recalls):.1f})")
    for mode in modes:
        print(
            f"  {mode:6}: p50 {percentile(latencies[mode], 50):6.1f} ms, "
            f"p99 {percentile(latencies[mode], 99):6.1f} ms, "
            f"backend CPU {cpu[mode] / args.queries:5.1f} ms/query "
            f"(statement + fetch + highlight)"
        )
    print(
        f"  text hits per query {np.mean(text_hits):.1f}; hybrid top-10 ∩ vector truth: "
        f"{np.mean(hybrid_overlap):.2f} (full text moves the rest)"
    )
    if args.exact_sizes:
        exact_costs(args, connection, collections, ids_by_collection, chunk_ids, rng, backend)
    print(f"load after: {os.getloadavg()}")
    if not args.keep:
        Collection.objects.filter(created_by=user).delete()


def explain(connection, transaction, selectors, dims, params, exact, mode) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        if dims and not exact:
            cursor.execute(
                "SELECT set_config('hnsw.ef_search', %s, true), "
                "set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                "set_config('hnsw.max_scan_tuples', %s, true), "
                "set_config('enable_seqscan', 'off', true)",
                [str(selectors.EF_SEARCH), str(selectors.MAX_SCAN_TUPLES)],
            )
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + selectors._sql(dims, exact), params)
        print(f"--- {mode}, {'exact' if exact else 'HNSW'} path")
        for (line,) in cursor.fetchall():
            print(line if len(line) < 240 else line[:240] + "…")


def exact_costs(args, connection, collections, ids_by_collection, chunk_ids, rng, backend):
    """The exact path's cost against the number of chunks it sorts (to tune EXACT_MAX_CHUNKS):
    the vector statement over the first N chunks of collection 0 (ids below a bound)."""
    import numpy as np

    members = np.sort(chunk_ids[ids_by_collection[0]])
    for size in args.exact_sizes:
        if size > len(members):
            break
        bound = int(members[size - 1])
        times, cpu_total = [], 0.0
        for _ in range(20):
            query = rng.normal(size=384).astype(np.float32)
            query /= np.linalg.norm(query)
            literal = "[" + ",".join(f"{x:.6g}" for x in query) + "]"
            with connection.cursor() as cursor:
                cpu_before = backend_cpu_ms(backend)
                started = time.perf_counter()
                cursor.execute(
                    "SELECT id FROM rag_chunk WHERE collection_id = %s AND id <= %s "
                    "AND dims = 384 ORDER BY embedding <=> %s::halfvec(384) LIMIT 40",
                    [collections[0].pk, bound, literal],
                )
                cursor.fetchall()
                times.append((time.perf_counter() - started) * 1000)
                cpu_total += backend_cpu_ms(backend) - cpu_before
        print(
            f"exact path over {size:>7,} chunks: p50 {np.percentile(times, 50):6.1f} ms, "
            f"p99 {np.percentile(times, 99):6.1f} ms, backend CPU {cpu_total / 20:5.1f} ms/query"
        )


def ingest_parts(count: int, make_rows) -> None:
    """P8: where COPY's time goes. Copies of rag_chunk's shape, each COPY in its own table:
    bare columns; + the generated tsvector; + the btrees; + the foreign keys; + GIN (the
    product's table as it is, minus HNSW); and GIN built after the load instead."""
    from django.db import connection, transaction

    from rag import indexing

    btrees = [
        "CREATE INDEX ON {t} (collection_id, generation)",
        "CREATE INDEX ON {t} (document_id, ordinal)",
        "CREATE INDEX ON {t} (collection_id)",
        "CREATE INDEX ON {t} (document_id)",
    ]
    fks = [
        "ALTER TABLE {t} ADD FOREIGN KEY (collection_id) REFERENCES rag_collection (id) "
        "DEFERRABLE INITIALLY DEFERRED",
        "ALTER TABLE {t} ADD FOREIGN KEY (document_id) REFERENCES rag_document (id) "
        "DEFERRABLE INITIALLY DEFERRED",
    ]
    gin = ["CREATE INDEX ON {t} USING gin (tsv)"]
    bare = (
        "CREATE TABLE {t} (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
        "ordinal integer NOT NULL, text text NOT NULL, heading varchar(500) NOT NULL, "
        "page integer, generation bigint NOT NULL, dims smallint NOT NULL, embedding halfvec, "
        "collection_id bigint NOT NULL, document_id bigint NOT NULL{tsv})"
    )
    tsv = ", tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', COALESCE(text, ''))) STORED"
    tsv_table = bare.format(t="{t}", tsv=tsv)
    variants = [
        ("bare (pkey only)", bare.format(t="{t}", tsv=""), [], []),
        ("+ generated tsvector", tsv_table, [], []),
        ("+ tsvector + 2 composite btrees", tsv_table, btrees[:2], []),
        ("+ tsvector + 4 btrees (before 0003)", tsv_table, btrees, []),
        ("+ tsvector + 2 btrees + FKs", tsv_table, btrees[:2] + fks, []),
        ("+ tsvector + 2 btrees + FKs + GIN (as shipped)", tsv_table, btrees[:2] + fks + gin, []),
        ("+ tsvector + 4 btrees + FKs + GIN (before)", tsv_table, btrees + fks + gin, []),
        ("+ tsvector + 2 btrees + FKs, GIN after", tsv_table, btrees[:2] + fks, gin),
    ]
    print(
        f"P8 breakdown: COPY {count:,} rows, each variant into a fresh table (load {os.getloadavg()[0]:.1f})"
    )
    for label, create, before, after in variants:
        table = "bench_copy"
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
            cursor.execute(create.format(t=table))
            for statement in before:
                cursor.execute(statement.format(t=table))
            cursor.execute("CHECKPOINT")
        started = time.perf_counter()
        with transaction.atomic():
            indexing.chunks_copy(make_rows(count), table=table)
        copy_s = time.perf_counter() - started
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for statement in after:
                cursor.execute("SET maintenance_work_mem = '256MB'")
                cursor.execute(statement.format(t=table))
        after_s = time.perf_counter() - started
        total = copy_s + after_s
        print(
            f"  {label:48}: COPY {copy_s:6.1f} s = {count / copy_s:8,.0f} rows/s"
            + (f"; + {after_s:.1f} s after = {count / total:8,.0f} rows/s" if after else "")
        )
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {table}")


if __name__ == "__main__":
    main()
