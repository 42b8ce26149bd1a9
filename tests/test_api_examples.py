"""The API's docs and id errors (issue 9, bug 20): Swagger's "Try it out" starts from examples
with real shapes, and a 404 for an id in a payload says which field held it."""

from __future__ import annotations

import json

import pytest

from chats import services as chat_services
from chats.models import Message
from providers import services as provider_services
from tests.api_client import assert_error


@pytest.fixture
def schema(client):
    return json.loads(client.get("/api/schema/", {"format": "json"}).content)


def request_example(schema, path: str, method: str) -> dict:
    body = schema["paths"][path][method]["requestBody"]["content"]["application/json"]
    examples = body.get("examples")
    assert examples, f"{method.upper()} {path} has no request example"
    return next(iter(examples.values()))["value"]


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/completions", "post"),
        ("/api/conversations/", "post"),
        ("/api/conversations/{id}/messages/", "post"),
        ("/api/credentials/", "post"),
        ("/api/tokens/", "post"),
    ],
)
def test_request_bodies_have_examples_with_real_shapes(schema, path, method):
    example = request_example(schema, path, method)

    assert "string" not in json.dumps(example)  # not Swagger's placeholder
    for key, value in example.items():
        if key == "owner_team" or key.endswith("_id"):
            assert value is None, f"{key}: an optional id is null in the example, never 0"


def test_the_completion_example_works_for_a_user_with_echo(alice, api_for, schema):
    echo = provider_services.credentials_ensure_echo(user=alice)
    example = {**request_example(schema, "/api/completions", "post"), "credential": echo.pk}

    response = api_for(alice).post("/api/completions", example)

    assert response.status_code == 200, response.content


def test_a_foreign_credential_in_a_payload_is_a_404_that_names_the_field(
    alice, charlie_outsider, api_for
):
    theirs = provider_services.credentials_ensure_echo(user=charlie_outsider)

    response = api_for(alice).post(
        "/api/completions",
        {"credential": theirs.pk, "model": "echo", "messages": [{"role": "user", "content": "x"}]},
    )

    error = assert_error(response, 404, "not_found")
    assert error["message"].startswith("credential: No provider credential with the id")


def test_a_foreign_team_in_a_payload_is_a_404_that_names_the_field(
    alice, charlie_outsider, api_for
):
    from accounts.models import Team

    outside = Team.objects.get(name="Outside")
    error = assert_error(
        api_for(alice).post("/api/conversations/", {"owner_team": outside.pk}), 404, "not_found"
    )
    assert error["message"].startswith("owner_team: No team with the id")


def test_a_parent_from_another_conversation_is_a_404_that_names_parent_id(alice, api_for):
    echo = provider_services.credentials_ensure_echo(user=alice)
    mine = chat_services.conversation_start(actor=alice, credential=echo, model="echo")
    other = chat_services.conversation_start(actor=alice, credential=echo, model="echo")
    foreign = Message.objects.create(conversation=other, role="user", content="x", author=alice)

    response = api_for(alice).post(
        f"/api/conversations/{mine.pk}/messages/", {"content": "hi", "parent_id": foreign.pk}
    )
    fork = api_for(alice).post(f"/api/conversations/{mine.pk}/fork/", {"message_id": foreign.pk})

    assert assert_error(response, 404, "not_found")["message"].startswith("parent_id: ")
    assert assert_error(fork, 404, "not_found")["message"].startswith("message_id: ")


@pytest.mark.django_db(transaction=True)
async def test_a_foreign_message_id_in_a_websocket_frame_names_its_field():
    from asgiref.sync import sync_to_async

    from tests.test_access_matrix import build_world
    from tests.websocket import connect

    world = await sync_to_async(build_world)()
    path = f"/ws/chat/{world['conversation'].pk}/"
    async with connect(path, user=world["alice"]) as (ws, connected):
        assert connected
        await ws.receive_json_from(timeout=3)  # hello
        await ws.send_json_to({"type": "switch", "message_id": world["foreign_message"].pk})
        frame = await ws.receive_json_from(timeout=3)
    assert frame["code"] == "not_found"
    assert frame["message"].startswith("message_id: no such message in this conversation")
