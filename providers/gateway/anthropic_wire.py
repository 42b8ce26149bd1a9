"""Anthropic's Messages wire format, server side: parse `/v1/messages` bodies, encode replies
(named SSE events: message_start, content_block_start/delta/stop, message_delta, message_stop)
and errors (`{"type": "error", "error": {"type", "message"}}`). Reasoning deltas become a
`thinking` block before the text block, as Anthropic streams them."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from providers.adapters.base import CompletionRequest, Finished, Message
from providers.gateway.errors import WireError

HANDLED = {
    "model",
    "messages",
    "system",
    "max_tokens",
    "temperature",
    "top_p",
    "stop_sequences",
    "stream",
    "metadata",
    "tools",
    "tool_choice",
    "top_k",
    "thinking",
    "service_tier",
}
STOP = {"stop": "end_turn", "length": "max_tokens"}
# HTTP status → Anthropic's error type.
KINDS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
}


def invalid(message: str) -> WireError:
    return WireError(400, message, kind="invalid_request_error", code=None)


def error_body(error: WireError, **extra) -> bytes:
    kind = KINDS.get(error.status, "api_error")
    return orjson.dumps(
        {"type": "error", "error": {"type": kind, "message": error.message, **extra}}
    )


def _text_of(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if not isinstance(block, dict) or block.get("type") != "text":
                raise invalid(f"{where}: only text blocks are supported.")
            if not isinstance(block.get("text"), str):
                raise invalid(f"{where}: a text block needs `text`.")
            parts.append(block["text"])
        return "".join(parts)
    raise invalid(f"{where}: a string or a list of text blocks.")


def parse_messages(body: Any) -> tuple[str, CompletionRequest, bool]:
    """The model name, the request and whether to stream."""
    if not isinstance(body, dict):
        raise invalid("The body must be a JSON object.")
    for name in body:
        if name not in HANDLED:
            raise invalid(f"{name}: not supported by the Workbench gateway.")
    if body.get("tools") or body.get("tool_choice"):
        raise invalid("tools: not supported by the Workbench gateway yet.")
    if body.get("top_k") is not None:
        raise invalid("top_k: not supported by the Workbench gateway.")
    if body.get("thinking"):
        raise invalid(
            "thinking: not supported by the Workbench gateway (models that think "
            "stream their thinking without it)."
        )
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model: required (`<credential slug>/<model id>` or an alias).")
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise invalid("max_tokens: required, an integer.")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise invalid("messages: a non-empty list.")
    messages = []
    for index, message in enumerate(raw):
        where = f"messages.{index}"
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise invalid(f"{where}.role: user or assistant.")
        messages.append(Message(message["role"], _text_of(message.get("content"), where)))
    system = body.get("system")
    system = "" if system is None else _text_of(system, "system")
    stop = body.get("stop_sequences")
    if stop is not None and (not isinstance(stop, list) or len(stop) > 4):
        raise invalid("stop_sequences: a list of at most 4 strings.")
    numbers = {}
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise invalid(f"{name}: a number.")
        numbers[name] = value
    request = CompletionRequest(
        model="",
        messages=tuple(messages),
        system=system,
        max_tokens=max_tokens,
        stop=tuple(stop or ()),
        **numbers,
    )
    return model, request, bool(body.get("stream"))


def _sse(event: bytes, data: dict) -> bytes:
    return b"event: " + event + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _usage(event: Finished) -> dict:
    return {
        "input_tokens": event.input_tokens - event.cache_read_tokens - event.cache_write_tokens,
        "cache_read_input_tokens": event.cache_read_tokens,
        "cache_creation_input_tokens": event.cache_write_tokens,
        "output_tokens": event.output_tokens,
    }


class EventEncoder:
    """One reply's event stream. The text block opens at the first text (a thinking block, if
    the model thinks, comes first)."""

    def __init__(self, name: str):
        self.id = f"msg_{uuid.uuid4().hex[:24]}"
        self.name = name
        self.index = -1
        self.block: str | None = None  # "thinking" | "text"
        # Hot path: a text delta is a template around the JSON-encoded text.
        self._text_head = b""

    def start(self) -> bytes:
        message = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.name,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            # Known only at the end (message_delta carries the real numbers).
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return _sse(b"message_start", {"type": "message_start", "message": message})

    def _switch(self, kind: str) -> bytes:
        if self.block == kind:
            return b""
        out = self._close()
        self.index += 1
        self.block = kind
        block = (
            {"type": "thinking", "thinking": "", "signature": ""}
            if kind == "thinking"
            else {"type": "text", "text": ""}
        )
        self._text_head = (
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
            b'"delta":{"type":"%b","%b":'
            % (
                self.index,
                b"thinking_delta" if kind == "thinking" else b"text_delta",
                kind.encode() if kind == "thinking" else b"text",
            )
        )
        start = {"type": "content_block_start", "index": self.index, "content_block": block}
        return out + _sse(b"content_block_start", start)

    def _close(self) -> bytes:
        if self.block is None:
            return b""
        out = b""
        if self.block == "thinking":
            signature = {"type": "signature_delta", "signature": ""}
            out = _sse(
                b"content_block_delta",
                {"type": "content_block_delta", "index": self.index, "delta": signature},
            )
        self.block = None
        return out + _sse(
            b"content_block_stop", {"type": "content_block_stop", "index": self.index}
        )

    def delta(self, text: str) -> bytes:
        return self._switch("text") + self._text_head + orjson.dumps(text) + b"}}\n\n"

    def reasoning(self, text: str) -> bytes:
        return self._switch("thinking") + self._text_head + orjson.dumps(text) + b"}}\n\n"

    def tail(self, event: Finished) -> bytes:
        out = self._switch("text") if self.index < 0 else b""  # an empty reply: one empty block
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": STOP.get(event.reason, "end_turn"), "stop_sequence": None},
            "usage": _usage(event),
        }
        return (
            out
            + self._close()
            + _sse(b"message_delta", delta)
            + _sse(b"message_stop", {"type": "message_stop"})
        )

    def error(self, error: WireError, **extra) -> bytes:
        return b"event: error\ndata: " + error_body(error, **extra) + b"\n\n"


def message(name: str, text: str, reasoning: str, event: Finished) -> bytes:
    content: list[dict] = []
    if reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    content.append({"type": "text", "text": text})
    return orjson.dumps(
        {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": name,
            "content": content,
            "stop_reason": STOP.get(event.reason, "end_turn"),
            "stop_sequence": None,
            "usage": _usage(event),
        }
    )
