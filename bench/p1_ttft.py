"""P1 — time to first token through the gate vs the openai SDK calling the same fake directly.

Both sides use the openai SDK against the fake provider (other process, other core, TTFT knob 0).
The difference is our gate: access check + key decrypt + budget hook (one sync_to_async hop),
the egress guard (resolve once, address checks, connect to the checked IP) and event mapping.
Goal: ≤ 2 ms p50 / ≤ 5 ms p99 added at c = 1; c = 50 reported.

    .venv/bin/python bench/p1_ttft.py [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from contextlib import aclosing

import harness

_clients = {}


def sdk_client(url: str):
    """The baseline at its best: one SDK client per event loop, reused (keep-alive pool)."""
    import openai

    loop = asyncio.get_running_loop()
    if loop not in _clients:
        _clients.clear()
        _clients[loop] = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-bench", max_retries=0)
    return _clients[loop]


async def sdk_ttft(url: str) -> float:
    client = sdk_client(url)
    started = time.perf_counter()
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hello"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    ttft = None
    async with stream:
        async for chunk in stream:
            if ttft is None and chunk.choices and chunk.choices[0].delta.content:
                ttft = time.perf_counter() - started
    return ttft * 1000


async def gate_ttft(user, credential) -> float:
    from providers.adapters.base import CompletionRequest, Message, TextDelta
    from providers.services import completion_stream

    request = CompletionRequest(model="gpt-4o-mini", messages=(Message("user", "hello"),))
    started = time.perf_counter()
    ttft = None
    async with aclosing(
        completion_stream(user=user, credential_id=credential.pk, request=request)
    ) as events:
        async for event in events:
            if ttft is None and type(event) is TextDelta:
                ttft = time.perf_counter() - started
    return ttft * 1000


async def gate_ttft_as_request(user, credential) -> float:
    """As Django serves each HTTP request: its own thread-sensitive context (its own DB thread
    and connection, closed at the end as request_finished does)."""
    from asgiref.sync import ThreadSensitiveContext, sync_to_async
    from django.db import close_old_connections

    async with ThreadSensitiveContext():
        try:
            return await gate_ttft(user, credential)
        finally:
            await sync_to_async(close_old_connections)()


async def run(url, user, credential, calls: int, concurrency: int):
    results = {"sdk": [], "gate": [], "gate_requests": []}
    for _ in range(10):  # warm up connections, caches, the tokenizer
        await sdk_ttft(url)
        await gate_ttft(user, credential)
    for _ in range(calls // concurrency):
        # Interleave the variants so drift on the machine hits all alike.
        results["sdk"] += await asyncio.gather(*(sdk_ttft(url) for _ in range(concurrency)))
        results["gate"] += await asyncio.gather(
            *(gate_ttft(user, credential) for _ in range(concurrency))
        )
        if concurrency > 1:
            results["gate_requests"] += await asyncio.gather(
                *(gate_ttft_as_request(user, credential) for _ in range(concurrency))
            )
    await close_clients()
    return results


async def close_clients() -> None:
    """Close pooled connections before this event loop ends."""
    from providers.adapters.clients import aclose_all

    await aclose_all()
    for client in _clients.values():
        await client.close()
    _clients.clear()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    harness.django_setup()
    harness.pin(0)
    print(f"P1 TTFT overhead — {harness.machine()}")
    with harness.fake_server(core=1) as url:
        harness.configure(url, reply_tokens=5)
        user, credential = harness.bench_user_and_credential(url)
        for concurrency in (1, 50):
            calls = args.calls if concurrency == 1 else max(args.calls, 500)
            results = asyncio.run(run(url, user, credential, calls, concurrency))
            sdk, gate = results["sdk"], results["gate"]
            print(f"\nc = {concurrency}  ({len(sdk)} calls each, ms)")
            print(f"  SDK direct : {harness.summary(sdk)}")
            print(f"  gate       : {harness.summary(gate)}")
            print(
                f"  added      : p50 {harness.pct(gate, 50) - harness.pct(sdk, 50):+.2f} ms   "
                f"p99 {harness.pct(gate, 99) - harness.pct(sdk, 99):+.2f} ms   "
                f"ratio p50 {harness.pct(gate, 50) / harness.pct(sdk, 50):.2f}×"
                "   (one shared DB thread, as in websocket consumers)"
            )
            if results.get("gate_requests"):
                requests = results["gate_requests"]
                print(f"  gate/req   : {harness.summary(requests)}")
                print(
                    f"  added      : p50 {harness.pct(requests, 50) - harness.pct(sdk, 50):+.2f} ms   "
                    f"p99 {harness.pct(requests, 99) - harness.pct(sdk, 99):+.2f} ms"
                    "   (a DB thread per call, as Django serves HTTP requests)"
                )


if __name__ == "__main__":
    main()
