"""Chat replies from providers that misbehave the way real ones do (issue 8): streams that stop
without saying so, answers that are not streams, upstreams that ignore max_tokens."""

from __future__ import annotations

import re

import pytest
from asgiref.sync import sync_to_async

from chats import services
from chats.models import MessageStatus
from chats.tests.test_consumers import (  # noqa: F401 - the fixture is used by every test here
    _no_reply_left_running,
    chat_path,
    get_message,
    joined,
    of_type,
    receive_until,
)
from tests.websocket import connect

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fake_conversation(alice, make_credential):
    """A conversation on a local OpenAI-compatible credential pointing at the fake server."""
    credential = make_credential(alice, "openai_compatible")
    return services.conversation_start(actor=alice, credential=credential, model="fake-model")


async def ask(alice, conversation, content="Tell me a story") -> tuple[list[dict], dict]:
    async with connect(chat_path(conversation), user=alice) as (ws, ok):
        assert ok
        await receive_until(ws, "hello")
        await ws.send_json_to({"type": "send", "parent_id": None, "content": content})
        frames = await receive_until(ws, "final")
    return frames, frames[-1]


async def test_a_stream_that_stops_without_a_finish_is_interrupted_and_can_be_continued(
    alice, fake_conversation, fake_provider, one_attempt
):
    fake_provider.configure(reply_tokens=20, truncate_after=3)
    frames, final = await ask(alice, fake_conversation)

    assert final["status"] == MessageStatus.INTERRUPTED
    assert joined(of_type(frames, "delta")) == "lorem ipsum dolor "
    reply = await get_message(final["id"])
    assert reply.error_code == "stream_interrupted"
    assert reply.content == "lorem ipsum dolor " and reply.tokens_estimated
    assert 'data-action="continue"' in final["html"]
    assert 'data-action="retry"' in final["html"]


async def test_an_html_page_instead_of_a_stream_is_an_error_not_an_empty_complete_reply(
    alice, fake_conversation, fake_provider, one_attempt
):
    fake_provider.configure(html_page=True)
    _, final = await ask(alice, fake_conversation)

    assert final["status"] == MessageStatus.ERROR
    reply = await get_message(final["id"])
    assert reply.error_code == "provider_error" and reply.content == ""
    assert "instead of a reply stream" in reply.error_message


async def test_a_json_completion_instead_of_a_stream_is_the_reply(
    alice, fake_conversation, fake_provider
):
    fake_provider.configure(ignore_stream=True, reply="The whole answer at once.")
    _, final = await ask(alice, fake_conversation)

    assert final["status"] == MessageStatus.COMPLETE
    reply = await get_message(final["id"])
    assert reply.content == "The whole answer at once." and not reply.tokens_estimated


async def test_a_reply_that_ignores_max_tokens_is_stopped_by_the_gate(
    alice, fake_conversation, fake_provider
):
    await sync_to_async(services.conversation_update)(
        actor=alice, conversation=fake_conversation, params={"max_tokens": 30}
    )
    fake_provider.configure(endless=True)
    _, final = await ask(alice, fake_conversation)

    assert final["status"] == MessageStatus.COMPLETE
    reply = await get_message(final["id"])
    assert 30 < reply.output_tokens <= 40  # cut just past max_tokens (gate: 10 % + 2)


# --- Reasoning and cache tokens in chat (items 3 and 4) -------------------------------------------


async def test_a_thinking_models_reasoning_streams_in_its_own_frames_and_is_saved(
    alice, fake_conversation, fake_provider
):
    fake_provider.configure(
        reasoning="Let me think about it. ", reply="Done.", tokens_per_second=40
    )
    frames, final = await ask(alice, fake_conversation)

    thoughts, deltas = of_type(frames, "reasoning"), of_type(frames, "delta")
    assert joined(thoughts) == "Let me think about it. " and joined(deltas) == "Done."
    assert frames.index(thoughts[-1]) < frames.index(deltas[0])
    reply = await get_message(final["id"])
    assert reply.reasoning == "Let me think about it. " and reply.content == "Done."
    assert reply.reasoning_ms > 0 and reply.reasoning_tokens > 0
    # Shown collapsed, with how long it thought.
    assert (
        '<details class="reasoning" data-testid="reasoning"><summary>Thought for ' in final["html"]
    )
    assert "Let me think about it." in final["html"]


async def test_a_socket_joining_mid_thought_gets_the_reasoning_so_far(
    alice, fake_conversation, fake_provider
):
    fake_provider.configure(reasoning_tokens=60, reply="Done.", tokens_per_second=30)
    async with connect(chat_path(fake_conversation), user=alice) as (ws, ok):
        await receive_until(ws, "hello")
        await ws.send_json_to({"type": "send", "parent_id": None, "content": "Think"})
        frames = await receive_until(ws, "reasoning")
        async with connect(chat_path(fake_conversation), user=alice) as (late, ok):
            assert ok
            [snapshot] = (await receive_until(late, "hello"))[-1]["snapshots"]
            assert snapshot["id"] == frames[-1]["id"] and snapshot["reasoning"].startswith("lorem")
        await receive_until(ws, "final")


async def test_cached_and_reasoning_tokens_show_in_the_replys_details(
    alice, make_credential, fake_provider
):
    credential = await sync_to_async(make_credential)(alice, "anthropic")
    conversation = await sync_to_async(services.conversation_start)(
        actor=alice, credential=credential, model="claude-3-5-haiku-latest"
    )
    fake_provider.configure(
        prompt_tokens=200, cache_read_tokens=1000, cache_write_tokens=500, reasoning="Hmm. "
    )
    _, final = await ask(alice, conversation)

    assert "1700 in" in final["html"]
    assert "(1000 cached, 500 written to cache)" in final["html"]
    assert re.search(r"\(\d+ reasoning\)", final["html"])
    reply = await get_message(final["id"])
    assert (reply.cache_read_tokens, reply.cache_write_tokens) == (1000, 500)


def test_the_rest_api_returns_a_replys_reasoning_and_token_kinds(
    alice, api_for, make_credential, fake_provider
):
    credential = make_credential(alice, "openai_compatible")
    conversation = services.conversation_start(actor=alice, credential=credential, model="m")
    fake_provider.configure(reasoning="Think. ", reply="Answer.")

    body = (
        api_for(alice)
        .post(f"/api/conversations/{conversation.pk}/messages/", {"content": "Q?"})
        .json()
    )

    reply = body["reply"]
    assert (reply["reasoning"], reply["content"]) == ("Think. ", "Answer.")
    assert reply["reasoning_ms"] is not None and reply["reasoning_tokens"] > 0
    assert {"cache_read_tokens", "cache_write_tokens"} <= set(reply)
