"""P3 — concurrent streaming replies one Daphne process sustains.

Daphne (one process, pinned to core 0) streams C replies at once over websockets; each reply
comes from the fake provider at 50 tokens/s. The fake server and the websocket clients share the
other core. A level "holds" when every reply completes, its deltas concatenate to the final text
in order, and no gap between frames (after the first token) exceeds 500 ms. Coalesced frames
(the default, ~40 ms) and a frame per token are both measured, and Daphne's memory per stream.

    .venv/bin/python bench/p3_streams.py [--levels 25,50,100,200] [--tokens 150] [--frames 40,0]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import time

import harness

GAP_LIMIT = 0.5  # seconds


def start_daphne(port: int, fake_url: str, frame_ms: int) -> subprocess.Popen:
    from django.conf import settings

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "workbench.settings",
        "DATABASE_URL": settings.DATABASE_URL,
        "DEBUG": "0",  # no query log growing in memory
        "SECRET_KEY": settings.SECRET_KEY,
        "FIELD_ENCRYPTION_KEY": ",".join(settings.FIELD_ENCRYPTION_KEY),
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SECURE_HSTS_SECONDS": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "WORKBENCH_EGRESS_ALLOW": fake_url.removeprefix("http://"),
        "WORKBENCH_STREAM_FRAME_MS": str(frame_ms),
        "LOG_LEVEL": "WARNING",
        # One bench user runs every stream: lift the per-user cap on concurrent calls (8).
        "WORKBENCH_MAX_CONCURRENT_CALLS": "1000",
        # The hop thread pool (workbench.connections), as measured in docs/performance.md.
        "WORKBENCH_DB_HOP_THREADS": os.environ.get("WORKBENCH_DB_HOP_THREADS", "4"),
    }
    log_path = os.environ.get("BENCH_DAPHNE_LOG")
    log = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115 - lives with Daphne
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "workbench.asgi:application",
        ],
        cwd=harness.ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        # BENCH_DAPHNE_LOG=/path keeps Daphne's log (errors only, LOG_LEVEL=WARNING).
        stderr=log,
        preexec_fn=lambda: harness.pin(0),
    )
    import socket

    deadline = time.monotonic() + 120  # a loaded machine imports slowly
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("Daphne did not start")


def stop_daphne(process: subprocess.Popen) -> None:
    """SIGTERM (a graceful stop), then SIGKILL if it is still going after 10 s."""
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def setup_conversations(user, credential, count: int) -> list[int]:
    from chats import services
    from chats.models import Conversation

    Conversation.objects.filter(owner_user=user).delete()
    return [
        services.conversation_start(actor=user, credential=credential, model="gpt-4o-mini").pk
        for _ in range(count)
    ]


def session_cookie(user) -> str:
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


async def one_stream(port: int, conversation_id: int, cookie: str) -> dict:
    import websockets

    url = f"ws://127.0.0.1:{port}/ws/chat/{conversation_id}/"
    async with websockets.connect(
        url,
        additional_headers={"Cookie": cookie, "Origin": f"http://127.0.0.1:{port}"},
        max_size=None,
    ) as ws:
        await ws.recv()  # hello
        sent = time.perf_counter()
        await ws.send(json.dumps({"type": "send", "parent_id": None, "content": "go", "ref": "r1"}))
        reply_id, text, arrivals, offsets_ok, frames = None, [], [], True, 0
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=60))
            if frame["type"] == "started":
                reply_id = frame["reply"]
            elif frame["type"] == "delta" and frame["id"] == reply_id:
                frames += 1
                if frame["offset"] != sum(len(t) for t in text):
                    offsets_ok = False
                text.append(frame["text"])
                arrivals.append(time.perf_counter())
            elif frame["type"] == "final" and frame["id"] == reply_id:
                return {
                    "ttft": arrivals[0] - sent if arrivals else None,
                    "text": "".join(text),
                    "status": frame["status"],
                    "gaps": [b - a for a, b in itertools.pairwise(arrivals)],
                    "frames": frames,
                    "offsets_ok": offsets_ok,
                    "reply_id": reply_id,
                }
            elif frame["type"] == "error":
                return {"error": frame}


def rss(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


async def level(port: int, ids: list[int], cookie: str, daphne_pid: int) -> dict:
    import psutil

    process = psutil.Process(daphne_pid)
    before = rss(daphne_pid)
    cpu_before = sum(process.cpu_times()[:2])
    peak = before

    async def sample():
        nonlocal peak
        while True:
            peak = max(peak, rss(daphne_pid))
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    results = await asyncio.gather(
        *(one_stream(port, cid, cookie) for cid in ids), return_exceptions=True
    )
    wall = time.perf_counter() - started
    sampler.cancel()
    return {
        "results": results,
        "rss_before": before,
        "rss_peak": peak,
        "wall": wall,
        "cpu": sum(process.cpu_times()[:2]) - cpu_before,
    }


def check(outcome: dict, finals: dict[int, str]) -> dict:
    results = outcome["results"]
    failures = [r for r in results if isinstance(r, BaseException) or "error" in r]
    ok = [r for r in results if not isinstance(r, BaseException) and "error" not in r]
    in_order = all(
        r["offsets_ok"] and r["text"] == finals.get(r["reply_id"], r["text"]) for r in ok
    )
    complete = all(r["status"] == "complete" for r in ok)
    gaps = [g for r in ok for g in r["gaps"]]
    return {
        "n": len(results),
        "failed": len(failures),
        "complete": complete,
        "in_order": in_order,
        "max_gap": max(gaps) if gaps else 0.0,
        "p99_gap": harness.pct(gaps, 99) if gaps else 0.0,
        "ttft_p50": statistics.median([r["ttft"] for r in ok if r["ttft"]]) * 1000
        if ok
        else float("nan"),
        "ttft_p90": harness.pct([r["ttft"] * 1000 for r in ok if r["ttft"]], 90)
        if ok
        else float("nan"),
        "frames_per_reply": statistics.fmean([r["frames"] for r in ok]) if ok else 0,
        "holds": not failures and complete and in_order and (max(gaps) if gaps else 0) <= GAP_LIMIT,
        "mem_per_stream": (outcome["rss_peak"] - outcome["rss_before"]) / max(1, len(results)),
        "cpu": outcome["cpu"],
        "wall": outcome["wall"],
    }


def finals_for(ids: list[int]) -> dict[int, str]:
    from chats.models import Message

    return dict(
        Message.objects.filter(conversation_id__in=ids, role="assistant").values_list(
            "id", "content"
        )
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", default="25,50,100,200")
    parser.add_argument("--tokens", type=int, default=150)
    parser.add_argument(
        "--frames", default="40,0", help="frame intervals in ms (0: a frame per token)"
    )
    args = parser.parse_args()
    harness.django_setup()
    harness.pin(1)
    levels = [int(x) for x in args.levels.split(",")]
    print(f"P3 concurrent streams per Daphne process — {harness.machine()}")
    print(
        f"each reply: {args.tokens} tokens at 50 tokens/s from the fake; a level holds if no frame gap > 500 ms"
    )
    with harness.fake_server(core=1) as fake_url:
        harness.configure(fake_url, reply_tokens=args.tokens, tokens_per_second=50, ttft=0.1)
        from providers.models import ProviderCredential

        user, _ = harness.bench_user_and_credential(fake_url)
        credential, _ = ProviderCredential.objects.update_or_create(
            owner_user=user,
            name="bench local",
            defaults={
                "preset": "openai_compatible",
                "base_url": f"{fake_url}/v1",
                "is_local": True,
            },
        )
        cookie = session_cookie(user)
        modes = [int(ms) for ms in args.frames.split(",")]
        for frame_ms in modes:
            label = f"coalesced ({frame_ms} ms frames)" if frame_ms else "a frame per token"
            port = harness.free_port()
            daphne = start_daphne(port, fake_url, frame_ms)
            try:
                # Warm-up: the first reply of a process pays its imports and caches (seconds).
                [warm] = setup_conversations(user, credential, 1)
                asyncio.run(one_stream(port, warm, cookie))
                print(f"\n{label}")
                print(
                    "  streams  holds  failed  max gap   p99 gap  TTFT p50  TTFT p90  frames/reply  Daphne CPU  CPU/reply  MiB/stream",
                    flush=True,
                )
                for count in levels:
                    ids = setup_conversations(user, credential, count)
                    outcome = asyncio.run(level(port, ids, cookie, daphne.pid))
                    time.sleep(0.5)  # the last saves land
                    result = check(outcome, finals_for(ids))
                    print(
                        f"  {count:7d}  {'yes' if result['holds'] else 'NO ':5s}  {result['failed']:6d}  "
                        f"{result['max_gap'] * 1000:6.0f} ms {result['p99_gap'] * 1000:6.0f} ms "
                        f"{result['ttft_p50']:6.0f} ms {result['ttft_p90']:6.0f} ms  "
                        f"{result['frames_per_reply']:12.1f}  "
                        f"{result['cpu'] / result['wall'] * 100:8.0f} %  "
                        f"{result['cpu'] / count * 1000:6.1f} ms  {result['mem_per_stream']:9.2f}",
                        flush=True,
                    )
                    if not result["holds"]:
                        failure = next(
                            (
                                r
                                for r in outcome["results"]
                                if isinstance(r, BaseException) or "error" in r
                            ),
                            None,
                        )
                        if failure is not None:
                            print(f"  first failure: {failure!r}"[:300], flush=True)
                        break
            finally:
                stop_daphne(daphne)


if __name__ == "__main__":
    main()
