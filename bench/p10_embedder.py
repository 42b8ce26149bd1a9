"""P10: the built-in offline embedder's throughput (chunks/s) by batch size and threads, on
chunks of the default size (~1,000 characters, ~200 word pieces), as the worker embeds them.

    .venv/bin/python bench/p10_embedder.py                 # threads 1 and 2, batches 8–64
    .venv/bin/python bench/p10_embedder.py --chunks 512 --threads 2 --batches 32
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: F401 - puts the project on sys.path

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "with",
    "was",
    "on",
    "be",
    "by",
    "this",
    "are",
    "from",
    "or",
    "have",
    "an",
    "they",
    "which",
    "database",
    "vector",
    "index",
    "search",
    "retrieval",
    "chunk",
    "document",
    "model",
    "token",
    "budget",
    "team",
    "collection",
    "install",
    "configure",
    "server",
    "request",
    "response",
    "error",
    "timeout",
    "cluster",
    "memory",
    "query",
    "latency",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=256)
    parser.add_argument("--chars", type=int, default=1000)
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--batches", type=int, nargs="*", default=[8, 16, 32, 64])
    parser.add_argument(
        "--max-tokens",
        type=int,
        nargs="*",
        default=[256],
        help="Word pieces read per chunk (the model's 256; less is faster and reads less).",
    )
    args = parser.parse_args()
    from rag import embedders
    from rag.embedders import OfflineEmbedder

    random.seed(3)
    texts = []
    for _ in range(args.chunks):
        words, size = [], 0
        target = int(args.chars * random.uniform(0.6, 1.0))  # real chunks vary in length
        while size < target:
            word = random.choice(WORDS)
            words.append(word)
            size += len(word) + 1
        texts.append(" ".join(words))
    print(
        f"load: {os.getloadavg()}  {args.chunks} chunks of {args.chars * 0.6:.0f}–{args.chars} chars"
    )
    for threads in args.threads:
        for max_tokens in args.max_tokens:
            embedders.MAX_TOKENS = max_tokens
            model = OfflineEmbedder(threads=threads)
            model.embed(texts[:8])  # warm up
            for batch in args.batches:
                started, cpu = time.perf_counter(), time.process_time()
                model.embed(texts, batch_size=batch)
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
                print(
                    f"P10 threads={threads} max_tokens={max_tokens} batch={batch}: "
                    f"{args.chunks / elapsed:.1f} chunks/s wall, "
                    f"{args.chunks / cpu:.1f} chunks per CPU-second"
                )
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
