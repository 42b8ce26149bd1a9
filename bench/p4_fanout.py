"""P4 — playground fan-out: one prompt to 4 and 8 models at once, mixed speeds, one failing, one
slow (issue 12).

Each slot has its own fake provider server (in other processes, on the other core) with its own
speed; Daphne serves the comparison websocket on one core. Per run we measure, at the client:

- wall time: from sending {"type": "run"} to the frame that closes the run;
- each slot's time to first token (its first delta frame) and its own duration (the gate's).

And, alone, through the openai SDK against the same fakes: each speed's time to first token and
total time. Figures:

- wall / slowest slot alone (SDK)  — goal ≤ 1.01: the run takes as long as its slowest model;
- wall / slowest slot in the run   — what our fan-out adds beyond that slot's own call;
- per-slot TTFT added vs a lone SDK call (p50 / p99 over slots and runs);
- for 1 user, and for 10 users running at once (10 × N streams on one Daphne).

    .venv/bin/python bench/p4_fanout.py [--runs 5] [--users 1,10] [--slots 4,8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time

import harness
from p3_streams import session_cookie

REPLY_TOKENS = 60
# (name, knobs): a slot's behaviour. The slow one sets the wall time; the failing one answers
# 500 at once (one attempt: the bench measures fan-out, not retry back-off).
SPEEDS = {
    "fast": {"ttft": 0.15, "tokens_per_second": 200},
    "medium": {"ttft": 0.3, "tokens_per_second": 100},
    "slow": {"ttft": 0.5, "tokens_per_second": 25},  # ≈ 2.9 s
    "failing": {"status": 500},
}
MIXES = {
    4: ["fast", "medium", "slow", "failing"],
    8: ["fast", "fast", "medium", "medium", "fast", "medium", "slow", "failing"],
}


def start_daphne(port: int, fake_urls: list[str]) -> subprocess.Popen:
    from django.conf import settings

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "workbench.settings",
        "DATABASE_URL": settings.DATABASE_URL,
        "DEBUG": "0",
        "SECRET_KEY": settings.SECRET_KEY,
        "FIELD_ENCRYPTION_KEY": ",".join(settings.FIELD_ENCRYPTION_KEY),
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SECURE_HSTS_SECONDS": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "WORKBENCH_EGRESS_ALLOW": ",".join(u.removeprefix("http://") for u in fake_urls),
        "WORKBENCH_PROVIDER_MAX_ATTEMPTS": "1",
        "LOG_LEVEL": "WARNING",
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
        stderr=log,
        preexec_fn=lambda: harness.pin(0),
    )
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("Daphne did not start")


def setup(users: int, fakes: dict[str, str], mix: list[str]) -> list[tuple[int, str]]:
    """(comparison id, session cookie) per user, each comparison with one slot per mix entry."""
    from accounts.models import User
    from playground import services
    from playground.models import Comparison
    from playground.services import SlotData
    from providers.models import ProviderCredential

    made = []
    for index in range(users):
        user, _ = User.objects.get_or_create(
            username=f"bench-{index}", defaults={"email": f"bench-{index}@example.com"}
        )
        Comparison.objects.filter(owner_user=user).delete()
        slots = []
        for speed in mix:
            credential, _ = ProviderCredential.objects.update_or_create(
                owner_user=user,
                name=f"bench {speed}",
                defaults={
                    "preset": "openai",
                    "api_key": "sk-bench-0123456789",
                    "base_url": f"{fakes[speed]}/v1",
                },
            )
            slots.append(SlotData(credential, "gpt-4o-mini"))
        comparison = services.comparison_create(actor=user, prompt="Count slowly.", slots=slots)
        made.append((comparison.pk, session_cookie(user)))
    return made


async def one_run(port: int, comparison_id: int, cookie: str) -> dict:
    import websockets

    url = f"ws://127.0.0.1:{port}/ws/playground/{comparison_id}/"
    async with websockets.connect(
        url,
        additional_headers={"Cookie": cookie, "Origin": f"http://127.0.0.1:{port}"},
        max_size=None,
    ) as ws:
        await ws.recv()  # hello
        sent = time.perf_counter()
        await ws.send(json.dumps({"type": "run"}))
        first: dict[int, float] = {}
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=120))
            if frame["type"] == "run_started":
                run_id = frame["run"]
            elif frame["type"] == "delta":
                first.setdefault(frame["id"], (time.perf_counter() - sent) * 1000)
            elif frame["type"] == "error":
                raise RuntimeError(frame)
            elif frame["type"] == "final" and frame.get("run"):
                return {"run": run_id, "wall": (time.perf_counter() - sent) * 1000, "first": first}


async def lone_sdk(url: str) -> tuple[float, float]:
    """(TTFT, total) in ms of one streamed call through the openai SDK, alone."""
    from openai import AsyncOpenAI

    async with AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-bench", max_retries=0) as client:
        started = time.perf_counter()
        stream = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Count slowly."}],
            stream=True,
            stream_options={"include_usage": True},
        )
        ttft = None
        async with stream:
            async for chunk in stream:
                if ttft is None and chunk.choices and chunk.choices[0].delta.content:
                    ttft = time.perf_counter() - started
        return ttft * 1000, (time.perf_counter() - started) * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--users", default="1,10")
    parser.add_argument("--slots", default="4,8")
    args = parser.parse_args()
    harness.django_setup()
    harness.pin(1)
    print(f"P4 playground fan-out — {harness.machine()}")
    print(f"load average at start: {os.getloadavg()}")
    with contextlib.ExitStack() as stack:
        fakes = {speed: stack.enter_context(harness.fake_server(core=1)) for speed in SPEEDS}
        for speed, knobs in SPEEDS.items():
            harness.configure(fakes[speed], reply_tokens=REPLY_TOKENS, **knobs)
        lone = {
            speed: asyncio.run(lone_sdk(fakes[speed])) for speed in SPEEDS if speed != "failing"
        }
        print(
            "\nAlone through the openai SDK (ms): "
            + ", ".join(f"{s}: TTFT {t:.0f} / total {d:.0f}" for s, (t, d) in lone.items())
        )
        port = harness.free_port()
        daphne = start_daphne(port, list(fakes.values()))
        try:
            for slots in [int(n) for n in args.slots.split(",")]:
                mix = MIXES[slots]
                for users in [int(n) for n in args.users.split(",")]:
                    report(port, fakes, mix, users, args.runs, lone)
        finally:
            daphne.terminate()
            daphne.wait(10)
    print(f"\nload average at the end: {os.getloadavg()}")


def report(port, fakes, mix, users, runs, lone):
    from playground.models import Answer

    targets = setup(users, fakes, mix)

    async def all_at_once():
        return await asyncio.gather(*(one_run(port, cid, cookie) for cid, cookie in targets))

    asyncio.run(all_at_once())  # warm-up (connections, caches)
    walls, vs_alone, vs_in_run, added, failed_ok = [], [], [], [], True
    for _ in range(runs):
        for result in asyncio.run(all_at_once()):
            answers = {a.pk: a for a in Answer.objects.filter(run_id=result["run"])}
            by_position = sorted(answers.values(), key=lambda a: a.position)
            slowest_alone = lone["slow"][1]
            slowest_in_run = max(a.duration_ms for a in by_position if a.duration_ms)
            walls.append(result["wall"])
            vs_alone.append(result["wall"] / slowest_alone)
            vs_in_run.append(result["wall"] / slowest_in_run)
            for answer, speed in zip(by_position, mix, strict=True):
                if speed == "failing":
                    failed_ok &= answer.status == "error"
                    continue
                failed_ok &= answer.status == "complete"
                if answer.pk in result["first"]:
                    added.append(result["first"][answer.pk] - lone[speed][0])
    print(f"\n{len(mix)} slots ({', '.join(mix)}), {users} user(s) at once, {runs} runs")
    print(f"  wall time (ms)                    : {harness.summary(walls)}")
    print(
        f"  wall / slowest slot alone (SDK)   : p50 {harness.pct(vs_alone, 50):.3f}  p99 {harness.pct(vs_alone, 99):.3f}  (goal ≤ 1.01)"
    )
    print(
        f"  wall / slowest slot in the run    : p50 {harness.pct(vs_in_run, 50):.3f}  p99 {harness.pct(vs_in_run, 99):.3f}"
    )
    print(f"  TTFT added per slot vs alone (ms) : {harness.summary(added)}")
    print(f"  every answer ended as it should   : {'yes' if failed_ok else 'NO'}")


if __name__ == "__main__":
    main()
