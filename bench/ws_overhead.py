"""Chat over the websocket vs the SDK directly (extends P1/P2).

1. Time to first token: from sending {"type": "send"} on the websocket to the first delta frame
   (Daphne in its own process: consumer → access check → messages written → reply task → gate
   → provider → frame), against the openai SDK's time to first token on the same fake.
2. CPU per token in the Daphne process: a long reply minus a short one, per token, against the
   SDK's CPU per token reading the same stream (P2's method).

    .venv/bin/python bench/ws_overhead.py [--calls 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import harness
from p1_ttft import close_clients, sdk_ttft
from p2_per_token import cpu_of, sdk_stream
from p3_streams import session_cookie, setup_conversations, start_daphne, stop_daphne


async def ws_reply(port: int, conversation_id: int, cookie: str) -> tuple[float, int]:
    """(ms to the first delta, tokens' characters received)."""
    import websockets

    url = f"ws://127.0.0.1:{port}/ws/chat/{conversation_id}/"
    async with websockets.connect(
        url,
        additional_headers={"Cookie": cookie, "Origin": f"http://127.0.0.1:{port}"},
        max_size=None,
    ) as ws:
        await ws.recv()  # hello
        started = time.perf_counter()
        await ws.send(json.dumps({"type": "send", "parent_id": None, "content": "go"}))
        first, reply_id, size = None, None, 0
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == "started":
                reply_id = frame["reply"]
            elif frame["type"] == "delta" and frame["id"] == reply_id:
                first = first or time.perf_counter()
                size += len(frame["text"])
            elif frame["type"] == "final" and frame["id"] == reply_id:
                return (first - started) * 1000, size


def daphne_cpu(pid: int) -> float:
    import psutil

    return sum(psutil.Process(pid).cpu_times()[:2])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--tokens", type=int, default=3000)
    args = parser.parse_args()
    harness.django_setup()
    harness.pin(1)
    print(f"Chat over the websocket vs the SDK — {harness.machine()}")
    with harness.fake_server(core=1) as fake_url:
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
        port = harness.free_port()
        daphne = start_daphne(port, fake_url, 40)
        try:
            harness.configure(fake_url, reply_tokens=5)
            ids = setup_conversations(user, credential, args.calls + 10)

            cpu = {}

            async def ttfts():
                ws, sdk = [], []
                for index, cid in enumerate(ids):
                    if index == 10:  # after the warm-up
                        cpu["before"] = daphne_cpu(daphne.pid)
                    ws_ms, _ = await ws_reply(port, cid, cookie)
                    sdk_ms = await sdk_ttft(fake_url)
                    if index >= 10:
                        ws.append(ws_ms)
                        sdk.append(sdk_ms)
                await asyncio.sleep(0.5)  # the last final save
                cpu["after"] = daphne_cpu(daphne.pid)
                await close_clients()
                return ws, sdk

            ws, sdk = asyncio.run(ttfts())
            print(f"\nTime to first token, {len(ws)} replies one after another (ms)")
            print(f"  SDK direct      : {harness.summary(sdk)}")
            print(f"  websocket chat  : {harness.summary(ws)}")
            print(
                f"  added           : p50 {harness.pct(ws, 50) - harness.pct(sdk, 50):+.2f} ms   p99 {harness.pct(ws, 99) - harness.pct(sdk, 99):+.2f} ms"
            )
            # Load-insensitive: Daphne's CPU for a whole short reply (connect, send, the gate,
            # 5 tokens, the final save and frame), averaged over the replies above.
            per_reply = (cpu["after"] - cpu["before"]) / len(ws) * 1000
            print(f"  Daphne CPU per 5-token reply, connect to final frame: {per_reply:.2f} ms")

            def reply_cpu(tokens: int) -> float:
                harness.configure(fake_url, reply_tokens=tokens, tokens_per_chunk=1)
                [cid] = setup_conversations(user, credential, 1)
                before = daphne_cpu(daphne.pid)
                asyncio.run(ws_reply(port, cid, cookie))
                time.sleep(0.3)  # the final save
                return daphne_cpu(daphne.pid) - before

            reply_cpu(50)  # warm-up
            short = min(reply_cpu(10) for _ in range(3))
            long = min(reply_cpu(args.tokens) for _ in range(3))
            per_token_ws = (long - short) / (args.tokens - 10) * 1e6
            harness.configure(fake_url, reply_tokens=args.tokens, tokens_per_chunk=1)
            sdk_cpu, sdk_tokens = cpu_of(lambda: sdk_stream(fake_url), 3)
            per_token_sdk = sdk_cpu / sdk_tokens * 1e6
            print(f"\nCPU per token, {args.tokens}-token replies, 1 token per chunk (µs)")
            print(f"  SDK direct (this process)        : {per_token_sdk:6.1f}")
            print(f"  Daphne: gate + runner + frames   : {per_token_ws:6.1f}")
            print(
                f"  added                            : {per_token_ws - per_token_sdk:+6.1f}   ratio {per_token_ws / per_token_sdk:.2f}×"
            )
            print(f"  per reply, fixed (10 tokens)     : {short * 1000:6.1f} ms CPU")
        finally:
            stop_daphne(daphne)


if __name__ == "__main__":
    main()
