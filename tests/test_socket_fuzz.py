"""Websocket fuzzing (issue 7, "make the class impossible"): every consumer gets every kind of
malformed frame — binary, not JSON, deeply nested, not an object, `"type": [...]`, oversized,
unreadable ids (`"²"`, Arabic-Indic digits, 5,000 digits, booleans…) in every id field it reads —
and must answer each with an error frame, never close (Channels' 1011 on an exception), and still
answer a ping afterwards. Routes are discovered, so a new consumer is fuzzed as soon as it has a
path here (a test says which route has none)."""

from __future__ import annotations

import json

import pytest

from chats import services as chat_services
from playground import services as playground_services
from playground.models import Battle, Run, RunKind
from playground.services import SlotData
from providers import services as provider_services
from tests.websocket import connect
from workbench.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 5

# How to reach each websocket route in the fuzz world.
PATHS = {
    "ws/ping/": lambda world: "/ws/ping/",
    "ws/chat/<int:conversation_id>/": lambda world: f"/ws/chat/{world['conversation'].pk}/",
    "ws/playground/<int:comparison_id>/": lambda world: f"/ws/playground/{world['comparison'].pk}/",
    "ws/arena/<int:battle_id>/": lambda world: f"/ws/arena/{world['battle'].pk}/",
}
# Routes whose first frame is a `hello` (everything but ping).
SAYS_HELLO = ("ws/chat/", "ws/playground/", "ws/arena/")

DEEP = "[" * 10_000 + "]" * 10_000

# Frames that are not a message at all: (label, how to send it).
MALFORMED = [
    ("binary", {"bytes_data": b"\x00\x01\x02binary"}),
    ("empty text", {"text_data": ""}),
    ("not JSON", {"text_data": "hello there"}),
    ("truncated JSON", {"text_data": '{"type": "ping"'}),
    ("NaN", {"text_data": '{"type": "ping", "x": NaN}'}),
    ("lone surrogate outside JSON strings", {"text_data": "\ud800"}),
    ("10,000 deep array", {"text_data": DEEP}),
    ("deep inside an object", {"text_data": '{"type": "ping", "x": ' + DEEP + "}"}),
    ("40 deep objects", {"text_data": '{"type": "ping", "x": ' + '{"a": ' * 40 + "1" + "}" * 41}),
    ("a list", {"text_data": "[1, 2]"}),
    ("a number", {"text_data": "5"}),
    ("a string", {"text_data": '"ping"'}),
    ("null", {"text_data": "null"}),
    ("no type", {"text_data": '{"ref": 1}'}),
    ("type is a list", {"text_data": '{"type": ["ping"]}'}),
    ("type is an object", {"text_data": '{"type": {"a": 1}}'}),
    ("type is a number", {"text_data": '{"type": 5}'}),
    ("type is null", {"text_data": '{"type": null}'}),
    ("type with NUL", {"text_data": '{"type": "pi\\u0000ng"}'}),
    ("type with a lone surrogate", {"text_data": '{"type": "\\ud800"}'}),
    ("unknown type", {"text_data": '{"type": "explode"}'}),
    ("oversized", {"text_data": '{"type": "ping", "x": "' + "a" * 3_000_000 + '"}'}),
    ("huge integer", {"text_data": '{"type": "ping", "x": ' + "9" * 5000 + "}"}),
]

UNKNOWN_TYPES = {"unknown type", "type with NUL", "type with a lone surrogate"}

BAD_IDS = [
    "²",
    "٣",  # Arabic-Indic three: int() reads it as 3
    "３",  # fullwidth three
    "9" * 5000,
    "9" * 25,
    str(2**63),
    "-1",
    "1.5",
    "",
    " 1",
    "1\x00",
    "\ud800",
    -1,
    0,
    1.5,
    2**70,
    True,
    False,
    [1],
    {"id": 1},
]


