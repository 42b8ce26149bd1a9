"""OpenAI's chat-completions and embeddings wire format, server side: replies and errors
encoded here, request bodies parsed in openai_requests (re-exported, so the views and tests
speak to one module per wire format).

Encoding is cheap on the hot path: a delta chunk is a prebuilt byte template around the
JSON-encoded text (the same bytes the fake provider's OpenAIFormat sends; tests compare them),
and deltas that are ready together go out as one chunk."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from providers.adapters.base import Finished, ToolCallDelta
from providers.fakeserver.formats import OPENAI as REFERENCE
from providers.gateway.errors import WireError, invalid, unsupported
from providers.gateway.openai_requests import (
    ChatCall,
    has_image_parts,
    images_of,
    parse_chat,
    parse_embeddings,
)


def error_body(error: WireError, **extra) -> bytes:
    return orjson.dumps(
        {
            "error": {
                "message": error.message,
                "type": error.kind,
                "param": error.param,
                "code": error.code,
                **extra,
            }
        }
    )


def usage_of(event: Finished) -> dict:
    usage: dict[str, Any] = {
        "prompt_tokens": event.input_tokens,
        "completion_tokens": event.output_tokens,
        "total_tokens": event.input_tokens + event.output_tokens,
        "prompt_tokens_details": {"cached_tokens": event.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": event.reasoning_tokens},
    }
    return usage


FINISH = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
}


class ChunkEncoder:
    """The `chat.completion.chunk` stream of one reply, as bytes."""

    def __init__(self, name: str):
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.name = name
        head = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": name,
            "system_fingerprint": "fp_fake",  # the field exists in real replies; ours is fixed
        }
        prefix = orjson.dumps(head)[:-1]  # without the closing brace
        self._prefix = b"data: " + prefix + b',"choices":[{"index":0,"delta":{'
        self._suffix = b'},"logprobs":null,"finish_reason":null}]}\n\n'
        self._head = head
        self.opened = False

    def _open(self) -> bytes:
        if self.opened:
            return b""
        self.opened = True
        return self._prefix + b'"role":"assistant","content":"","refusal":null' + self._suffix

    def delta(self, text: str) -> bytes:
        return self._open() + self._prefix + b'"content":' + orjson.dumps(text) + self._suffix

    def reasoning(self, text: str) -> bytes:
        return (
            self._open()
            + self._prefix
            + b'"content":null,"reasoning_content":'
            + orjson.dumps(text)
            + self._suffix
        )

    def tool_call(self, event: ToolCallDelta) -> bytes:
        """A piece of a function call, as OpenAI streams it: id, type and name on its first."""
        call: dict[str, Any] = {"index": event.index}
        if event.id:
            call["id"] = event.id
            call["type"] = "function"
        function: dict[str, Any] = {"arguments": event.arguments}
        if event.name:
            function = {"name": event.name, **function}
        call["function"] = function
        return self._open() + self._prefix + b'"tool_calls":' + orjson.dumps([call]) + self._suffix

    def tail(self, event: Finished, include_usage: bool) -> bytes:
        finish = {
            **self._head,
            "choices": [
                {
                    "index": 0,
                    "delta": {},
                    "logprobs": None,
                    "finish_reason": FINISH.get(event.reason, "stop"),
                }
            ],
        }
        out = self._open() + b"data: " + orjson.dumps(finish) + b"\n\n"
        if include_usage:
            usage = {**self._head, "choices": [], "usage": usage_of(event)}
            out += b"data: " + orjson.dumps(usage) + b"\n\n"
        return out + b"data: [DONE]\n\n"

    def error(self, error: WireError, **extra) -> bytes:
        return b"data: " + error_body(error, **extra) + b"\n\n"


def tool_calls_of(deltas: list[ToolCallDelta]) -> list[dict]:
    """Streamed pieces of function calls → whole calls (a message's `tool_calls`)."""
    calls: dict[int, dict] = {}
    for delta in deltas:
        call = calls.setdefault(
            delta.index,
            {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
        )
        call["id"] = call["id"] or delta.id
        call["function"]["name"] = call["function"]["name"] or delta.name
        call["function"]["arguments"] += delta.arguments
    return [calls[index] for index in sorted(calls)]


def completion(
    name: str, text: str, reasoning: str, event: Finished, tool_calls: list | None = None
) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if reasoning:
        message["reasoning_content"] = reasoning
    if tool_calls:
        message["content"] = text or None
        message["tool_calls"] = tool_calls_of(tool_calls)
    return orjson.dumps(
        {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": name,
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": FINISH.get(event.reason, "stop"),
                }
            ],
            "usage": usage_of(event),
        }
    )


def model_list(models) -> bytes:
    return orjson.dumps(
        {
            "object": "list",
            "data": [
                {
                    "id": m.id,
                    "object": "model",
                    "created": 0,
                    "owned_by": m.owned_by,
                    **({"alias_of": m.alias_of} if m.alias_of else {}),
                }
                for m in models
            ],
        }
    )


def embeddings(name: str, vectors: list[list[float]], tokens: int, base64_wanted: bool) -> bytes:
    import base64
    import struct

    data = []
    for index, vector in enumerate(vectors):
        value: Any = vector
        if base64_wanted:
            value = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": value})
    return orjson.dumps(
        {
            "object": "list",
            "data": data,
            "model": name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


__all__ = [
    "REFERENCE",  # the fake's encoder: tests check our bytes against it
    "ChatCall",
    "WireError",
    "has_image_parts",
    "images_of",
    "invalid",
    "parse_chat",
    "parse_embeddings",
    "unsupported",
]
