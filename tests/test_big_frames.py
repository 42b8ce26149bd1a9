"""Every websocket message stays under Daphne's 1 MiB limit, so any reply settles and a reconnect
to a huge conversation converges (issue 8, item 2). Against a real Daphne: the in-process test
communicator has no such limit.

Before: a ~1 MB reply (or 137 KB whose highlighted HTML passed 1 MiB) never got its `final`
frame — Daphne dropped it and closed the socket (1011) — and a conversation page over 1 MiB made
every reconnect's catch-up fail the same way, looping. Now a frame over 512 KiB goes out as
`part` frames the page joins (chats/consumers.py, chat.js)."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.conf import settings
from django.test import Client

from chats import services
from chats.models import Conversation, Message, MessageStatus
from chats.rendering import RENDER_VERSION, render_markdown
from providers.fakeserver import tokenize
from providers.fakeserver.knobs import lorem
from tests import servers

pytestmark = pytest.mark.django_db(transaction=True)

MIB = 1024 * 1024


@pytest.fixture
def daphne(transactional_db, fake_provider, tmp_path):
    process, port = servers.start_daphne(
        servers.daphne_env(WORKBENCH_EGRESS_ALLOW=f"127.0.0.1:{fake_provider.port}"),
        tmp_path / "daphne.log",
    )
    yield f"127.0.0.1:{port}"
    servers.stop(process)


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


class Socket:
    """A websocket client that joins `part` frames the way chat.js does, and notes the size of
    every message it received."""

    def __init__(self, ws):
        self.ws, self.sizes, self.parts_seen = ws, [], 0

    async def frame(self, timeout=60) -> dict:
        pieces = []
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
            self.sizes.append(len(raw.encode() if isinstance(raw, str) else raw))
            frame = json.loads(raw)
            if frame["type"] != "part":
                assert not pieces, "a frame landed between the parts of another"
                return frame
            self.parts_seen += 1
            pieces.append(frame["data"])
            if frame["last"]:
                return json.loads("".join(pieces))

    async def until(self, kind: str, timeout=60) -> list[dict]:
        frames = []
        while True:
            frames.append(await self.frame(timeout))
            if frames[-1]["type"] == kind:
                return frames


async def open_socket(address, conversation_id, cookie):
    import websockets

    ws = await websockets.connect(
        f"ws://{address}/ws/chat/{conversation_id}/",
        origin=f"http://{address}",
        additional_headers={"Cookie": cookie},
        max_size=None,
    )
    return ws, Socket(ws)


def test_a_2_mb_reply_settles_through_frames_under_1_mib(
    alice, make_credential, fake_provider, daphne
):
    credential = make_credential(alice, "openai_compatible")
    conversation = services.conversation_start(actor=alice, credential=credential, model="big")
    reply = lorem(330_000)  # ≈ 2.1 MB
    assert len(reply) > 2 * MIB
    fake_provider.configure(reply=reply, tokens_per_chunk=3000)
    cookie = session_cookie(alice)

    async def scenario():
        ws, socket = await open_socket(daphne, conversation.pk, cookie)
        async with ws:
            await socket.until("hello")
            await ws.send(json.dumps({"type": "send", "parent_id": None, "content": "All of it"}))
            frames = await socket.until("final", timeout=120)
            # After the reply: a catch-up (as after a reconnect) brings the 2 MB path too.
            await ws.send(json.dumps({"type": "sync", "ref": "s1"}))
            path = await socket.until("path")
            await ws.send(json.dumps({"type": "ping", "ref": "p1"}))
            pong = await socket.until("pong")
        return frames, path[-1], pong[-1], socket

    frames, path, pong, socket = asyncio.run(scenario())
    final = frames[-1]
    assert final["status"] == MessageStatus.COMPLETE
    text = "".join(tokenize(reply))
    deltas = "".join(f["text"] for f in frames if f["type"] == "delta")
    assert deltas == text
    assert f'id="message-{final["id"]}"' in final["html"] and len(final["html"]) > 2 * MIB
    assert f'id="message-{final["id"]}"' in path["html"]
    assert pong["ref"] == "p1"  # the socket is still open: nothing was dropped
    assert max(socket.sizes) < MIB and socket.parts_seen >= 8
    saved = Message.objects.get(pk=final["id"])
    assert saved.status == MessageStatus.COMPLETE and saved.content == text


def big_conversation(alice, credential, *, messages: int, size: int) -> Conversation:
    conversation = services.conversation_start(actor=alice, credential=credential, model="big")
    parent = None
    for index in range(messages):
        text = f"Message {index}. " + lorem(size // 6)
        parent = Message.objects.create(
            conversation=conversation,
            parent=parent,
            role="user" if index % 2 == 0 else "assistant",
            content=text,
            content_html=str(render_markdown(text)),
            html_version=RENDER_VERSION,
            author=alice if index % 2 == 0 else None,
        )
    Conversation.objects.filter(pk=conversation.pk).update(message_count=messages)
    return conversation


def test_reconnects_to_a_5_mb_conversation_converge(alice, make_credential, fake_provider, daphne):
    credential = make_credential(alice, "openai_compatible")
    conversation = big_conversation(alice, credential, messages=10, size=550_000)
    ids = list(conversation.messages.order_by("id").values_list("id", flat=True))
    cookie = session_cookie(alice)

    async def reconnect_and_catch_up():
        ws, socket = await open_socket(daphne, conversation.pk, cookie)
        async with ws:
            await socket.until("hello")
            await ws.send(json.dumps({"type": "sync", "ref": "again"}))
            frames = await socket.until("hello")  # the path, then the replies in flight
            await ws.send(json.dumps({"type": "ping", "ref": "alive"}))
            await socket.until("pong")
        return frames, socket

    for _ in range(3):  # each reconnect catches up once, and the socket stays up
        frames, socket = asyncio.run(reconnect_and_catch_up())
        [path] = [f for f in frames if f["type"] == "path"]
        assert len(path["html"]) > 5 * MIB
        assert all(f'id="message-{pk}"' in path["html"] for pk in ids)
        assert max(socket.sizes) < MIB
