"""Wire formats: the bytes each provider family sends, as pure functions of one `Chat`.

Timing and faults live in the server; a format only knows how to spell a stream head, a content
chunk, the tail (finish + usage + terminator), a broken chunk, an in-band error, a whole reply, an
error body, a model list and embeddings the way the official SDK expects to parse them.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from .knobs import Knobs, embedding_bytes, embedding_vector, prompt_tokens

CREATED = 1_736_935_200  # 2025-01-15T10:00:00Z: model timestamps are fixed, so replies are stable


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def sse(data: Any, event: str | None = None) -> bytes:
    head = b"event: %b\n" % event.encode() if event else b""
    return head + b"data: " + dumps(data) + b"\n\n"


@dataclass
class ChatParams:
    """What a chat request asks for, whatever its format."""

    model: str
    prompt_tokens: int
    max_tokens: int | None
    stream: bool
    include_usage: bool = False


@dataclass
class Chat:
    """One chat reply being produced."""

    id: str
    model: str
    tokens: list[str]  # what will be sent, already cut to max_tokens
    prompt_tokens: int
    truncated: bool  # cut by max_tokens: finish reason "length"/"max_tokens"
    usage: bool  # the `usage` knob: report usage at all
    include_usage: bool  # OpenAI stream_options.include_usage
    started: float  # loop time the request arrived (Ollama reports durations)
    created: int = field(default_factory=lambda: int(time.time()))
    first_token_at: float | None = None


class ChatFormat(Protocol):
    """What the server needs from a wire format to answer a chat request."""

    name: str
    id_prefix: str
    stream_type: str

    def parse_chat(self, body: dict[str, Any]) -> ChatParams: ...
    def error_body(self, status: int, message: str) -> dict[str, Any]: ...
    def stream_head(self, chat: Chat) -> bytes: ...
    def stream_delta(self, chat: Chat, text: str, first: bool) -> bytes: ...
    def stream_tail(self, chat: Chat, sent: int, now: float) -> bytes: ...
    def stream_malformed(self, chat: Chat) -> bytes: ...
    def stream_error(self, chat: Chat) -> bytes: ...
    def completion(self, chat: Chat, now: float) -> dict[str, Any]: ...


class OpenAIFormat:
    """OpenAI chat completions (also Gemini, Cohere, Mistral… compatibility endpoints)."""

    name = "openai"
    id_prefix = "chatcmpl-fake"
    stream_type = "text/event-stream; charset=utf-8"

    def parse_chat(self, body: dict[str, Any]) -> ChatParams:
        options = body.get("stream_options") or {}
        return ChatParams(
            model=str(body.get("model") or ""),
            prompt_tokens=prompt_tokens(body.get("messages")),
            max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
            stream=bool(body.get("stream")),
            include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
        )

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        kind, code = {
            400: ("invalid_request_error", None),
            401: ("invalid_request_error", "invalid_api_key"),
            403: ("permission_error", None),
            404: ("invalid_request_error", "model_not_found"),
            429: ("requests", "rate_limit_exceeded"),
        }.get(status, ("server_error", None))
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}

    def usage(self, chat: Chat, sent: int) -> dict[str, Any]:
        return {
            "prompt_tokens": chat.prompt_tokens,
            "completion_tokens": sent,
            "total_tokens": chat.prompt_tokens + sent,
        }

    def _chunk(self, chat: Chat, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": chat.id,
            "object": "chat.completion.chunk",
            "created": chat.created,
            "model": chat.model,
            "system_fingerprint": "fp_fake",
            "choices": choices,
        }

    def stream_head(self, chat: Chat) -> bytes:
        return b""

    def stream_delta(self, chat: Chat, text: str, first: bool) -> bytes:
        delta: dict[str, Any] = {"content": text}
        out = b""
        if first:  # real OpenAI opens with a role-only chunk when the first token is ready
            role = {"role": "assistant", "content": "", "refusal": None}
            out = sse(self._chunk(chat, [self._choice(role)]))
        return out + sse(self._chunk(chat, [self._choice(delta)]))

    def _choice(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    def _finish_chunk(self, chat: Chat, sent: int) -> dict[str, Any]:
        finish = "length" if chat.truncated else "stop"
        return self._chunk(chat, [self._choice({}, finish)])

    def stream_tail(self, chat: Chat, sent: int, now: float) -> bytes:
        out = sse(self._finish_chunk(chat, sent))
        if chat.usage and chat.include_usage:
            out += sse({**self._chunk(chat, []), "usage": self.usage(chat, sent)})
        return out + b"data: [DONE]\n\n"

    def stream_malformed(self, chat: Chat) -> bytes:
        return (
            b'data: {"id":"%b","object":"chat.completion.chunk","choices":[{\n\n' % chat.id.encode()
        )

    def stream_error(self, chat: Chat) -> bytes:
        error = {"message": "The fake server had an error while streaming.", "type": "server_error"}
        return sse({"error": {**error, "param": None, "code": None}})

    def completion(self, chat: Chat, now: float) -> dict[str, Any]:
        reply = {
            "id": chat.id,
            "object": "chat.completion",
            "created": chat.created,
            "model": chat.model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "".join(chat.tokens),
                        "refusal": None,
                    },
                    "logprobs": None,
                    "finish_reason": "length" if chat.truncated else "stop",
                }
            ],
        }
        if chat.usage:
            reply["usage"] = self.usage(chat, len(chat.tokens))
        return reply

    def model_list(self, knobs: Knobs) -> dict[str, Any]:
        return {"object": "list", "data": [self._model(m) for m in knobs.models_for(self.name)]}

    def _model(self, name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": CREATED, "owned_by": "fake"}

    def embeddings(self, body: dict[str, Any], knobs: Knobs) -> dict[str, Any]:
        inputs = body.get("input")
        # A string, a list of strings, one token-id list or a list of token-id lists.
        if isinstance(inputs, str) or (inputs and isinstance(inputs[0], int)):
            inputs = [inputs]
        texts = [x if isinstance(x, str) else json.dumps(x) for x in inputs or []]
        dim = int(body.get("dimensions") or knobs.embedding_dim)
        base64_wanted = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(texts):
            vector: Any = embedding_vector(text, dim)
            if base64_wanted:
                vector = base64.b64encode(embedding_bytes(vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        reply: dict[str, Any] = {"object": "list", "data": data, "model": body.get("model")}
        tokens = sum(prompt_tokens([{"content": t}]) for t in texts)
        if knobs.usage:
            reply["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
        return reply


class GroqFormat(OpenAIFormat):
    """Groq: OpenAI's format under /openai/v1, plus usage in `x_groq` on the finish chunk."""

    name = "groq"

    def usage(self, chat: Chat, sent: int) -> dict[str, Any]:
        return {
            **super().usage(chat, sent),
            "queue_time": 0.0,
            "prompt_time": 0.0,
            "completion_time": 0.0,
            "total_time": 0.0,
        }

    def _finish_chunk(self, chat: Chat, sent: int) -> dict[str, Any]:
        chunk = super()._finish_chunk(chat, sent)
        # Real Groq reports usage here whether or not stream_options asked for it.
        if chat.usage:
            chunk["x_groq"] = {"id": f"req_{chat.id}", "usage": self.usage(chat, sent)}
        return chunk

    def _model(self, name: str) -> dict[str, Any]:
        return {**super()._model(name), "active": True, "context_window": 131072}


