"""User and model text that PostgreSQL can't store as is (NUL, lone surrogates) — issue 7: a
reply containing U+0000 stayed `streaming`, then `interrupted` and empty. Every such text now
passes the one sanitizer (workbench.text) and is saved, with U+FFFD in place of each bad
character, whether it came from the model, the websocket or the REST API."""

from __future__ import annotations

import json

import pytest

from chats import services
from chats.models import Message, MessageStatus
from chats.tests.test_consumers import chat_path, joined, of_type, receive_until
from tests.websocket import connect

BAD = "zero\x00byte and \ud800 lone \udfff surrogates"
GOOD = "zero\ufffdbyte and \ufffd lone \ufffd surrogates"


@pytest.fixture
def fake_conversation(alice, make_credential):
    credential = make_credential(alice, "openai_compatible")
    return services.conversation_start(actor=alice, credential=credential, model="fake-model")


@pytest.mark.django_db(transaction=True)
async def test_a_model_reply_with_nul_and_lone_surrogates_completes_and_is_saved(
    alice, fake_conversation, fake_provider
):
    fake_provider.configure(reply=BAD)
    async with connect(chat_path(fake_conversation), user=alice) as (ws, connected):
        assert connected
        await ws.receive_json_from(timeout=5)  # hello
        await ws.send_json_to({"type": "send", "content": "say something odd"})
        frames = await receive_until(ws, "final")
    final = frames[-1]
    reply = await Message.objects.aget(pk=final["id"])
    assert final["status"] == MessageStatus.COMPLETE, (reply.error_code, reply.error_message)
    reply = await Message.objects.aget(pk=final["id"])
    assert (reply.status, reply.content) == (MessageStatus.COMPLETE, GOOD), (
        reply.error_code,
        reply.error_message,
    )
    assert joined(of_type(frames, "delta")) == GOOD  # what streamed is what was saved
    assert "\ufffd" in final["html"]


@pytest.mark.django_db(transaction=True)
async def test_user_text_with_nul_and_lone_surrogates_is_saved_over_the_websocket(
    alice, fake_conversation, fake_provider
):
    async with connect(chat_path(fake_conversation), user=alice) as (ws, connected):
        assert connected
        await ws.receive_json_from(timeout=5)
        await ws.send_to(text_data=json.dumps({"type": "send", "content": BAD}))
        frames = await receive_until(ws, "final")
    question = await Message.objects.aget(role="user")
    assert question.content == GOOD
    assert frames[-1]["status"] == MessageStatus.COMPLETE


@pytest.mark.django_db
def test_user_text_with_nul_and_lone_surrogates_is_saved_over_rest(alice, api_for, echo):
    conversation = services.conversation_start(actor=alice, credential=echo, model="echo")
    api = api_for(alice)

    created = api.post("/api/conversations/", {"title": BAD, "system_prompt": BAD})
    assert created.status_code == 201, created.content
    assert created.json()["title"] == GOOD
    posted = api.post(f"/api/conversations/{conversation.pk}/messages/", {"content": BAD})
    assert posted.status_code == 201, posted.content
    assert posted.json()["user_message"]["content"] == GOOD
    assert posted.json()["reply"]["status"] == MessageStatus.COMPLETE
    assert GOOD in posted.json()["reply"]["content"]  # Echo shows what the model received
