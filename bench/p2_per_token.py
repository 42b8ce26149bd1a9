"""P2 — what our code adds per streamed token, over the openai SDK reading the same stream.

1. CPU per token: stream N tokens as fast as the fake can send them (other process, other core)
   and compare this process's CPU time (process_time) through the gate vs the SDK directly.
   Goal: ≤ 20 µs per token added.
2. Latency per chunk at 250 tokens/s: how late each token arrives relative to the fake's
   schedule, through the gate vs the SDK directly (mean and p99 of the difference).

    .venv/bin/python bench/p2_per_token.py [--tokens 4000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from contextlib import aclosing

import harness
from p1_ttft import close_clients, sdk_client


async def sdk_stream(url: str, arrivals: list[float] | None = None) -> int:
    stream = await sdk_client(url).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "go"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    count = 0
    async with stream:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                count += 1
                if arrivals is not None:
                    arrivals.append(time.perf_counter())
    return count


async def gate_stream(user, credential, arrivals: list[float] | None = None) -> int:
    from providers.adapters.base import CompletionRequest, Message, TextDelta
    from providers.services import completion_stream

    request = CompletionRequest(model="gpt-4o-mini", messages=(Message("user", "go"),))
    count = 0
    async with aclosing(
        completion_stream(user=user, credential_id=credential.pk, request=request)
    ) as events:
        async for event in events:
            if type(event) is TextDelta:
                count += 1
                if arrivals is not None:
                    arrivals.append(time.perf_counter())
    return count


def cpu_of(coro_factory, runs: int) -> tuple[float, int]:
    async def go():
        total_tokens = 0
        await coro_factory()  # warm-up
        started = time.process_time()
        for _ in range(runs):
            total_tokens += await coro_factory()
        elapsed = time.process_time() - started
        await close_clients()
        return elapsed, total_tokens

    return asyncio.run(go())


def lateness(arrivals: list[float], rate: float) -> list[float]:
    """ms each token arrived after its slot on the fake's schedule (from the first token)."""
    first = arrivals[0]
    return [((at - first) - i / rate) * 1000 for i, at in enumerate(arrivals)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=4000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    harness.django_setup()
    harness.pin(0)
    print(f"P2 per-token overhead — {harness.machine()}")
    with harness.fake_server(core=1) as url:
        user, credential = harness.bench_user_and_credential(url)

        harness.configure(url, reply_tokens=args.tokens, tokens_per_chunk=1)
        sdk_cpu, sdk_tokens = cpu_of(lambda: sdk_stream(url), args.runs)
        gate_cpu, gate_tokens = cpu_of(lambda: gate_stream(user, credential), args.runs)
        sdk_us = sdk_cpu / sdk_tokens * 1e6
        gate_us = gate_cpu / gate_tokens * 1e6
        print(f"\nCPU per token, {args.runs} × {args.tokens} tokens, 1 token per chunk")
        print(f"  SDK direct : {sdk_us:6.1f} µs/token")
        print(f"  gate       : {gate_us:6.1f} µs/token")
        print(f"  added      : {gate_us - sdk_us:+6.1f} µs/token   ratio {gate_us / sdk_us:.2f}×")

        rate = 250
        harness.configure(url, reply_tokens=500, tokens_per_second=rate)
        results = {}
        for name, factory in (
            ("sdk", lambda arrivals: sdk_stream(url, arrivals)),
            ("gate", lambda arrivals: gate_stream(user, credential, arrivals)),
        ):

            async def go(factory=factory):
                late = []
                for _ in range(3):
                    arrivals: list[float] = []
                    await factory(arrivals)
                    late += lateness(arrivals, rate)
                await close_clients()
                return late

            results[name] = asyncio.run(go())
        sdk, gate = results["sdk"], results["gate"]
        print(f"\nLateness per token at {rate} tokens/s, 3 × 500 tokens (ms after its slot)")
        print(f"  SDK direct : {harness.summary(sdk)}")
        print(f"  gate       : {harness.summary(gate)}")
        print(
            f"  added      : mean {statistics.fmean(gate) - statistics.fmean(sdk):+.3f} ms   "
            f"p99 {harness.pct(gate, 99) - harness.pct(sdk, 99):+.3f} ms"
        )


if __name__ == "__main__":
    main()
