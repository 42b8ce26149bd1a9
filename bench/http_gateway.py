"""P1/P2 over HTTP (issue 11): `/v1/chat/completions` and `/api/completions` on a real Daphne vs
the openai SDK calling the same fake provider directly.

Daphne runs pinned to core 0, the fake provider and the clients to core 1. Per level
(concurrency c), the three targets run interleaved in rounds so load drift hits them alike:
- direct: the openai SDK → fake /v1 (the baseline);
- gateway: the openai SDK → Daphne /v1 (model `bench-openai/gpt-4o-mini`, a wb_ token);
- api: httpx → Daphne /api/completions with `stream: true` (our SSE; the SDK can't read it).

Figures: TTFT p50/p99 (ms) and added vs direct; tokens/s over all streams; server CPU per
streamed token — Daphne's process tree and every PostgreSQL process (utime+stime from /proc),
over the tokens streamed while measuring. `--paced` sends one provider chunk every 4 ms.

    .venv/bin/python bench/http_gateway.py --levels 1 10 --calls 40 --tokens 200
    .venv/bin/python bench/http_gateway.py --levels 1 10 50 --calls 300 --tokens 200   # quiet machine
    .venv/bin/python bench/http_gateway.py --levels 1 10 --calls 100 --tokens 200 --paced
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import harness

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            children = []
        todo += [int(child) for child in children]
    return found


def postgres_pids() -> list[int]:
    """This bench's PostgreSQL (the postmaster of its data directory and its backends) — not
    the other servers a shared machine runs."""
    from django.conf import settings

    pid_file = Path(settings.DATA_DIR) / "pg" / "postmaster.pid"
    try:
        postmaster = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    return tree(postmaster)


def start_daphne(port: int, fake_url: str, log: str | None) -> subprocess.Popen:
    sys.path.insert(0, str(Path(__file__).parent))
    import p3_streams

    if log:
        os.environ["BENCH_DAPHNE_LOG"] = log
    os.environ["WORKBENCH_MAX_CONCURRENT_CALLS"] = "500"  # one bench user runs every stream
    return p3_streams.start_daphne(port, fake_url, 40)


async def direct(client, tokens: int) -> tuple[float, int]:
    return await _sdk_stream(client, "gpt-4o-mini", tokens)


async def _sdk_stream(client, model: str, tokens: int) -> tuple[float, int]:
    started = time.perf_counter()
    ttft, count = None, 0
    stream = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "hello"}],
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=tokens + 10,
    )
    async with stream:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                ttft = ttft or time.perf_counter()
            if chunk.usage:
                count = chunk.usage.completion_tokens
    return (ttft - started) * 1000, count


async def api(http, url: str, token: str, credential_id: int, tokens: int) -> tuple[float, int]:
    body = {
        "credential": credential_id,
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hello"}],
        "stream": True,
        "max_tokens": tokens + 10,
    }
    started = time.perf_counter()
    ttft, count = None, 0
    async with http.stream(
        "POST",
        f"{url}/api/completions",
        json=body,
        headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"},
    ) as answer:
        async for line in answer.aiter_lines():
            if ttft is None and line.startswith("event: delta"):
                ttft = time.perf_counter()
            elif line.startswith("data: ") and '"output_tokens"' in line:
                import json

                count = json.loads(line[6:])["usage"]["output_tokens"]
    return (ttft - started) * 1000, count


async def run_level(targets: dict, c: int, calls: int, pids) -> dict:
    """Each target: `calls` streams, c at a time, rounds interleaved."""
    results = {name: {"ttft": [], "tokens": 0, "seconds": 0.0, "cpu": 0.0} for name in targets}
    rounds = max(1, calls // c)
    for _ in range(rounds):
        for name, call in targets.items():
            before = cpu_seconds(pids()) if name != "direct" else 0.0
            started = time.perf_counter()
            outcomes = await asyncio.gather(*(call() for _ in range(c)))
            elapsed = time.perf_counter() - started
            after = cpu_seconds(pids()) if name != "direct" else 0.0
            entry = results[name]
            entry["ttft"] += [ttft for ttft, _ in outcomes]
            entry["tokens"] += sum(count for _, count in outcomes)
            entry["seconds"] += elapsed
            entry["cpu"] += after - before
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--paced", action="store_true", help="one provider chunk every 4 ms")
    parser.add_argument("--daphne-log")
    args = parser.parse_args()

    harness.django_setup()
    harness.pin(1)
    from accounts import services as account_services

    print(harness.machine())
    print(f"load before: {os.getloadavg()}")
    with harness.fake_server(core=1) as fake_url:
        knobs = {"reply_tokens": args.tokens}
        if args.paced:
            knobs["tokens_per_second"] = 250
        harness.configure(fake_url, **knobs)
        user, credential = harness.bench_user_and_credential(fake_url)
        credential.refresh_from_db()
        token = account_services.token_create(user=user, name="bench", scope="write")[1]
        port = harness.free_port()
        daphne = start_daphne(port, fake_url, args.daphne_log)
        url = f"http://127.0.0.1:{port}"
        try:
            asyncio.run(measure(args, url, fake_url, token, credential, daphne))
        finally:
            daphne.terminate()
            try:  # a loaded machine can take Daphne over 10 s to stop
                daphne.wait(60)
            except subprocess.TimeoutExpired:
                daphne.kill()
                daphne.wait()
    print(f"load after: {os.getloadavg()}")


async def measure(args, url, fake_url, token, credential, daphne):
    import httpx
    import openai

    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    direct_client = openai.AsyncOpenAI(base_url=f"{fake_url}/v1", api_key="sk-x", max_retries=0)
    gateway_client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0)
    http = httpx.AsyncClient(timeout=60, limits=limits)
    model = f"{credential.slug}/gpt-4o-mini"
    targets = {
        "direct": lambda: direct(direct_client, args.tokens),
        "gateway": lambda: _sdk_stream(gateway_client, model, args.tokens),
        "api": lambda: api(http, url, token, credential.pk, args.tokens),
    }

    def pids():
        return tree(daphne.pid) + postgres_pids()

    for call in targets.values():  # warm-up: connections, caches, imports
        await asyncio.gather(*(call() for _ in range(3)))
    # A simple authenticated GET (the goal: ≤ 2 ms server time p50), sequential.
    headers = {"Authorization": f"Bearer {token}"}
    for path in ("/v1/models", "/api/me/"):
        times, server = [], []
        for _ in range(100):
            started = time.perf_counter()
            answer = await http.get(f"{url}{path}", headers=headers)
            times.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200, answer.text
            server.append(float(answer.headers["server-timing"].split("dur=")[1]))
        print(f"GET {path:12} round trip {harness.summary(times)} ms")
        print(f"GET {path:12} server     {harness.summary(server)} ms  (Server-Timing)")
    print(
        f"\n{'c':>3} {'target':8} {'TTFT p50':>9} {'p99':>8} {'added p50':>10} {'p99':>8} "
        f"{'tokens/s':>9} {'ratio':>6} {'CPU µs/token':>13}"
    )
    for c in args.levels:
        results = await run_level(targets, c, args.calls, pids)
        base = results["direct"]
        base_tps = base["tokens"] / base["seconds"]
        for name, entry in results.items():
            p50, p99 = harness.pct(entry["ttft"], 50), harness.pct(entry["ttft"], 99)
            added50 = p50 - harness.pct(base["ttft"], 50)
            added99 = p99 - harness.pct(base["ttft"], 99)
            tps = entry["tokens"] / entry["seconds"]
            cpu = entry["cpu"] / entry["tokens"] * 1e6 if name != "direct" else float("nan")
            print(
                f"{c:>3} {name:8} {p50:9.2f} {p99:8.2f} {added50:+10.2f} {added99:+8.2f} "
                f"{tps:9.0f} {tps / base_tps:6.2f} {cpu:13.0f}"
            )
    await http.aclose()


if __name__ == "__main__":
    main()
