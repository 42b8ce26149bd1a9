"""Retrieval quality and speed of the built-in embedders on a small labeled set
(`bench/data/retrieval_eval.json`: paraphrased questions about the project's own docs, chunked
by the product's chunker at its defaults).

For each model: vector-only and hybrid (vector + PostgreSQL full text, reciprocal rank fusion
with k = 60, as `chunk_search` does) recall@1, recall@5 and MRR@10; and its speed on those
chunks (wall and per CPU-second, in this process).

`--product` measures the shipped built-in models through the product's own path instead: a
collection per model (`collection_create`), the two documents uploaded and ingested as the
worker does (`document_ingest`: extraction, chunking, embedding, COPY), and every query through
`chunk_search` (the embedder service for the query vector, the SQL statement, the similarity
threshold) — vector and hybrid, at the default threshold and without one.

    .venv/bin/python bench/rag_quality.py                       # every available model
    .venv/bin/python bench/rag_quality.py --models minilm-256
    .venv/bin/python bench/rag_quality.py --product             # both built-in models, end to end
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
import harness

RRF_K = 60


def load_set(root: Path):
    from rag import chunking, extraction

    spec = json.loads((root / "bench" / "data" / "retrieval_eval.json").read_text())
    chunks = []
    for source in spec["sources"]:
        data = (root / source).read_bytes()
        extracted = extraction.extract(data, "md")
        for piece in chunking.chunk_blocks(extracted.blocks, size=1000, overlap=150):
            chunks.append(f"{piece.heading}\n{piece.text}" if piece.heading else piece.text)
    queries, dropped = [], []
    for item in spec["queries"]:
        relevant = {i for i, text in enumerate(chunks) if item["relevant"] in text}
        (queries if relevant else dropped).append((item["q"], relevant))
    return chunks, queries, dropped


def text_ranks(chunks: list[str], queries) -> list[list[int]]:
    """Full-text ranking as `chunk_search` does it (websearch_to_tsquery, ts_rank_cd, top 40)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE eval_chunk (id int, tsv tsvector) ON COMMIT PRESERVE ROWS"
        )
        cursor.executemany(
            "INSERT INTO eval_chunk VALUES (%s, to_tsvector('english', %s))",
            list(enumerate(chunks)),
        )
        ranks = []
        for query, _ in queries:
            cursor.execute(
                "SELECT id FROM eval_chunk, websearch_to_tsquery('english', %s) q "
                "WHERE tsv @@ q ORDER BY ts_rank_cd(tsv, q) DESC, id LIMIT 40",
                [query],
            )
            ranks.append([row[0] for row in cursor.fetchall()])
        cursor.execute("DROP TABLE eval_chunk")
    return ranks


def metrics(rankings: list[list[int]], queries) -> str:
    """`queries`: (question, set of relevant chunk keys) pairs; rankings hold the same keys."""
    r1 = r5 = mrr = 0.0
    for ranked, (_, relevant) in zip(rankings, queries, strict=True):
        r1 += bool(set(ranked[:1]) & relevant)
        r5 += bool(set(ranked[:5]) & relevant)
        for position, chunk in enumerate(ranked[:10], 1):
            if chunk in relevant:
                mrr += 1 / position
                break
    n = len(queries)
    return f"recall@1 {r1 / n:.2f}  recall@5 {r5 / n:.2f}  MRR@10 {mrr / n:.3f}"


def fuse(vector: list[int], text: list[int]) -> list[int]:
    scores: dict[int, float] = {}
    for ranking in (vector[:40], text[:40]):
        for rank, chunk in enumerate(ranking, 1):
            scores[chunk] = scores.get(chunk, 0.0) + 1 / (RRF_K + rank)
    return sorted(scores, key=lambda chunk: (-scores[chunk], chunk))


def minilm(max_tokens: int):
    from rag import embedders

    embedders.MAX_TOKENS = max_tokens
    return embedders.OfflineEmbedder()


def wordllama():
    from rag.embedders import StaticEmbedder

    return StaticEmbedder()


MODELS = {
    "minilm-256": lambda: minilm(256),
    "minilm-128": lambda: minilm(128),
    "wordllama-256d": wordllama,  # the shipped fast built-in model (no truncation)
}