@pytest.fixture
def world(alice):
    echo = provider_services.credential_create(actor=alice, preset="echo", name="alice echo")
    conversation = chat_services.conversation_start(actor=alice, credential=echo, model="echo")
    plan = chat_services.message_send(
        actor=alice, conversation=conversation, parent_id=None, content="hello"
    )
    comparison = playground_services.comparison_create(
        actor=alice,
        prompt="hello",
        slots=[SlotData(echo, "echo"), SlotData(echo, "echo")],
    )
    battle_run = Run.objects.create(
        kind=RunKind.ARENA, owner_user=alice, created_by=alice, prompt="which?"
    )
    battle = Battle.objects.create(
        run=battle_run,
        owner_user=alice,
        created_by=alice,
        credential_a=echo,
        credential_b=echo,
        model_a="echo:echo",
        model_b="echo:echo-b",  # a model never faces itself
    )
    return {
        "alice": alice,
        "conversation": conversation,
        "message_ids": plan.created,
        "comparison": comparison,
        "battle": battle,
    }


def _consumers():
    for pattern in websocket_urlpatterns:
        yield str(pattern.pattern), pattern.callback.consumer_class


def test_every_websocket_route_is_fuzzed():
    assert {route for route, _ in _consumers()} <= set(PATHS), (
        "Give every websocket route a path in tests/test_socket_fuzz.py PATHS"
    )


async def _still_usable(ws, label) -> None:
    await ws.send_json_to({"type": "ping", "ref": "alive"})
    frame = await ws.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "pong", (label, frame)


async def _error_for(ws, label, *, text_data=None, bytes_data=None) -> dict:
    # Straight to the application: the communicator's send_to can't send an empty text frame.
    event = {"type": "websocket.receive"}
    event.update({"text": text_data} if text_data is not None else {"bytes": bytes_data})
    await ws.send_input(event)
    answer = await ws.receive_json_from(timeout=TIMEOUT)  # raises if the consumer crashed
    assert answer["type"] == "error", (label, answer)
    assert answer["code"] in {"invalid", "bad_request", "not_found"}, (label, answer)
    assert answer["message"], (label, answer)
    await _still_usable(ws, label)
    return answer


@pytest.mark.parametrize("route", list(PATHS))
async def test_malformed_frames_get_an_error_frame_and_the_socket_stays_usable(route, world):
    async with connect(PATHS[route](world), user=world["alice"]) as (ws, connected):
        assert connected
        if route.startswith(SAYS_HELLO):
            assert (await ws.receive_json_from(timeout=TIMEOUT))["type"] == "hello"
        for label, frame in MALFORMED:
            answer = await _error_for(ws, label, **frame)
            # A string type we don't know is a bad request; everything else isn't a message.
            expected = "bad_request" if label in UNKNOWN_TYPES else "invalid"
            assert answer["code"] == expected, (label, answer)
        # A ref that can't be echoed safely is dropped, the message still answered.
        await ws.send_json_to({"type": "ping", "ref": {"deep": [[["x"]]]}})
        assert (await ws.receive_json_from(timeout=TIMEOUT))["type"] == "pong"
        assert await ws.receive_nothing(timeout=0.2)


def _field(name: str, bad) -> dict:
    """`settings.model_choice` is a field inside an object; a model choice's id is the part
    before `|` (`"<credential id>|<model>"`)."""
    if "." not in name:
        return {name: bad}
    outer, inner = name.split(".", 1)
    if inner == "model_choice" and isinstance(bad, str):
        bad = f"{bad}|echo"
    return {outer: {inner: bad}}


@pytest.mark.parametrize("route", list(PATHS))
async def test_unreadable_ids_in_every_id_field_get_an_error_frame(route, world):
    consumer = dict(_consumers())[route]
    fields = getattr(consumer, "ID_FIELDS", {})
    async with connect(PATHS[route](world), user=world["alice"]) as (ws, connected):
        assert connected
        if route.startswith(SAYS_HELLO):
            assert (await ws.receive_json_from(timeout=TIMEOUT))["type"] == "hello"
        for kind, names in fields.items():
            for name in names:
                for bad in BAD_IDS:
                    label = f"{kind}.{name}={bad!r:.20}"
                    message = {"type": kind, "content": "x\x00\ud800", "ref": "r"}
                    message.update(_field(name, bad))
                    answer = await _error_for(ws, label, text_data=json.dumps(message))
                    assert answer["ref"] == "r", (label, answer)
        assert await ws.receive_nothing(timeout=0.2)
    # Nothing was started or changed by any of it.
    from chats.models import Message
    from playground.models import Answer

    assert await Message.objects.acount() == 2
    assert await Answer.objects.acount() == 0
