"""Behaviour of the chats REST API: conversations CRUD, the message tree, posting a message (JSON
and Server-Sent Events), stop, fork, validation errors, and replies that outlive their client.
Status codes per persona for every route are in tests/test_access_matrix.py; these tests look at
bodies and state."""

from __future__ import annotations

import asyncio
import itertools
import json
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient

from billing.models import UsageRecord
from chats import services
from chats.models import Conversation, Message
from providers import services as provider_services
from providers.fakeserver.knobs import Knobs
from tests.api_client import assert_error, bearer


@pytest.fixture(autouse=True)
def _api_test_defaults(fresh_cache, one_attempt):
    """Throttle counters start at zero; errors come on the first attempt (no retry backoff)."""


def echo_for(user):
    return provider_services.credentials_ensure_echo(user=user)


def conversation_for(user, credential, model="echo", **fields) -> Conversation:
    return services.conversation_start(actor=user, credential=credential, model=model, **fields)


def messages_url(conversation) -> str:
    return f"/api/conversations/{conversation.pk}/messages/"


def parse_sse(raw: str) -> list[tuple[str, dict]]:
    events = []
    for block in raw.split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


@pytest.fixture
async def close_thread_connections():
    """Async tests reach the database from asgiref's single sync thread; close its connection."""
    yield
    await sync_to_async(connections.close_all)()


# --- Conversations CRUD ----------------------------------------------------------------------------