def product(root: Path, threshold: float) -> None:
    """Both built-in models end to end, as a user of the product gets them."""
    from django.contrib.auth import get_user_model

    from rag import embedder_service, selectors, services
    from rag.embedders import BUILTIN_MODELS
    from rag.ingestion import document_ingest
    from rag.models import Chunk

    spec = json.loads((root / "bench" / "data" / "retrieval_eval.json").read_text())
    user, _ = get_user_model().objects.get_or_create(
        username="rag-quality-bench", defaults={"email": "rag-quality@bench.invalid"}
    )
    embedder_service.start_detached(idle_exit=120)
    for model in BUILTIN_MODELS.values():
        collection = services.collection_create(
            actor=user, name=f"rag-quality {model.id}", embedding_model=model.id
        )
        try:
            for source in spec["sources"]:
                services.document_add_bytes(
                    actor=user,
                    collection=collection,
                    filename=Path(source).name,
                    data=(root / source).read_bytes(),
                )
            started, cpu = time.perf_counter(), time.process_time()
            for document in collection.documents.order_by("pk"):
                assert document_ingest(document_id=document.pk, user_id=user.pk) == "ready"
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            chunks = list(
                Chunk.objects.filter(collection=collection).values_list("id", "heading", "text")
            )
            queries = []
            for item in spec["queries"]:
                relevant = {
                    pk for pk, heading, text in chunks if item["relevant"] in f"{heading}\n{text}"
                }
                if relevant:
                    queries.append((item["q"], relevant))
            print(
                f"  {model.id}: {len(chunks)} chunks ingested in {wall:.1f} s "
                f"({len(chunks) / cpu:,.0f} chunks per CPU-s of the ingesting process), "
                f"{len(queries)} queries"
            )
            for mode in ("vector", "hybrid"):
                for limit in (threshold, -1.0):
                    rankings, took = [], []
                    for question, _ in queries:
                        result = selectors.chunk_search(
                            user=user, collections=[collection], query=question,
                            top_k=10, threshold=limit, mode=mode, feature="bench",
                        )  # fmt: skip
                        assert not result.notices, result.notices
                        rankings.append([hit.chunk_id for hit in result.hits])
                        took.append(result.took_ms)
                    took.sort()
                    print(
                        f"    {mode:6} threshold {limit:5.2f}  {metrics(rankings, queries)}   "
                        f"search p50 {took[len(took) // 2]:.1f} ms"
                    )
        finally:
            services.collection_delete(actor=user, collection=collection)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--product", action="store_true", help="The shipped models end to end.")
    parser.add_argument("--threshold", type=float, default=0.25, help="chunk_search's default.")
    args = parser.parse_args()
    harness.django_setup()
    import numpy as np

    from rag.embedders import EmbedderUnavailable

    if args.product:
        print(f"load: {os.getloadavg()}")
        product(harness.ROOT, args.threshold)
        print(f"load after: {os.getloadavg()}")
        return
    chunks, queries, dropped = load_set(harness.ROOT)
    print(
        f"load: {os.getloadavg()}  {len(chunks)} chunks, {len(queries)} queries"
        + (f" ({len(dropped)} dropped: their phrase is no longer in the docs)" if dropped else "")
    )
    texts = text_ranks(chunks, queries)
    print(f"  {'full text alone':34} {metrics(texts, queries)}")
    for model_id in args.models or list(MODELS):
        try:
            model = MODELS[model_id]()
        except EmbedderUnavailable as exc:
            print(f"  {model_id}: unavailable ({exc})")
            continue
        model.embed(chunks[:8])  # warm up
        started, cpu = time.perf_counter(), time.process_time()
        vectors = model.embed(chunks)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        query_vectors = model.embed([q for q, _ in queries])
        similarities = query_vectors @ vectors.T
        by_vector = [list(np.argsort(-row)[:40]) for row in similarities]
        hybrid = [fuse(v, t) for v, t in zip(by_vector, texts, strict=True)]
        print(
            f"  {model_id + ' vector':34} {metrics(by_vector, queries)}   "
            f"{len(chunks) / wall:,.0f} chunks/s wall, {len(chunks) / cpu:,.0f} per CPU-s"
        )
        print(f"  {model_id + ' hybrid':34} {metrics(hybrid, queries)}")
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
