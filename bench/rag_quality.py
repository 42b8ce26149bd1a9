"""Retrieval quality and speed of the built-in embedders on a small labeled set
(`bench/data/retrieval_eval.json`: paraphrased questions about the project's own docs, chunked
by the product's chunker at its defaults).

For each model: vector-only and hybrid (vector + PostgreSQL full text, reciprocal rank fusion
with k = 60, as `chunk_search` does) recall@1, recall@5 and MRR@10; and its speed on those
chunks (wall and per CPU-second, in this process).

    .venv/bin/python bench/rag_quality.py                       # every available model
    .venv/bin/python bench/rag_quality.py --models minilm
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


class StaticModel:
    """A static embedding model (a token → vector table, mean-pooled, L2-normalised) from the
    files a wheel ships: WordLlama's `l2_supercat_256` (MIT; Llama-2 tokenizer, 32k × 256 fp16).
    Evaluated here only; not a product embedder."""

    def __init__(self, max_tokens: int = 512):
        import importlib.util

        import numpy as np
        from tokenizers import Tokenizer

        from rag.embedders import EmbedderUnavailable

        spec = importlib.util.find_spec("wordllama")
        if spec is None:
            raise EmbedderUnavailable("pip install --no-deps wordllama==0.4.0.post1")
        root = Path(next(iter(spec.submodule_search_locations)))
        self._np = np
        self._tokenizer = Tokenizer.from_file(
            str(root / "tokenizers" / "l2_supercat_tokenizer_config.json")
        )
        self._tokenizer.enable_truncation(max_tokens)
        self._table = self._safetensors(root / "weights" / "l2_supercat_256.safetensors")

    def _safetensors(self, path: Path):
        np = self._np
        data = path.read_bytes()
        size = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + size])
        _name, info = next((k, v) for k, v in header.items() if k != "__metadata__")
        start, end = info["data_offsets"]
        dtype = {"F16": np.float16, "F32": np.float32}[info["dtype"]]
        table = np.frombuffer(data[8 + size + start : 8 + size + end], dtype=dtype)
        return table.reshape(info["shape"]).astype(np.float32)

    def embed(self, texts: list[str]):
        np = self._np
        out = np.empty((len(texts), self._table.shape[1]), dtype=np.float32)
        for i, encoding in enumerate(self._tokenizer.encode_batch(texts, add_special_tokens=False)):
            ids = np.asarray(encoding.ids, dtype=np.int64)
            out[i] = self._table[ids].mean(axis=0) if len(ids) else 0.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.clip(norms, 1e-12, None)


def minilm(max_tokens: int):
    from rag import embedders

    embedders.MAX_TOKENS = max_tokens
    return embedders.OfflineEmbedder()


MODELS = {
    "minilm-256": lambda: minilm(256),
    "minilm-128": lambda: minilm(128),
    "wordllama-256d": StaticModel,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="*", default=None)
    args = parser.parse_args()
    harness.django_setup()
    import numpy as np

    from rag.embedders import EmbedderUnavailable

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
