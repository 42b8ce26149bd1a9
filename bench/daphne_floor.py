"""What Daphne itself costs per streamed chunk (issue 11): bare ASGI apps — no Django, no gate,
no database — under the same Daphne, streaming the same OpenAI delta chunks, measured like
`bench/http_gateway.py` (Daphne's process CPU over the chunks streamed, Daphne pinned to core 0,
the fake and the client on core 1). The floors any Django path on Daphne sits on:

- `timer`: the app sends one delta chunk every 4 ms (asyncio.sleep) — Daphne's write path and
  one event-loop wake per chunk, nothing read;
- `proxy`: the app reads the fake provider's paced stream with a plain `httpx2.AsyncClient`
  (the transport the OpenAI adapter uses, on anyio) and forwards each piece as it arrives;
- `native`: `proxy` on workbench.egress.network's asyncio backend (what the egress guard's
  async transports use) instead of httpcore2's anyio one;
- `raw`: the same upstream read on a bare asyncio stream (HTTP/1.1 by hand): what the read costs
  without httpx2/httpcore2/anyio.

    .venv/bin/python bench/daphne_floor.py --calls 20 --tokens 200
    .venv/bin/python bench/daphne_floor.py --calls 20 --tokens 200 --full-speed

Each variant: `calls` sequential streams (c = 1), then 10 at once. Printed: Daphne's CPU per
chunk (µs) and per call."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHUNK = (
    b'data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":0,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":" tok"},"logprobs":null,"finish_reason":null}]}'
    b"\n\n"
)
HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]


# --- The ASGI apps (loaded by Daphne from this module) -------------------------------------------

FAKE = os.environ.get("FLOOR_FAKE_URL", "")
TOKENS = int(os.environ.get("FLOOR_TOKENS", "200"))
PACE = float(os.environ.get("FLOOR_PACE", "0.004"))
_clients: dict = {}


async def _start(send):
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})


async def _body(send, data: bytes, more: bool = True):
    await send({"type": "http.response.body", "body": data, "more_body": more})


async def _upstream_body() -> bytes:
    import json

    return json.dumps(
        {
            "model": "gpt-4o-mini",
            "stream": True,
            "messages": [{"role": "user", "content": "hello"}],
            "max_tokens": TOKENS + 10,
        }
    ).encode()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            pass
        return
    while (await receive()).get("more_body"):
        pass
    variant = scope["path"].strip("/")
    await _start(send)
    if variant == "timer":
        for _ in range(TOKENS):
            if PACE:
                await asyncio.sleep(PACE)
            await _body(send, CHUNK)
    elif variant in ("proxy", "native"):
        import httpx2

        if variant not in _clients:
            transport = httpx2.AsyncHTTPTransport()
            if variant == "native":
                import httpcore2

                sys.path.insert(0, str(ROOT))
                from workbench.egress.network import AsyncioBackend

                transport._pool._network_backend = AsyncioBackend(httpcore2)
            _clients[variant] = httpx2.AsyncClient(timeout=60, transport=transport)
        async with _clients[variant].stream(
            "POST",
            f"{FAKE}/v1/chat/completions",
            content=await _upstream_body(),
            headers={"Authorization": "Bearer sk-x", "Content-Type": "application/json"},
        ) as answer:
            async for piece in answer.aiter_bytes():
                await _body(send, piece)
    elif variant == "raw":
        host, port = FAKE.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        body = await _upstream_body()
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: fake\r\nAuthorization: Bearer sk-x\r\n"
            b"Content-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        while piece := await reader.read(65536):
            await _body(send, piece)
        writer.close()
    await _body(send, b"", more=False)


# --- The driver ------------------------------------------------------------------------------------


def on_cpu(pids: list[int]) -> float:
    """Seconds on a CPU, from the scheduler's own nanosecond count (/proc/<pid>/task/*/schedstat):
    exact, where utime+stime are sampled at each timer tick."""
    total = 0
    for pid in pids:
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    return total / 1e9


SERVERS = {
    "daphne": lambda port: [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)],
    # For comparison only (not a Workbench dependency): `--server uvicorn` needs uvicorn, uvloop
    # and httptools importable (e.g. `pip install --target /tmp/uv uvicorn uvloop httptools` and
    # PYTHONPATH=/tmp/uv).
    "uvicorn": lambda port: [
        *(sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port)),
        *("--loop", "uvloop", "--http", "httptools", "--no-access-log", "--lifespan", "off"),
    ],
}


def main():
    sys.path.insert(0, str(Path(__file__).parent))
    import harness
    from http_gateway import cpu_seconds, tree

    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--full-speed", action="store_true")
    parser.add_argument("--server", choices=sorted(SERVERS), default="daphne")
    parser.add_argument("--variants", nargs="+", default=["timer", "proxy", "native", "raw"])
    args = parser.parse_args()
    harness.pin(1)
    print(harness.machine(), "·", args.server)
    print(f"load before: {os.getloadavg()}")
    with harness.fake_server(core=1) as fake_url:
        knobs = {"reply_tokens": args.tokens}
        if not args.full_speed:
            knobs["tokens_per_second"] = 250
        harness.configure(fake_url, **knobs)
        port = harness.free_port()
        env = {
            **os.environ,
            "FLOOR_FAKE_URL": fake_url,
            "FLOOR_TOKENS": str(args.tokens),
            "FLOOR_PACE": "0" if args.full_speed else "0.004",
            "PYTHONPATH": os.pathsep.join(
                [str(Path(__file__).parent), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
        }
        server = subprocess.Popen(
            [*SERVERS[args.server](port), "daphne_floor:app"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=lambda: harness.pin(0),
        )

        def spent(pid: int) -> tuple[float, float]:
            pids = tree(pid)
            return cpu_seconds(pids), on_cpu(pids)

        try:
            asyncio.run(_measure(f"http://127.0.0.1:{port}", server.pid, args, spent))
        finally:
            server.terminate()
            try:  # a loaded machine can take Daphne over 10 s to stop
                server.wait(60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    print(f"load after: {os.getloadavg()}")


async def _measure(url, pid, args, spent):
    import httpx

    deadline = time.monotonic() + 15
    async with httpx.AsyncClient(timeout=60) as http:
        while True:
            try:
                await http.get(f"{url}/timer")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)

        async def one(variant: str) -> int:
            chunks = 0
            async with http.stream("POST", f"{url}/{variant}", content=b"{}") as answer:
                async for line in answer.aiter_lines():
                    chunks += line.startswith("data: {")
            return chunks

        print(
            f"{'variant':8} {'c':>3} {'chunks':>7} {'µs/chunk ticks':>15} {'schedstat':>10} "
            f"{'ms/call':>8}"
        )
        for variant in args.variants:
            await one(variant)  # warm-up
            for c in (1, 10):
                ticks, exact = spent(pid)
                chunks = 0
                for _ in range(max(1, args.calls // c)):
                    chunks += sum(await asyncio.gather(*(one(variant) for _ in range(c))))
                ticks2, exact2 = spent(pid)
                calls = max(1, args.calls // c) * c
                print(
                    f"{variant:8} {c:>3} {chunks:>7} {(ticks2 - ticks) / max(chunks, 1) * 1e6:15.0f} "
                    f"{(exact2 - exact) / max(chunks, 1) * 1e6:10.0f} "
                    f"{(ticks2 - ticks) / calls * 1e3:8.2f}"
                )


if __name__ == "__main__":
    main()
