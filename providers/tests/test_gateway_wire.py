"""The gateway's encoders against the fake provider's (the reference for each vendor's bytes),
and its request parsing. No database, no network."""

from __future__ import annotations

import pytest

from providers.adapters.base import Finished, ReasoningDelta, TextDelta
from providers.fakeserver.formats import ANTHROPIC, OPENAI, Chat
from providers.gateway import anthropic_wire, openai_wire
from providers.gateway.streams import merged


def _chat(encoder) -> Chat:
    return Chat(
        id=encoder.id,
        model=encoder.name,
        tokens=[],
        prompt_tokens=3,
        truncated=False,
        usage=True,
        include_usage=True,
        started=0.0,
        created=getattr(encoder, "created", 0),
    )


@pytest.mark.parametrize("text", ["Hello", ' "quoted" \\ back', "ünïcødé ✓", "line\nbreak"])
def test_an_openai_delta_is_byte_for_byte_what_the_fake_provider_sends(text):
    encoder = openai_wire.ChunkEncoder("cred/model")
    reference = _chat(encoder)
    assert encoder.delta(text) == OPENAI.stream_delta(reference, text, True)
    assert encoder.delta(text) == OPENAI.stream_delta(reference, text, False)


def test_an_anthropic_text_delta_is_what_the_fake_provider_sends():
    encoder = anthropic_wire.EventEncoder("cred/model")
    encoder.delta("first")  # opens the text block
    reference = _chat(encoder)
    reference.text_started = True
    assert encoder.delta("Hello ✓") == ANTHROPIC.stream_delta(reference, "Hello ✓", False)


def _finished(**fields) -> Finished:
    values = dict(
        reason="stop",
        usage_id=1,
        input_tokens=10,
        output_tokens=5,
        tokens_estimated=False,
        cost=None,
        cost_source="provider",
        ttft_ms=1.0,
        duration_ms=2.0,
        tokens_per_second=None,
        attempts=1,
    )
    return Finished(**(values | fields))


def test_the_openai_tail_reports_finish_usage_and_done():
    encoder = openai_wire.ChunkEncoder("m")
    tail = encoder.tail(_finished(reason="length"), include_usage=True)
    assert b'"finish_reason":"length"' in tail
    assert b'"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15' in tail
    assert tail.endswith(b"data: [DONE]\n\n")
    assert b"usage" not in openai_wire.ChunkEncoder("m").tail(_finished(), include_usage=False)


def test_anthropic_thinking_comes_as_its_own_block_before_the_text():
    encoder = anthropic_wire.EventEncoder("m")
    out = encoder.reasoning("hmm") + encoder.delta("Hi") + encoder.tail(_finished())
    events = [line for line in out.split(b"\n") if line.startswith(b"event: ")]
    assert events == [
        b"event: content_block_start",
        b"event: content_block_delta",
        b"event: content_block_delta",  # the thinking block's signature
        b"event: content_block_stop",
        b"event: content_block_start",
        b"event: content_block_delta",
        b"event: content_block_stop",
        b"event: message_delta",
        b"event: message_stop",
    ]


def test_consecutive_deltas_of_a_kind_merge_and_order_is_kept():
    batch = [TextDelta("a"), TextDelta("b"), ReasoningDelta("r"), TextDelta("c")]
    assert merged(batch) == [TextDelta("ab"), ReasoningDelta("r"), TextDelta("c")]


@pytest.mark.parametrize(
    "body, param",
    [
        ({"model": "m", "messages": [{"role": "function", "content": "x"}]}, "messages[0].role"),
        (
            {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0]",
        ),
        ({"model": "m", "messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": 3}, "stop"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "seed": "1"}, "seed"),
    ],
)
def test_openai_bodies_we_cannot_take_name_the_parameter(body, param):
    with pytest.raises(openai_wire.WireError) as raised:
        openai_wire.parse_chat(body)
    assert raised.value.status == 400 and raised.value.param == param


def test_openai_text_parts_and_developer_messages_are_taken():
    name, call = openai_wire.parse_chat(
        {
            "model": "cred/org/model",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                },
            ],
            "stop": "END",
            "max_completion_tokens": 9,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    assert name == "cred/org/model"
    assert [(m.role, m.content) for m in call.request.messages] == [
        ("system", "Be brief."),
        ("user", "ab"),
    ]
    assert call.request.stop == ("END",) and call.request.max_tokens == 9
    assert call.stream and call.include_usage


def test_an_openai_tool_call_chunk_is_byte_for_byte_what_the_fake_provider_sends():
    from providers.adapters.base import ToolCallDelta

    encoder = openai_wire.ChunkEncoder("cred/model")
    chat = _chat(encoder)
    chat.tool_call = {"id": "call_1", "name": "get_weather", "arguments": '{"a":1}'}
    first = ToolCallDelta(index=0, id="call_1", name="get_weather", arguments='{"a"')
    assert encoder.tool_call(first) == OPENAI.stream_delta(chat, '{"a"', first=True)
    assert encoder.tool_call(ToolCallDelta(index=0, arguments=":1}")) == OPENAI.stream_delta(
        chat, ":1}", first=False
    )


def test_more_images_than_a_request_may_carry_are_refused_before_decoding_them(monkeypatch):
    import base64

    decoded = []
    monkeypatch.setattr(openai_wire, "images_of", lambda raw, where: decoded.append(raw) or ())
    part = {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64," + base64.b64encode(b"x").decode()},
    }
    body = {"model": "m", "messages": [{"role": "user", "content": [part] * 21}]}
    with pytest.raises(openai_wire.WireError) as raised:
        openai_wire.parse_chat(body)
    assert raised.value.status == 400 and "at most 20 images" in raised.value.message
    assert decoded == []
