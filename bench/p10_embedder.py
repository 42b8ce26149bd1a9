"""P10: the built-in offline embedders' throughput (chunks/s) on chunks of the default size
(~1,000 characters, ~200 word pieces), as the worker embeds them.

- all-MiniLM-L6-v2 (`minilm`): by batch size and onnxruntime intra-op threads.
- WordLlama l2_supercat_256 (`fast`): no model to run, the tokenizer is the cost; by processes
  (1 or 2, each embedding its share at once, as two workers would) and the tokenizer's threads
  per process (`RAYON_NUM_THREADS`; tokenizers parallelises `encode_batch` over texts).

    .venv/bin/python bench/p10_embedder.py                 # both models, 1 and 2 threads
    .venv/bin/python bench/p10_embedder.py --models minilm --chunks 512 --threads 2 --batches 32
    .venv/bin/python bench/p10_embedder.py --models fast --chunks 4096 --processes 1 2
"""

from __future__ import annotations

import argparse
import multiprocessing
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


def _fast_share(texts, threads, rounds, barrier, results) -> None:
    """One process of the fast-model run: load, wait for the others, embed its share."""
    os.environ["RAYON_NUM_THREADS"] = str(threads)  # read when tokenizers starts its pool
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if threads > 1 else "false"
    from rag.embedders import StaticEmbedder

    model = StaticEmbedder()
    model.embed(texts[:8])  # warm up
    barrier.wait()
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(rounds):
        model.embed(texts)
    results.put((len(texts) * rounds, time.perf_counter() - started, time.process_time() - cpu))


def fast(texts: list[str], processes: list[int], threads: list[int], rounds: int) -> None:
    spawn = multiprocessing.get_context("spawn")
    for count in processes:
        for per_process in threads:
            barrier, results = spawn.Barrier(count), spawn.Queue()
            shares = [texts[i::count] for i in range(count)]
            workers = [
                spawn.Process(
                    target=_fast_share, args=(share, per_process, rounds, barrier, results)
                )
                for share in shares
            ]
            for worker in workers:
                worker.start()
            done = [results.get(timeout=600) for _ in workers]
            for worker in workers:
                worker.join()
            chunks = sum(n for n, _, _ in done)
            wall = max(w for _, w, _ in done)
            cpu = sum(c for _, _, c in done)
            print(
                f"P10 fast (WordLlama 256-d) processes={count} tokenizer_threads={per_process}: "
                f"{chunks / wall:,.0f} chunks/s wall, {chunks / cpu:,.0f} chunks per CPU-second "
                f"({chunks:,} chunks)"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="*", default=["minilm", "fast"])
    parser.add_argument(
        "--processes", type=int, nargs="*", default=[1, 2], help="fast: processes at once"
    )
    parser.add_argument(
        "--rounds", type=int, default=0, help="fast: passes over the chunks (0: ~8,000 chunks)"
    )
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
    if "fast" in args.models:
        rounds = args.rounds or max(1, 8192 // args.chunks)
        fast(texts, args.processes, args.threads, rounds)
    if "minilm" not in args.models:
        print(f"load after: {os.getloadavg()}")
        return
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
                    f"P10 minilm threads={threads} max_tokens={max_tokens} batch={batch}: "
                    f"{args.chunks / elapsed:.1f} chunks/s wall, "
                    f"{args.chunks / cpu:.1f} chunks per CPU-second"
                )
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
