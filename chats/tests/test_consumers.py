"""The chat websocket (`ws/chat/<id>/`) through the real ASGI application: who may connect and
act, the frames of a reply, stop/regenerate/edit/switch/fork, reconnecting mid-reply, closing the
tab mid-reply, and closing sockets on logout or lost access.

ACCEPTANCE "Websocket tests" (issue 4). The per-persona connect answers and the foreign-id answer
of every id field are in tests/test_access_matrix.py; these tests check what those don't: the
frames, and that refused actions change nothing."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections
from django.test import Client
from django.urls import reverse

from billing.models import UsageRecord
from chats import replies, selectors, services, streaming
from chats.models import Conversation, Message, MessageStatus
from providers import services as provider_services
from providers.fakeserver import tokenize
from tests.websocket import connect

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 8  # seconds for any one frame: generous, replies here take well under a second or two


# --- Helpers (test_streaming.py uses them too) ---------------------------------------------------------


async def receive_until(
    ws, kind: str, *, timeout: float = TIMEOUT, ignore_errors=False
) -> list[dict]:
    """Frames up to and including the first of type `kind`."""
    frames = []
    deadline = time.monotonic() + timeout
    while True:
        frame = await ws.receive_json_from(timeout=max(0.05, deadline - time.monotonic()))
        frames.append(frame)
        if frame["type"] == kind:
            return frames
        if frame["type"] == "error" and not ignore_errors and kind != "error":
            raise AssertionError(f"error frame while waiting for {kind}: {frame}")


def of_type(frames: list[dict], kind: str) -> list[dict]:
    return [f for f in frames if f["type"] == kind]


def joined(deltas: list[dict]) -> str:
    """Apply delta frames the way the browser does (chat.js `applyText`); a gap fails."""
    text = ""
    for frame in deltas:
        assert frame["offset"] <= len(text), f"gap: offset {frame['offset']} > {len(text)}"
        text += frame["text"][len(text) - frame["offset"] :]
    return text


async def wait_for_reply(message_id: int, timeout: float = TIMEOUT) -> None:
    """Until the runner has saved the reply (whether anyone watches or not)."""
    reply = streaming.RUNNING.get(message_id)
    if reply is not None and reply.task is not None:
        await asyncio.wait_for(asyncio.shield(reply.task), timeout)


@sync_to_async
def get_message(pk: int) -> Message:
    return Message.objects.select_related("conversation").get(pk=pk)


@sync_to_async
def db_state() -> list[tuple]:
    """Everything a refused action could have changed."""
    return [
        *Conversation.objects.order_by("id").values_list(
            "id", "title", "active_root_id", "message_count", "cost_total", "model"
        ),
        *Message.objects.order_by("id").values_list(
            "id", "parent_id", "active_child_id", "status", "content", "error_code"
        ),
        ("usage", UsageRecord.objects.count()),
    ]


def fake_text(**knobs) -> str:
    from providers.fakeserver import Knobs

    return "".join(tokenize(Knobs().merged(**knobs).reply_for("")))


@pytest.fixture(autouse=True)
async def _no_reply_left_running():
    """A failed test must not leave a reply running into the next one; close the thread's DB
    connection so the test database can be flushed."""
    yield
    for reply in list(streaming.RUNNING.values()):
        reply.stop()
        if reply.task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(reply.task), 5)
    await sync_to_async(connections.close_all)()


@pytest.fixture
def fake_conversation(alice, make_credential):
    """A conversation on a local OpenAI-compatible credential pointing at the fake server ($0)."""
    credential = make_credential(alice, "openai_compatible")
    return services.conversation_start(actor=alice, credential=credential, model="fake-model")


def chat_path(conversation) -> str:
    return f"/ws/chat/{conversation.pk}/"


async def send_and_finish(ws, message: dict) -> tuple[dict, list[dict], dict]:
    """Send an action that starts a reply; returns (started, deltas, final)."""
    await ws.send_json_to(message)
    frames = await receive_until(ws, "final")
    started = next(f for f in frames if f["type"] in ("started", "resumed"))
    return started, of_type(frames, "delta"), frames[-1]


# --- Who may connect and act ---------------------------------------------------------------------------


async def test_charlie_cannot_connect_to_alices_conversation(charlie_outsider, conversation):
    async with connect(chat_path(conversation), user=charlie_outsider) as (_, connected):
        assert connected is False


async def test_charlie_cannot_act_on_alices_messages_from_his_own_conversation(
    alice, charlie_outsider, conversation
):
    # alice's conversation with an exchange.
    plan = await sync_to_async(services.message_send)(
        actor=alice, conversation=conversation, parent_id=None, content="alice's question"
    )
    await sync_to_async(replies.reply_finish)(
        message_id=plan.message_id, text="alice's answer", status=MessageStatus.INTERRUPTED
    )
    question_id, answer_id = plan.created
    charlie_echo = await sync_to_async(provider_services.credential_create)(
        actor=charlie_outsider, preset="echo", name="charlie echo"
    )
    his = await sync_to_async(services.conversation_start)(
        actor=charlie_outsider, credential=charlie_echo, model="echo"
    )
    before = await db_state()
    async with connect(chat_path(his), user=charlie_outsider) as (ws, connected):
        assert connected
        assert (await ws.receive_json_from(timeout=TIMEOUT))["type"] == "hello"
        for message in (
            {"type": "send", "parent_id": answer_id, "content": "x"},
            {"type": "edit", "message_id": question_id, "content": "x"},
            {"type": "regenerate", "message_id": answer_id},
            {"type": "retry", "message_id": answer_id},
            {"type": "continue", "message_id": answer_id},
            {"type": "stop", "message_id": answer_id},
            {"type": "fork", "message_id": answer_id},
            {"type": "switch", "message_id": answer_id},
        ):
            await ws.send_json_to({**message, "ref": message["type"]})
            frame = await ws.receive_json_from(timeout=TIMEOUT)
            assert frame["type"] == "error" and frame["code"] == "not_found", (message, frame)
            assert frame["ref"] == message["type"]
        assert await ws.receive_nothing(timeout=0.2)
    assert await db_state() == before


async def test_a_foreign_origin_is_refused(alice, conversation):
    async with connect(chat_path(conversation), user=alice, origin="http://evil.example") as (
        _,
        connected,
    ):
        assert connected is False
    async with connect(chat_path(conversation), user=alice) as (_, connected):
        assert connected is True


async def test_a_viewer_watches_a_reply_but_every_mutation_is_forbidden(
    team, bob_teammate, vera_viewer, make_credential, fake_provider
):
    fake_provider.configure(tokens_per_second=100, reply_tokens=40)  # ~0.4 s
    credential = await sync_to_async(make_credential)(team, "openai_compatible")
    conversation = await sync_to_async(services.conversation_start)(
        actor=bob_teammate, owner_team=team, credential=credential, model="fake-model"
    )
    async with (
        connect(chat_path(conversation), user=vera_viewer) as (vera, vera_connected),
        connect(chat_path(conversation), user=bob_teammate) as (bob, bob_connected),
    ):
        assert vera_connected and bob_connected
        assert (await vera.receive_json_from(timeout=TIMEOUT))["type"] == "hello"
        assert (await bob.receive_json_from(timeout=TIMEOUT))["type"] == "hello"

        await bob.send_json_to({"type": "send", "parent_id": None, "content": "Hi team"})
        started = (await receive_until(vera, "started"))[-1]
        reply_id = started["reply"]
        # Vera tries to stop bob's running reply: refused, and it runs on.
        await vera.send_json_to({"type": "stop", "message_id": reply_id, "ref": "v-stop"})
        frames = await receive_until(vera, "final", ignore_errors=True)
        errors = of_type(frames, "error")
        assert [(e["code"], e["ref"]) for e in errors] == [("forbidden", "v-stop")]
        assert of_type(frames, "delta"), "vera saw no deltas"
        final = frames[-1]
        assert final["id"] == reply_id and final["status"] == MessageStatus.COMPLETE
        assert joined(of_type(frames, "delta")) == fake_text(reply_tokens=40)
        await receive_until(bob, "final")

        reply = await get_message(reply_id)
        assert reply.status == MessageStatus.COMPLETE
        question_id = reply.parent_id
        before = await db_state()
        for message in (
            {"type": "send", "parent_id": reply_id, "content": "viewer's question"},
            {"type": "send", "parent_id": None, "content": "viewer's question"},
            {"type": "edit", "message_id": question_id, "content": "viewer's edit"},
            {"type": "regenerate", "message_id": reply_id},
            {"type": "retry", "message_id": reply_id},
            {"type": "continue", "message_id": reply_id},
            {"type": "stop", "message_id": reply_id},
            {"type": "fork", "message_id": reply_id},
        ):
            await vera.send_json_to({**message, "ref": "r"})
            frame = await vera.receive_json_from(timeout=TIMEOUT)
            assert frame["type"] == "error" and frame["code"] == "forbidden", (message, frame)
        assert await vera.receive_nothing(timeout=0.3)
        assert await bob.receive_nothing(timeout=0.05)  # nothing started for anyone
        assert await db_state() == before
    # Only bob's one call reached the provider.
    assert len([r for r in fake_provider.requests if r.method == "POST"]) == 1


async def test_a_parent_from_another_conversation_is_refused_and_nothing_is_created(
    alice, echo, conversation
):
    elsewhere = await sync_to_async(services.conversation_start)(
        actor=alice, credential=echo, model="echo"
    )
    plan = await sync_to_async(services.message_send)(
        actor=alice, conversation=elsewhere, parent_id=None, content="private"
    )
    await sync_to_async(replies.reply_finish)(
        message_id=plan.message_id, text="x", status=MessageStatus.COMPLETE
    )
    before = await db_state()
    async with connect(chat_path(conversation), user=alice) as (ws, connected):
        assert connected
        await ws.receive_json_from(timeout=TIMEOUT)  # hello
        for parent_id in (plan.created[0], plan.message_id, 10**9):
            await ws.send_json_to({"type": "send", "parent_id": parent_id, "content": "x"})
            frame = await ws.receive_json_from(timeout=TIMEOUT)
            assert frame["type"] == "error" and frame["code"] == "not_found"
        for bad in ("abc", True, [1], -1):
            await ws.send_json_to({"type": "send", "parent_id": bad, "content": "x"})
            frame = await ws.receive_json_from(timeout=TIMEOUT)
            assert frame["type"] == "error" and frame["code"] == "invalid", (bad, frame)
        assert await ws.receive_nothing(timeout=0.2)
    assert await db_state() == before


async def test_an_unknown_message_type_gets_a_clear_error(alice, conversation):
    async with connect(chat_path(conversation), user=alice) as (ws, _connected):
        await ws.receive_json_from(timeout=TIMEOUT)
        for content in ({"type": "explode"}, {"type": "chat_frame"}):
            await ws.send_json_to(content)
            frame = await ws.receive_json_from(timeout=TIMEOUT)
            assert frame["type"] == "error" and frame["code"] == "bad_request"
        for content in ({"no": "type"}, [1, 2]):  # not a message at all (DESIGN §5: invalid)
            await ws.send_json_to(content)
            frame = await ws.receive_json_from(timeout=TIMEOUT)
            assert frame["type"] == "error" and frame["code"] == "invalid"
        await ws.send_json_to({"type": "ping", "ref": 7})
        assert await ws.receive_json_from(timeout=TIMEOUT) == {"type": "pong", "ref": 7}


# --- Logout and lost access close the socket ----------------------------------------------------------


async def _socket_on_session(client: Client, path: str) -> WebsocketCommunicator:
    from workbench.asgi import application

    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    communicator = WebsocketCommunicator(
        application,
        path,
        headers=[
            (b"host", b"localhost"),
            (b"origin", b"http://localhost"),
            (b"cookie", cookie.encode()),
        ],
    )
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "hello"
    return communicator


async def test_logging_out_closes_that_sessions_sockets(alice, conversation):
    this_tab, other_browser = Client(), Client()
    await sync_to_async(this_tab.force_login)(alice)
    await sync_to_async(other_browser.force_login)(alice)
    ws = await _socket_on_session(this_tab, chat_path(conversation))
    try:
        # Logging out another session of the same user leaves this socket open.
        response = await sync_to_async(other_browser.post)(reverse("accounts:logout"))
        assert response.status_code == 302
        await ws.send_json_to({"type": "ping"})
        assert (await ws.receive_json_from(timeout=TIMEOUT))["type"] == "pong"

        response = await sync_to_async(this_tab.post)(reverse("accounts:logout"))
        assert response.status_code == 302
        assert await ws.receive_output(timeout=TIMEOUT) == {
            "type": "websocket.close",
            "code": 4401,
        }
    finally:
        await ws.disconnect()


async def test_removing_a_member_from_the_team_closes_their_socket(
    alice, team, bob_teammate, vera_viewer, team_conversation
):
    async with (
        connect(chat_path(team_conversation), user=bob_teammate) as (bob, bob_connected),
        connect(chat_path(team_conversation), user=vera_viewer) as (vera, vera_connected),
    ):
        assert bob_connected and vera_connected
        await bob.receive_json_from(timeout=TIMEOUT)
        await vera.receive_json_from(timeout=TIMEOUT)

        from accounts import services as account_services

        membership = await sync_to_async(team.memberships.get)(user=bob_teammate)
        await sync_to_async(account_services.membership_remove)(actor=alice, membership=membership)

        assert await bob.receive_output(timeout=TIMEOUT) == {
            "type": "websocket.close",
            "code": 4403,
        }
        # Vera keeps her access and her socket.
        await vera.send_json_to({"type": "ping"})
        assert (await vera.receive_json_from(timeout=TIMEOUT))["type"] == "pong"


async def test_a_role_change_that_keeps_read_access_keeps_the_socket_open(
    alice, team, bob_teammate, team_conversation
):
    from accounts import services as account_services
    from accounts.models import Role

    async with connect(chat_path(team_conversation), user=bob_teammate) as (bob, connected):
        assert connected
        await bob.receive_json_from(timeout=TIMEOUT)
        membership = await sync_to_async(team.memberships.get)(user=bob_teammate)
        await sync_to_async(account_services.membership_change_role)(
            actor=alice, membership=membership, role=Role.VIEWER
        )
        await bob.send_json_to({"type": "ping"})
        assert (await bob.receive_json_from(timeout=TIMEOUT))["type"] == "pong"
        # ... but he is a viewer now: posting is refused.
        await bob.send_json_to({"type": "send", "parent_id": None, "content": "still here?"})
        frame = await bob.receive_json_from(timeout=TIMEOUT)
        assert frame["type"] == "error" and frame["code"] == "forbidden"


# --- A reply's frames ---------------------------------------------------------------------------------


async def test_send_streams_started_then_deltas_then_the_rendered_final(
    alice, make_credential, fake_provider
):
    fake_provider.configure(reply="Some **bold** words, then `code` and more words to stream.")
    credential = await sync_to_async(make_credential)(alice, "openai")
    conversation = await sync_to_async(services.conversation_start)(
        actor=alice, credential=credential, model="gpt-4o-mini"
    )
    async with connect(chat_path(conversation), user=alice) as (ws, connected):
        assert connected
        hello = await ws.receive_json_from(timeout=TIMEOUT)
        assert hello == {"type": "hello", "conversation": conversation.pk, "snapshots": []}

        started, deltas, final = await send_and_finish(
            ws, {"type": "send", "parent_id": None, "content": "Say *something*", "ref": "s1"}
        )

    question_id, reply_id = await sync_to_async(list)(
        Message.objects.filter(conversation=conversation)
        .order_by("id")
        .values_list("id", flat=True)
    )
    assert started["ref"] == "s1" and started["after"] is None and started["reply"] == reply_id
    assert f'id="message-{question_id}"' in started["html"]
    assert f'id="message-{reply_id}"' in started["html"]
    assert "<em>something</em>" in started["html"]  # the question, rendered
    assert 'data-status="streaming"' in started["html"]  # the placeholder

    assert deltas, "no delta frames"
    offsets = [d["offset"] for d in deltas]
    assert offsets == sorted(set(offsets)) and offsets[0] == 0
    assert all(d["id"] == reply_id for d in deltas)
    reply = await get_message(reply_id)
    assert "".join(d["text"] for d in deltas) == reply.content
    assert reply.content == "Some **bold** words, then `code` and more words to stream."

    assert final["type"] == "final" and final["id"] == reply_id
    assert final["status"] == MessageStatus.COMPLETE == reply.status
    assert f'id="message-{reply_id}"' in final["html"]
    rendered, _, raw = final["html"].partition('<template class="msg-raw">')
    assert "<strong>bold</strong>" in rendered and "**bold**" not in rendered
    assert raw.startswith(reply.content + "</template>")  # the Markdown itself, for Edit/Copy
    assert 'data-status="complete"' in final["html"]
    assert reply.cost and reply.cost > 0
    conversation_frame = final["conversation"]
    assert conversation_frame["title"] == "Say something"
    assert "This conversation cost" in conversation_frame["cost_html"]
    assert reply.conversation.cost_total == reply.cost
    assert f"{reply.cost:.6f}".rstrip("0") in conversation_frame["cost_html"]


async def test_stop_mid_reply_keeps_the_text_and_charges_one_stopped_call(
    alice, fake_conversation, fake_provider
):
    fake_provider.configure(tokens_per_second=20, reply_tokens=200)  # 10 s if not stopped
    async with connect(chat_path(fake_conversation), user=alice) as (ws, connected):
        assert connected
        await ws.receive_json_from(timeout=TIMEOUT)
        await ws.send_json_to({"type": "send", "parent_id": None, "content": "Go on"})
        frames = await receive_until(ws, "started")
        reply_id = frames[-1]["reply"]
        deltas = []
        while len("".join(d["text"] for d in deltas).split()) < 3:
            deltas += of_type(await receive_until(ws, "delta"), "delta")

        stop_sent = time.monotonic()
        await ws.send_json_to({"type": "stop", "message_id": reply_id})
        frames = await receive_until(ws, "final")
        stopped_after = time.monotonic() - stop_sent
        deltas += of_type(frames, "delta")
        final = frames[-1]

    assert stopped_after < 1.0, f"stop took {stopped_after:.2f}s"
    assert final["status"] == MessageStatus.STOPPED
    reply = await get_message(reply_id)
    assert reply.status == MessageStatus.STOPPED and reply.error_code == "stopped"
    assert reply.content == joined(deltas)
    assert fake_text(reply_tokens=200).startswith(reply.content)
    assert 3 <= len(reply.content.split()) < 200
    rows = await sync_to_async(list)(UsageRecord.objects.filter(context__message=reply_id))
    assert len(rows) == 1
    [row] = rows
    assert row.status == "stopped" and row.output_tokens > 0
    assert reply.usage_id == row.pk and reply.output_tokens == row.output_tokens
    assert await sync_to_async(UsageRecord.objects.count)() == 1


async def test_regenerate_makes_a_sibling_reply(alice, conversation):
    async with connect(chat_path(conversation), user=alice) as (ws, _connected):
        await ws.receive_json_from(timeout=TIMEOUT)
        _first_started, _, first = await send_and_finish(
            ws, {"type": "send", "parent_id": None, "content": "Question"}
        )
        first_id = first["id"]
        started, deltas, final = await send_and_finish(
            ws, {"type": "regenerate", "message_id": first_id}
        )
    second = await get_message(final["id"])
    question_id = second.parent_id
    assert started["after"] == question_id and started["reply"] == second.pk
    assert second.pk != first_id and (await get_message(first_id)).parent_id == question_id
    assert final["status"] == MessageStatus.COMPLETE
    assert '<span class="sib-count">2/2</span>' in final["html"]
    assert f'data-target="{first_id}"' in final["html"]  # ‹ goes back to the first reply
    assert joined(deltas) == second.content


async def test_edit_makes_a_new_branch(alice, conversation):
    async with connect(chat_path(conversation), user=alice) as (ws, _connected):
        await ws.receive_json_from(timeout=TIMEOUT)
        _, _, first = await send_and_finish(
            ws, {"type": "send", "parent_id": None, "content": "Original question"}
        )
        original_id = (await get_message(first["id"])).parent_id
        started, _, final = await send_and_finish(
            ws, {"type": "edit", "message_id": original_id, "content": "Edited question"}
        )
    reply = await get_message(final["id"])
    edited = await get_message(reply.parent_id)
    assert edited.pk != original_id and edited.parent_id is None
    assert edited.content == "Edited question"
    assert (await get_message(original_id)).content == "Original question"
    assert started["after"] is None
    assert "Edited question" in started["html"]
    assert '<span class="sib-count">2/2</span>' in started["html"]
    assert "Edited question" in reply.content  # Echo: the model got the edited text ...
    assert "Original question" not in reply.content  # ... and not the other branch
    # After a reload the edited branch is the one shown.
    view = await sync_to_async(selectors.conversation_view)(conversation=reply.conversation)
    assert [e.message.pk for e in view.entries] == [edited.pk, reply.pk]


async def test_switch_sends_the_path_through_the_other_sibling(alice, conversation):
    async with connect(chat_path(conversation), user=alice) as (ws, _connected):
        await ws.receive_json_from(timeout=TIMEOUT)
        _, _, first = await send_and_finish(
            ws, {"type": "send", "parent_id": None, "content": "Question"}
        )
        _, _, second = await send_and_finish(ws, {"type": "regenerate", "message_id": first["id"]})

        await ws.send_json_to({"type": "switch", "message_id": first["id"], "ref": "sw"})
        frame = await ws.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "path" and frame["ref"] == "sw"
    assert f'id="message-{first["id"]}"' in frame["html"]
    assert f'id="message-{second["id"]}"' not in frame["html"]
    assert '<span class="sib-count">1/2</span>' in frame["html"]
    question = await get_message((await get_message(first["id"])).parent_id)
    assert question.active_child_id == first["id"]  # alice may write: the choice is kept


async def test_fork_answers_with_the_url_of_a_new_conversation(alice, conversation):
    async with connect(chat_path(conversation), user=alice) as (ws, _connected):
        await ws.receive_json_from(timeout=TIMEOUT)
        _, _, final = await send_and_finish(
            ws, {"type": "send", "parent_id": None, "content": "Question"}
        )
        await ws.send_json_to({"type": "fork", "message_id": final["id"], "ref": "f"})
        frame = await ws.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "forked" and frame["ref"] == "f"
    match = re.fullmatch(r"/chat/(\d+)/", frame["url"])
    assert match, frame["url"]
    fork = await sync_to_async(Conversation.objects.get)(pk=int(match.group(1)))
    assert fork.pk != conversation.pk and fork.owner_user_id == alice.pk
    assert frame["url"] == reverse("chats:detail", args=[fork.pk])
    copies = await sync_to_async(list)(fork.messages.order_by("id").values_list("role", flat=True))
    assert copies == ["user", "assistant"]


# --- Reconnecting and closing the tab --------------------------------------------------------------------


async def test_reconnecting_during_a_reply_shows_the_text_so_far_then_the_live_tail(
    alice, fake_conversation, fake_provider
):
    fake_provider.configure(tokens_per_second=25, reply_tokens=30)  # ~1.2 s
    async with connect(chat_path(fake_conversation), user=alice) as (first_tab, connected):
        await first_tab.receive_json_from(timeout=TIMEOUT)
        await first_tab.send_json_to({"type": "send", "parent_id": None, "content": "Go"})
        reply_id = (await receive_until(first_tab, "started"))[-1]["reply"]
        seen = ""
        while len(seen.split()) < 5:
            seen += "".join(
                d["text"] for d in of_type(await receive_until(first_tab, "delta"), "delta")
            )

        async with connect(chat_path(fake_conversation), user=alice) as (second_tab, connected):
            assert connected
            hello = await second_tab.receive_json_from(timeout=TIMEOUT)
            assert hello["type"] == "hello"
            [snapshot] = hello["snapshots"]
            assert snapshot["id"] == reply_id and snapshot["type"] == "snapshot"
            assert snapshot["text"].startswith(seen) and len(snapshot["text"].split()) >= 5
            assert snapshot["offset"] == len(snapshot["text"])
            frames = await receive_until(second_tab, "final")
            await receive_until(first_tab, "final")

    tail = of_type(frames, "delta")
    assert tail, "no live tail after the snapshot"
    assert tail[0]["offset"] <= snapshot["offset"]  # no gap after the snapshot
    full = joined([{"offset": 0, "text": snapshot["text"]}, *tail])
    reply = await get_message(reply_id)
    assert full == reply.content == fake_text(reply_tokens=30)
    assert frames[-1]["status"] == MessageStatus.COMPLETE


async def test_a_tab_connecting_while_its_hello_is_slow_misses_no_text(
    alice, fake_conversation, fake_provider, monkeypatch
):
    """BUG: the consumer takes the snapshot (in `_hello`, on a DB thread) *before* it subscribes
    to the hub; frames flushed in between reach the first tab only, so the new tab has a gap
    (chat.js drops text after a gap until the final frame) — or misses the final frame itself
    and shows the reply as streaming forever. A slow database hop makes the window visible."""
    from chats.consumers import ChatConsumer

    fake_provider.configure(tokens_per_second=25, reply_tokens=30)
    original = ChatConsumer._hello

    def slow_hello(self):
        hello = original(self)
        time.sleep(0.3)  # the DB thread is busy: ~7 tokens arrive and are flushed meanwhile
        return hello

    async with connect(chat_path(fake_conversation), user=alice) as (first_tab, _):
        await first_tab.receive_json_from(timeout=TIMEOUT)
        await first_tab.send_json_to({"type": "send", "parent_id": None, "content": "Go"})
        await receive_until(first_tab, "started")
        await receive_until(first_tab, "delta")
        monkeypatch.setattr(ChatConsumer, "_hello", slow_hello)
        async with connect(chat_path(fake_conversation), user=alice) as (second_tab, connected):
            assert connected
            hello = await second_tab.receive_json_from(timeout=TIMEOUT)
            [snapshot] = hello["snapshots"]
            frames = await receive_until(second_tab, "final")
            await receive_until(first_tab, "final")
    tail = of_type(frames, "delta")
    assert tail and tail[0]["offset"] <= snapshot["offset"], (
        f"gap: snapshot ends at {snapshot['offset']}, next delta starts at {tail[0]['offset']}"
    )


async def test_closing_the_tab_mid_reply_loses_nothing(alice, fake_conversation, fake_provider):
    fake_provider.configure(tokens_per_second=50, reply_tokens=40)  # ~0.8 s
    async with connect(chat_path(fake_conversation), user=alice) as (ws, _):
        await ws.receive_json_from(timeout=TIMEOUT)
        await ws.send_json_to({"type": "send", "parent_id": None, "content": "Go"})
        reply_id = (await receive_until(ws, "started"))[-1]["reply"]
        await receive_until(ws, "delta")
    # The tab is closed; the reply goes on server-side.
    assert reply_id in streaming.RUNNING
    assert (await get_message(reply_id)).status == MessageStatus.STREAMING
    await wait_for_reply(reply_id)

    reply = await get_message(reply_id)
    assert reply.status == MessageStatus.COMPLETE
    assert reply.content == fake_text(reply_tokens=40)
    assert reply.output_tokens == 40
    # On reload, it's all there and nothing is streaming.
    async with connect(chat_path(fake_conversation), user=alice) as (ws, _):
        assert (await ws.receive_json_from(timeout=TIMEOUT))["snapshots"] == []
    assert await sync_to_async(UsageRecord.objects.filter(context__message=reply_id).count)() == 1