class AnthropicFormat:
    """Anthropic Messages: named SSE events, usage in message_start and message_delta."""

    name = "anthropic"
    id_prefix = "msg_fake"
    stream_type = "text/event-stream; charset=utf-8"

    def parse_chat(self, body: dict[str, Any]) -> ChatParams:
        return ChatParams(
            model=str(body.get("model") or ""),
            prompt_tokens=prompt_tokens(body.get("messages"), body.get("system")),
            max_tokens=body.get("max_tokens"),
            stream=bool(body.get("stream")),
        )

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        kind = {
            400: "invalid_request_error",
            401: "authentication_error",
            403: "permission_error",
            404: "not_found_error",
            413: "request_too_large",
            429: "rate_limit_error",
            529: "overloaded_error",
        }.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}

    def _message(self, chat: Chat, content: list[Any], stop: str | None, out: int) -> dict:
        # The SDK types require `usage`; with usage off it is all zeros, i.e. "nothing reported".
        usage_in = chat.prompt_tokens if chat.usage else 0
        return {
            "id": chat.id,
            "type": "message",
            "role": "assistant",
            "model": chat.model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": usage_in, "output_tokens": out if chat.usage else 0},
        }

    def stream_head(self, chat: Chat) -> bytes:
        # Like the real API: message_start (with input tokens and output_tokens=1) arrives before
        # the first token; measure time to first token at the first text delta.
        start = {"type": "message_start", "message": self._message(chat, [], None, 1)}
        block = {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "text", "text": ""},
        }
        return (
            sse(start, "message_start")
            + sse(block, "content_block_start")
            + sse({"type": "ping"}, "ping")
        )

    def stream_delta(self, chat: Chat, text: str, first: bool) -> bytes:
        delta = {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": text},
        }
        return sse(delta, "content_block_delta")

    def stream_tail(self, chat: Chat, sent: int, now: float) -> bytes:
        stop = "max_tokens" if chat.truncated else "end_turn"
        usage = {"output_tokens": sent}
        if chat.usage:
            usage["input_tokens"] = chat.prompt_tokens
        else:
            usage["output_tokens"] = 0
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": usage,
        }
        return (
            sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
            + sse(delta, "message_delta")
            + sse({"type": "message_stop"}, "message_stop")
        )

    def stream_malformed(self, chat: Chat) -> bytes:
        return b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{\n\n'

    def stream_error(self, chat: Chat) -> bytes:
        return sse(self.error_body(529, "Overloaded (fake in-band error)"), "error")

    def completion(self, chat: Chat, now: float) -> dict[str, Any]:
        stop = "max_tokens" if chat.truncated else "end_turn"
        content = [{"type": "text", "text": "".join(chat.tokens)}]
        return self._message(chat, content, stop, len(chat.tokens))

    def model_list(self, knobs: Knobs) -> dict[str, Any]:
        names = knobs.models_for(self.name)
        data = [
            {
                "type": "model",
                "id": name,
                "display_name": name.replace("-", " ").title(),
                "created_at": "2025-01-15T10:00:00Z",
                "lifecycle": "active",
                "max_input_tokens": 200000,
                "max_tokens": 64000,
            }
            for name in names
        ]
        return {
            "data": data,
            "has_more": False,
            "first_id": names[0] if names else None,
            "last_id": names[-1] if names else None,
        }


OPENAI = OpenAIFormat()
GROQ = GroqFormat()
ANTHROPIC = AnthropicFormat()
