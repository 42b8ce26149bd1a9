"""Daphne's memory after large replies (issue 8: "231 → 866 MB after large replies and stayed").

One Daphne process streams N replies of a given size over a websocket, one after the other;
its resident memory is sampled before, after each reply, and after a quiet pause. Run it with
the process's allocator settings as they are, and with glibc told to give freed memory back:

    .venv/bin/python bench/daphne_memory.py --replies 6 --mb 2
    .venv/bin/python bench/daphne_memory.py --replies 6 --mb 2 --env MALLOC_ARENA_MAX=2

`--env NAME=VALUE` (repeatable) starts Daphne with that environment variable, e.g. glibc's
allocator tunables, to see what they change.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

import harness
import p3_streams
import psutil


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


async def one_reply(port: int, conversation_id: int, cookie: str) -> int:
    import websockets

    async with websockets.connect(
        f"ws://127.0.0.1:{port}/ws/chat/{conversation_id}/",
        origin=f"http://127.0.0.1:{port}",
        additional_headers={"Cookie": cookie},
        max_size=None,
    ) as ws:
        await ws.recv()  # hello
        await ws.send(json.dumps({"type": "send", "parent_id": None, "content": "Everything."}))
        pieces = []
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 300))
            if frame["type"] == "part":
                pieces.append(frame["data"])
                if not frame["last"]:
                    continue
                frame = json.loads("".join(pieces))
                pieces = []
            if frame["type"] == "final":
                return len(frame.get("html", ""))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replies", type=int, default=6)
    parser.add_argument("--mb", type=float, default=2.0, help="size of each reply")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for Daphne")
    args = parser.parse_args()

    harness.django_setup()
    from providers.fakeserver.knobs import lorem

    print(harness.machine(), f"· load {os.getloadavg()[0]:.1f}")
    with harness.fake_server() as fake_url:
        user, credential = harness.bench_user_and_credential(fake_url)
        credential.preset, credential.is_local = "openai_compatible", True
        credential.save()
        ids = p3_streams.setup_conversations(user, credential, args.replies)
        cookie = p3_streams.session_cookie(user)
        words = int(args.mb * 2**20 / 6.4)
        harness.configure(fake_url, reply=lorem(words), tokens_per_chunk=2000)
        port = harness.free_port()
        os.environ.update(dict(pair.split("=", 1) for pair in args.env))
        daphne = p3_streams.start_daphne(port, fake_url, 40)
        try:
            time.sleep(2)
            samples = [("start", rss_mb(daphne.pid))]
            for index, conversation_id in enumerate(ids, 1):
                html = asyncio.run(one_reply(port, conversation_id, cookie))
                samples.append(
                    (f"after reply {index} ({html / 2**20:.1f} MB HTML)", rss_mb(daphne.pid))
                )
            time.sleep(10)
            samples.append(("after 10 s quiet", rss_mb(daphne.pid)))
        finally:
            daphne.terminate()
            daphne.wait(15)
    print(f"Daphne RSS with {args.replies} replies of {args.mb} MB, env {args.env or 'as is'}:")
    for label, value in samples:
        print(f"  {label:32} {value:7.1f} MiB")


if __name__ == "__main__":
    main()