def test_a_user_creates_a_personal_conversation_with_a_model_system_prompt_and_params(
    alice, api_for
):
    echo = echo_for(alice)

    response = api_for(alice).post(
        "/api/conversations/",
        {
            "credential": echo.pk,
            "model": "echo",
            "system_prompt": "Be brief.",
            "params": {"temperature": 0.3, "max_tokens": 64, "top_p": None},
        },
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["owner"] == {"type": "user", "team_id": None}
    assert body["credential"] == echo.pk
    assert body["model"] == "echo"
    assert body["system_prompt"] == "Be brief."
    assert body["params"] == {"temperature": 0.3, "max_tokens": 64}
    assert body["title"] == ""
    assert body["message_count"] == 0
    conversation = Conversation.objects.get(pk=body["id"])
    assert conversation.owner_user == alice
    assert conversation.created_by == alice


def test_a_member_creates_a_team_conversation_with_the_teams_credential(
    alice, team, bob_teammate, api_for, make_credential
):
    credential = make_credential(team, "openai", name="Acme OpenAI")

    response = api_for(bob_teammate).post(
        "/api/conversations/",
        {"owner_team": team.pk, "credential": credential.pk, "model": "gpt-4o-mini"},
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["owner"] == {"type": "team", "team_id": team.pk}
    conversation = Conversation.objects.get(pk=body["id"])
    assert conversation.owner_team == team
    assert conversation.owner_user is None
    assert conversation.credential == credential


def test_the_list_shows_own_conversations_and_a_teams_only_when_asked(
    alice, team, bob_teammate, api_for
):
    mine = conversation_for(alice, echo_for(alice), title="Mine")
    teams = services.conversation_start(actor=alice, owner_team=team, title="Team talk")
    bobs = conversation_for(bob_teammate, echo_for(bob_teammate), title="Bob's own")
    api = api_for(alice)

    own = api.get("/api/conversations/").json()
    with_team = api.get("/api/conversations/", {"team": team.pk}).json()

    assert [c["id"] for c in own["results"]] == [mine.pk]
    assert {c["id"] for c in with_team["results"]} == {mine.pk, teams.pk}
    assert bobs.pk not in {c["id"] for c in with_team["results"]}
    # newest activity first
    assert [c["id"] for c in with_team["results"]] == [teams.pk, mine.pk]


def test_the_list_searches_titles_and_message_text_case_insensitively(alice, api_for):
    echo = echo_for(alice)
    by_title = conversation_for(alice, echo, title="Quarterly Budget")
    by_message = conversation_for(alice, echo, title="Untitled thing")
    Message.objects.create(
        conversation=by_message, role="user", content="what about the BUDGET?", author=alice
    )
    conversation_for(alice, echo, title="Holiday plans")
    api = api_for(alice)

    found = api.get("/api/conversations/", {"q": "budget"}).json()["results"]
    nothing = api.get("/api/conversations/", {"q": "zebra"}).json()["results"]

    assert {c["id"] for c in found} == {by_title.pk, by_message.pk}
    assert nothing == []


def test_patch_changes_title_params_and_model(alice, api_for, make_credential):
    echo = echo_for(alice)
    openai = make_credential(alice, "openai")
    conversation = conversation_for(alice, echo, params={"temperature": 1.0})
    url = f"/api/conversations/{conversation.pk}/"

    response = api_for(alice).patch(
        url,
        {
            "title": "Renamed",
            "params": {"temperature": 0.2, "seed": 7},
            "credential": openai.pk,
            "model": "gpt-4o",
        },
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["title"], body["credential"], body["model"]) == ("Renamed", openai.pk, "gpt-4o")
    assert body["params"] == {"temperature": 0.2, "seed": 7}
    conversation.refresh_from_db()
    assert conversation.title_source == "user"
    assert conversation.params == {"temperature": 0.2, "seed": 7}
    assert conversation.model == "gpt-4o"


def test_patch_with_an_empty_title_goes_back_to_the_automatic_one(alice, api_for):
    conversation = conversation_for(alice, echo_for(alice), title="Named")

    response = api_for(alice).patch(f"/api/conversations/{conversation.pk}/", {"title": ""})

    assert response.status_code == 200
    conversation.refresh_from_db()
    assert (conversation.title, conversation.title_source) == ("", "auto")


def test_delete_removes_the_conversation_and_its_messages(alice, api_for):
    conversation = conversation_for(alice, echo_for(alice))
    Message.objects.create(conversation=conversation, role="user", content="hi", author=alice)

    response = api_for(alice).delete(f"/api/conversations/{conversation.pk}/")

    assert response.status_code == 204
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Message.objects.filter(conversation_id=conversation.pk).exists()


# --- The message tree -------------------------------------------------------------------------------


def test_the_message_list_returns_every_branch_with_parents_and_the_visible_path(alice, api_for):
    conversation = conversation_for(alice, echo_for(alice))
    api = api_for(alice)
    first = api.post(messages_url(conversation), {"content": "first question"}).json()
    # An edit of the first question: a sibling root, which becomes the visible branch.
    second = api.post(
        messages_url(conversation), {"content": "second question", "parent_id": None}
    ).json()

    response = api.get(messages_url(conversation))

    assert response.status_code == 200
    body = response.json()
    by_id = {m["id"]: m for m in body["messages"]}
    q1, a1 = first["user_message"]["id"], first["reply"]["id"]
    q2, a2 = second["user_message"]["id"], second["reply"]["id"]
    assert set(by_id) == {q1, a1, q2, a2}
    assert by_id[q1]["parent"] is None
    assert by_id[q2]["parent"] is None
    assert by_id[a1]["parent"] == q1
    assert by_id[a2]["parent"] == q2
    assert body["visible_path"] == [q2, a2]


def test_posting_to_echo_returns_the_user_message_and_a_complete_local_reply(alice, api_for):
    conversation = conversation_for(alice, echo_for(alice), system_prompt="Be brief.")

    response = api_for(alice).post(messages_url(conversation), {"content": "Hello, echo!"})

    assert response.status_code == 201, response.content
    body = response.json()
    user_message, reply = body["user_message"], body["reply"]
    assert (user_message["role"], user_message["status"]) == ("user", "complete")
    assert user_message["content"] == "Hello, echo!"
    assert user_message["parent"] is None
    assert (reply["role"], reply["status"]) == ("assistant", "complete")
    assert reply["parent"] == user_message["id"]
    assert "Hello, echo!" in reply["content"]
    assert "Be brief." in reply["content"]  # Echo shows what the model received
    assert reply["model"] == "echo"
    assert reply["input_tokens"] > 0
    assert reply["output_tokens"] > 0
    assert reply["cost_source"] == "local"
    assert Decimal(reply["cost"]) == 0
    assert reply["ttft_ms"] is not None
    assert reply["duration_ms"] is not None
    assert reply["usage"] is not None
    row = UsageRecord.objects.get(pk=reply["usage"])
    assert (row.feature, row.status, row.cost_source) == ("chat", "ok", "local")
    assert row.context == {"conversation": conversation.pk, "message": reply["id"]}
    conversation.refresh_from_db()
    assert conversation.message_count == 2
    assert conversation.title == "Hello, echo!"  # the free title from the first question


def test_posting_with_a_priced_provider_records_the_cost_of_the_usage_row(
    alice, api_for, make_credential, fake_provider
):
    credential = make_credential(alice, "openai")
    conversation = conversation_for(alice, credential, model="gpt-4o-mini")

    response = api_for(alice).post(messages_url(conversation), {"content": "Hi there"})

    assert response.status_code == 201, response.content
    reply = response.json()["reply"]
    assert reply["status"] == "complete"
    assert reply["content"] == "Hello from the fake gpt-4o-mini! How can I help you today?"
    assert reply["output_tokens"] == 11
    assert reply["cost_source"] == "provider"
    cost = Decimal(reply["cost"])
    assert cost > 0
    row = UsageRecord.objects.get(pk=reply["usage"])
    assert row.cost == cost
    assert (row.input_tokens, row.output_tokens) == (reply["input_tokens"], 11)
    conversation.refresh_from_db()
    assert conversation.cost_total == cost


def test_posting_with_a_null_parent_starts_a_new_root_beside_the_first_message(alice, api_for):
    conversation = conversation_for(alice, echo_for(alice))
    api = api_for(alice)
    first = api.post(messages_url(conversation), {"content": "one"}).json()
    follow_up = api.post(messages_url(conversation), {"content": "two"}).json()
    assert follow_up["user_message"]["parent"] == first["reply"]["id"]  # omitted: the leaf

    again = api.post(messages_url(conversation), {"content": "one, again", "parent_id": None})

    assert again.status_code == 201
    root = again.json()["user_message"]
    assert root["parent"] is None
    roots = Message.objects.filter(conversation=conversation, parent__isnull=True)
    assert set(roots.values_list("id", flat=True)) == {first["user_message"]["id"], root["id"]}
    tree = api.get(messages_url(conversation)).json()
    assert tree["visible_path"] == [root["id"], again.json()["reply"]["id"]]


def test_fork_makes_a_new_conversation_holding_the_path_up_to_the_message(alice, api_for):
    conversation = conversation_for(alice, echo_for(alice), system_prompt="S", title="Original")
    api = api_for(alice)
    first = api.post(messages_url(conversation), {"content": "one"}).json()
    api.post(messages_url(conversation), {"content": "two"})

    response = api.post(
        f"/api/conversations/{conversation.pk}/fork/", {"message_id": first["reply"]["id"]}
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"] != conversation.pk
    assert body["title"] == "Fork of Original"
    assert body["forked_from"] == first["reply"]["id"]
    assert body["system_prompt"] == "S"
    assert body["message_count"] == 2
    copies = list(Message.objects.filter(conversation_id=body["id"]).order_by("created_at", "id"))
    assert [(m.role, m.content) for m in copies] == [
        ("user", "one"),
        ("assistant", first["reply"]["content"]),
    ]
    assert copies[0].parent_id is None
    assert copies[1].parent_id == copies[0].pk
    tree = api.get(f"/api/conversations/{body['id']}/messages/").json()
    assert tree["visible_path"] == [m.pk for m in copies]
    assert Message.objects.filter(conversation=conversation).count() == 4  # untouched


# --- Validation and permissions -------------------------------------------------------------------------


def test_empty_content_is_an_invalid_error_naming_the_field(alice, api_for):
    conversation = conversation_for(alice, echo_for(alice))
    api = api_for(alice)

    blank = api.post(messages_url(conversation), {"content": ""})
    spaces = api.post(messages_url(conversation), {"content": "   "})

    for response in (blank, spaces):
        error = assert_error(response, 400, "invalid")
        assert set(error["fields"]) == {"content"}
    assert not Message.objects.filter(conversation=conversation).exists()


def test_an_out_of_range_temperature_is_an_invalid_error_and_changes_nothing(alice, api_for):
    conversation = conversation_for(alice, echo_for(alice), params={"temperature": 1.0})
    api = api_for(alice)

    patched = api.patch(
        f"/api/conversations/{conversation.pk}/", {"params": {"temperature": 5}, "title": "X"}
    )
    created = api.post("/api/conversations/", {"params": {"temperature": 5}})

    for response in (patched, created):
        error = assert_error(response, 400, "invalid")
        assert set(error["fields"]) == {"params"}
        assert set(error["fields"]["params"]) == {"temperature"}
    conversation.refresh_from_db()
    assert conversation.params == {"temperature": 1.0}
    assert conversation.title == ""
    assert Conversation.objects.count() == 1


def test_a_conversation_without_a_model_refuses_a_message_with_a_clear_error(alice, api_for):
    conversation = services.conversation_start(actor=alice)

    response = api_for(alice).post(messages_url(conversation), {"content": "hi"})

    error = assert_error(response, 400, "invalid")
    assert set(error["fields"]) == {"model"}


def test_a_read_only_token_cannot_post_a_message(alice, api_for):
    conversation = conversation_for(alice, echo_for(alice))

    response = api_for(alice, "read").post(messages_url(conversation), {"content": "hi"})

    error = assert_error(response, 403, "permission_denied")
    assert "read-only" in error["message"]
    assert not Message.objects.filter(conversation=conversation).exists()


# --- Server-Sent Events -----------------------------------------------------------------------------


async def post_stream(token: str, conversation, body: dict):
    # Per request: AsyncClient(headers=...) does not reach the ASGI scope.
    return await AsyncClient().post(
        messages_url(conversation),
        json.dumps({**body, "stream": True}),
        content_type="application/json",
        headers=bearer(token),
    )


async def read_all(response) -> list[tuple[str, dict]]:
    chunks = [chunk async for chunk in response.streaming_content]
    return parse_sse(b"".join(chunks).decode())


@sync_to_async
def setup_stream(user, token_for, make_credential=None, preset="echo", model="echo"):
    credential = echo_for(user) if preset == "echo" else make_credential(user, preset)
    conversation = conversation_for(user, credential, model=model)
    return token_for(user, "write"), conversation


@pytest.mark.django_db(transaction=True)
async def test_a_streamed_post_sends_started_deltas_and_a_complete_finished_event(
    alice, token_for, make_credential, fake_provider, close_thread_connections
):
    fake_provider.configure(reply_tokens=30, tokens_per_second=300)
    token, conversation = await setup_stream(
        alice, token_for, make_credential, "openai", "gpt-4o-mini"
    )

    response = await post_stream(token, conversation, {"content": "Stream, please"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache"
    events = await read_all(response)
    names = [name for name, _ in events]
    assert names[0] == "started"
    assert names[-1] == "finished"
    assert names.count("finished") == 1
    assert set(names[1:-1]) == {"delta"}
    assert len(names) > 3  # streamed in several frames, not one piece
    started = events[0][1]
    deltas = [data for name, data in events if name == "delta"]
    offsets = [d["offset"] for d in deltas]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    assert offsets[0] == 0
    for before, after in itertools.pairwise(deltas):
        assert after["offset"] == before["offset"] + len(before["text"])
    finished = events[-1][1]
    assert finished["id"] == started["reply"]
    assert finished["status"] == "complete"
    assert finished["content"] == "".join(d["text"] for d in deltas)
    assert finished["content"].startswith("lorem ipsum dolor")
    assert finished["output_tokens"] == 30
    reply = await Message.objects.aget(pk=started["reply"])
    assert (reply.status, reply.content) == ("complete", finished["content"])
    user_message = await Message.objects.aget(pk=started["user_message"])
    assert (user_message.content, reply.parent_id) == ("Stream, please", user_message.pk)


@pytest.mark.django_db(transaction=True)
async def test_a_provider_error_ends_the_stream_with_an_error_status_and_code(
    alice, token_for, make_credential, fake_provider, close_thread_connections
):
    token, conversation = await setup_stream(
        alice, token_for, make_credential, "openai", "gpt-4o-mini"
    )
    fake_provider.enqueue(status=500)

    response = await post_stream(token, conversation, {"content": "Hi"})

    assert response.status_code == 200  # the stream had started; the error is in `finished`
    events = await read_all(response)
    assert [name for name, _ in events] == ["started", "finished"]
    finished = events[-1][1]
    assert finished["status"] == "error"
    assert finished["error_code"] == "provider_error"
    assert finished["error_message"]
    reply = await Message.objects.aget(pk=finished["id"])
    assert (reply.status, reply.error_code) == ("error", "provider_error")
    row = await UsageRecord.objects.aget(context__message=finished["id"])
    assert (row.status, row.error_code) == ("error", "provider_error")


async def _consume(response, frames: asyncio.Queue) -> None:
    buffer = ""
    async for chunk in response.streaming_content:
        buffer += chunk.decode()
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            for event in parse_sse(block + "\n\n"):
                await frames.put(event)


async def _next_event(frames: asyncio.Queue, name: str, timeout: float = 5.0):
    while True:
        event = await asyncio.wait_for(frames.get(), timeout)
        if event[0] == name:
            return event[1]


async def _wait_for_status(message_id: int, statuses: set[str], timeout: float = 10.0) -> Message:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        message = await Message.objects.aget(pk=message_id)
        if message.status in statuses or loop.time() > deadline:
            return message
        await asyncio.sleep(0.05)


@pytest.mark.django_db(transaction=True)
async def test_stop_ends_a_streaming_reply_as_stopped_keeping_its_partial_text(
    alice, token_for, make_credential, fake_provider, close_thread_connections
):
    fake_provider.configure(tokens_per_second=20, reply_tokens=200)
    token, conversation = await setup_stream(
        alice, token_for, make_credential, "openai", "gpt-4o-mini"
    )
    response = await post_stream(token, conversation, {"content": "Talk for a while"})
    frames: asyncio.Queue = asyncio.Queue()
    reader = asyncio.create_task(_consume(response, frames))
    try:
        started = await _next_event(frames, "started")
        reply_id = started["reply"]
        await _next_event(frames, "delta")

        stop = await AsyncClient().post(
            f"/api/conversations/{conversation.pk}/messages/{reply_id}/stop/",
            headers=bearer(token),
        )

        assert stop.status_code == 202, stop.content
        assert stop.json() == {"stopping": True}
        finished = await _next_event(frames, "finished", timeout=3.0)
        await asyncio.wait_for(reader, 3.0)
    finally:
        reader.cancel()
    assert finished["status"] == "stopped"
    full = Knobs(reply_tokens=200).reply_for("gpt-4o-mini")
    assert finished["content"]
    assert full.startswith(finished["content"])
    assert len(finished["content"]) < len(full)
    reply = await Message.objects.aget(pk=reply_id)
    assert reply.status == "stopped"
    assert reply.content == finished["content"]
    assert reply.error_code == "stopped"
    row = await UsageRecord.objects.aget(context__message=reply_id)
    assert row.status == "stopped"
    assert reply.usage_id == row.pk


@pytest.mark.django_db(transaction=True)
async def test_a_reply_keeps_running_and_is_saved_when_the_sse_client_goes_away(
    alice, token_for, make_credential, fake_provider, close_thread_connections
):
    fake_provider.configure(tokens_per_second=100, reply_tokens=40)
    token, conversation = await setup_stream(
        alice, token_for, make_credential, "openai", "gpt-4o-mini"
    )
    response = await post_stream(token, conversation, {"content": "Keep going"})
    frames: asyncio.Queue = asyncio.Queue()
    reader = asyncio.create_task(_consume(response, frames))
    started = await _next_event(frames, "started")
    await _next_event(frames, "delta")

    reader.cancel()  # what the server does when the client disconnects
    with pytest.raises(asyncio.CancelledError):
        await reader

    midway = await Message.objects.aget(pk=started["reply"])
    assert midway.status == "streaming"
    reply = await _wait_for_status(
        started["reply"], {"complete", "stopped", "interrupted", "error"}
    )
    assert reply.status == "complete"
    assert len(reply.content.split()) == 40
    assert reply.output_tokens == 40
    assert reply.usage_id is not None
