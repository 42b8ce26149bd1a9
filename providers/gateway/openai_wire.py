"""OpenAI's chat-completions and embeddings wire format, server side.

Parsing is strict where it matters: a parameter we would silently drop (tools, n > 1, logprobs,
images…) is a clear 400 naming it, never a reply that ignored it. Encoding is cheap on the hot
path: a delta chunk is a prebuilt byte template around the JSON-encoded text (the same bytes the
fake provider's OpenAIFormat sends; tests compare them), and deltas that are ready together go
out as one chunk."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from providers.adapters.base import CompletionRequest, Finished, Message
from providers.fakeserver.formats import OPENAI as REFERENCE

# Accepted and ignored: they change nothing about the reply (or only bookkeeping at OpenAI).
IGNORED = {"user", "metadata", "store", "service_tier", "parallel_tool_calls", "stream_options"}
HANDLED = {
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "n",
    "stream",
    "response_format",
    "tools",
    "tool_choice",
    "presence_penalty",
    "frequency_penalty",
    "logprobs",
    "top_logprobs",
}
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


class WireError(Exception):
    """A request we refuse, with the OpenAI error fields."""

    def __init__(self, status: int, message: str, *, kind: str, code: str | None, param=None):
        super().__init__(message)
        self.status, self.message, self.kind, self.code, self.param = (
            status,
            message,
            kind,
            code,
            param,
        )


def invalid(message: str, param: str | None = None, code: str = "invalid_value") -> WireError:
    return WireError(400, message, kind="invalid_request_error", code=code, param=param)


def unsupported(param: str, why: str = "") -> WireError:
    return invalid(
        f"`{param}` is not supported by the Workbench gateway{why}.", param, "unsupported_parameter"
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


def _text_of(content: Any, where: str) -> str:
    """A message's text: a string, or a list of text parts (images and audio are refused)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise invalid(f"{where}: only text content is supported.", where)
            text = part.get("text")
            if not isinstance(text, str):
                raise invalid(f"{where}: a text part needs `text`.", where)
            parts.append(text)
        return "".join(parts)
    if content is None:
        return ""
    raise invalid(f"{where}: content must be a string or a list of text parts.", where)


@dataclass(frozen=True)
class ChatCall:
    request: CompletionRequest
    stream: bool
    include_usage: bool
    uses_seed: bool
    uses_response_format: bool


def _number(body: dict, name: str, kind=(int, float)):
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kind):
        raise invalid(f"`{name}` must be a number.", name)
    return value


def parse_chat(body: Any) -> tuple[str, ChatCall]:
    """The model name and the call a chat-completions body asks for."""
    if not isinstance(body, dict):
        raise invalid("The body must be a JSON object.")
    for name in body:
        if name not in HANDLED and name not in IGNORED:
            raise unsupported(name)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("`model` is required: `<credential slug>/<model id>` or an alias.", "model")
    if body.get("tools") or body.get("tool_choice") not in (None, "none"):
        raise unsupported("tools", " yet (no adapter streams tool calls)")
    if body.get("n") not in (None, 1):
        raise unsupported("n", " above 1")
    if body.get("logprobs") or body.get("top_logprobs"):
        raise unsupported("logprobs")
    for name in ("presence_penalty", "frequency_penalty"):
        if body.get(name) not in (None, 0, 0.0):
            raise unsupported(name)
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise invalid("`messages` must be a non-empty list.", "messages")
    messages = []
    for index, message in enumerate(raw_messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise invalid(f"{where} must be an object.", where)
        role = ROLES.get(message.get("role"))
        if role is None:
            raise invalid(
                f"{where}.role: system, developer, user or assistant (tool messages are not "
                "supported).",
                f"{where}.role",
            )
        if message.get("tool_calls") or message.get("function_call"):
            raise unsupported(f"{where}.tool_calls")
        messages.append(Message(role, _text_of(message.get("content"), f"{where}.content")))
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and (not isinstance(stop, list) or len(stop) > 4):
        raise invalid("`stop` must be a string or a list of at most 4 strings.", "stop")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)):
        raise invalid("`max_tokens` must be an integer.", "max_tokens")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise invalid("`seed` must be an integer.", "seed")
    response_format = body.get("response_format")
    if response_format is not None and not isinstance(response_format, dict):
        raise invalid("`response_format` must be an object.", "response_format")
    if response_format is not None and response_format.get("type") == "text":
        response_format = None  # the default: nothing to pass on
    options = body.get("stream_options")
    request = CompletionRequest(
        model="",  # filled in once the name is resolved
        messages=tuple(messages),
        temperature=_number(body, "temperature"),
        top_p=_number(body, "top_p"),
        max_tokens=max_tokens,
        stop=tuple(stop or ()),
        seed=seed,
        response_format=response_format,
    )
    return model, ChatCall(
        request=request,
        stream=bool(body.get("stream")),
        include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
        uses_seed=seed is not None,
        uses_response_format=response_format is not None,
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


FINISH = {"stop": "stop", "length": "length", "content_filter": "content_filter"}


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


def completion(name: str, text: str, reasoning: str, event: Finished) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if reasoning:
        message["reasoning_content"] = reasoning
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


def parse_embeddings(body: Any) -> tuple[str, list[str]]:
    if not isinstance(body, dict):
        raise invalid("The body must be a JSON object.")
    for name in body:
        if name not in {"model", "input", "encoding_format", "user", "dimensions"}:
            raise unsupported(name)
    if body.get("dimensions") is not None:
        raise unsupported("dimensions")
    if body.get("encoding_format") not in (None, "float", "base64"):
        raise invalid("`encoding_format`: float or base64.", "encoding_format")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("`model` is required.", "model")
    inputs = body.get("input")
    if isinstance(inputs, str):
        inputs = [inputs]
    if (
        not isinstance(inputs, list)
        or not inputs
        or len(inputs) > 2048
        or not all(isinstance(text, str) and text for text in inputs)
    ):
        raise invalid(
            "`input` must be a non-empty string or a list of at most 2048 non-empty strings "
            "(token arrays are not supported).",
            "input",
        )
    return model, inputs


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


__all__ = ["REFERENCE"]  # the fake's encoder: tests check our bytes against it
