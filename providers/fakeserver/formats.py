"""Wire formats: the bytes each provider family sends, as pure functions of one `Chat`.

Timing and faults live in the server; a format only knows how to spell a stream head, a content
chunk, the tail (finish + usage + terminator), a broken chunk, an in-band error, a whole reply, an
error body, a model list and embeddings the way the official SDK expects to parse them.
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from .knobs import Knobs, embedding_bytes, embedding_vector, prompt_tokens

CREATED = 1_736_935_200  # 2025-01-15T10:00:00Z: model timestamps are fixed, so replies are stable


def dumps(data: Any) -> bytes:
    # Raw UTF-8, as the real APIs send it (so `chunk_bytes` can split a character); a lone
    # surrogate has no UTF-8 form, so it goes as a JSON escape, as a real API would send it.
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode()


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


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
    prompt_tokens: int  # OpenAI: all of the prompt; Anthropic: the uncached part
    truncated: bool  # cut by max_tokens: finish reason "length"/"max_tokens"
    usage: bool  # the `usage` knob: report usage at all
    include_usage: bool  # OpenAI stream_options.include_usage
    started: float  # loop time the request arrived (Ollama reports durations)
    created: int = field(default_factory=lambda: int(time.time()))
    first_token_at: float | None = None
    reasoning: list[str] = field(default_factory=list)  # thinking tokens, sent before `tokens`
    reasoning_field: str = "reasoning_content"
    cache_read: int = 0
    cache_write: int = 0
    reasoning_sent: int = 0  # of the tokens sent so far, how many were reasoning
    opened: bool = False  # the first delta (of any kind) went out
    text_started: bool = False
    # OpenAI formats: the function call this reply makes instead of text (`tokens` are then
    # pieces of its arguments): {"id", "name", "arguments"}.
    tool_call: dict[str, str] | None = None


class ChatFormat(Protocol):
    """What the server needs from a wire format to answer a chat request."""

    name: str
    id_prefix: str
    stream_type: str

    def parse_chat(self, body: dict[str, Any]) -> ChatParams: ...
    def error_body(self, status: int, message: str) -> dict[str, Any]: ...
    def stream_head(self, chat: Chat) -> bytes: ...
    def stream_delta(self, chat: Chat, text: str, first: bool) -> bytes: ...
    def stream_reasoning(self, chat: Chat, text: str) -> bytes: ...
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

    def tool_call_for(self, body: dict[str, Any], call_id: str) -> dict[str, str] | None:
        """The deterministic function call a request with `tools` gets: the forced tool, or the
        first one, with arguments made from its JSON schema's properties (string → "fake",
        integer → 1, number → 1.5, boolean → true, array → [], object → {}). No call when
        tool_choice is "none" or the last message is a tool result (the reply is then text)."""
        tools = [
            tool["function"]
            for tool in body.get("tools") or []
            if isinstance(tool, dict) and isinstance(tool.get("function"), dict)
        ]
        choice = body.get("tool_choice")
        messages = body.get("messages") or [{}]
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        if not tools or choice == "none" or last.get("role") == "tool":
            return None
        tool = tools[0]
        if isinstance(choice, dict):
            named = (choice.get("function") or {}).get("name")
            tool = next((t for t in tools if t.get("name") == named), tool)
        properties = (tool.get("parameters") or {}).get("properties") or {}
        values = {"string": "fake", "integer": 1, "number": 1.5, "boolean": True, "array": []}
        arguments = {
            key: values.get(spec.get("type"), {}) if isinstance(spec, dict) else None
            for key, spec in properties.items()
        }
        return {
            "id": call_id,
            "name": str(tool.get("name")),
            "arguments": dumps(arguments).decode(),
        }

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
        """`sent` counts reasoning tokens too (they are completion tokens); cached prompt tokens
        are part of prompt_tokens."""
        usage: dict[str, Any] = {
            "prompt_tokens": chat.prompt_tokens,
            "completion_tokens": sent,
            "total_tokens": chat.prompt_tokens + sent,
        }
        if chat.cache_read:
            usage["prompt_tokens_details"] = {"cached_tokens": chat.cache_read, "audio_tokens": 0}
        if chat.reasoning:
            usage["completion_tokens_details"] = {"reasoning_tokens": chat.reasoning_sent}
        return usage

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

    def _open(self, chat: Chat) -> bytes:
        if chat.opened:
            return b""
        chat.opened = True  # real OpenAI opens with a role-only chunk when the first token is ready
        role = {"role": "assistant", "content": "", "refusal": None}
        return sse(self._chunk(chat, [self._choice(role)]))

    def stream_delta(self, chat: Chat, text: str, first: bool) -> bytes:
        if chat.tool_call is not None:  # a piece of the call's arguments; id and name first
            call: dict[str, Any] = {"index": 0, "function": {"arguments": text}}
            if first:
                call = {
                    "index": 0,
                    "id": chat.tool_call["id"],
                    "type": "function",
                    "function": {"name": chat.tool_call["name"], "arguments": text},
                }
            delta = {"tool_calls": [call]}
            return self._open(chat) + sse(self._chunk(chat, [self._choice(delta)]))
        return self._open(chat) + sse(self._chunk(chat, [self._choice({"content": text})]))

    def stream_reasoning(self, chat: Chat, text: str) -> bytes:
        delta = {"content": None, chat.reasoning_field: text}
        return self._open(chat) + sse(self._chunk(chat, [self._choice(delta)]))

    def _choice(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    def _finish(self, chat: Chat) -> str:
        if chat.tool_call is not None:
            return "tool_calls"
        return "length" if chat.truncated else "stop"

    def _finish_chunk(self, chat: Chat, sent: int) -> dict[str, Any]:
        return self._chunk(chat, [self._choice({}, self._finish(chat))])

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
                    "finish_reason": self._finish(chat),
                }
            ],
        }
        if chat.tool_call is not None:
            reply["choices"][0]["message"]["content"] = None
            reply["choices"][0]["message"]["tool_calls"] = [
                {
                    "id": chat.tool_call["id"],
                    "type": "function",
                    "function": {
                        "name": chat.tool_call["name"],
                        "arguments": chat.tool_call["arguments"],
                    },
                }
            ]
        if chat.reasoning:
            reply["choices"][0]["message"][chat.reasoning_field] = "".join(chat.reasoning)
        chat.reasoning_sent = len(chat.reasoning)
        if chat.usage:
            reply["usage"] = self.usage(chat, len(chat.tokens) + len(chat.reasoning))
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
    """Groq: OpenAI's format under /openai/v1, plus usage in `x_groq` on the finish chunk;
    reasoning models stream `delta.reasoning`."""

    name = "groq"

    def stream_reasoning(self, chat: Chat, text: str) -> bytes:
        chat.reasoning_field = "reasoning"
        return super().stream_reasoning(chat, text)

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

    def _usage(self, chat: Chat, out: int) -> dict[str, Any]:
        # The SDK types require `usage`; with usage off it is all zeros, i.e. "nothing reported".
        if not chat.usage:
            return {"input_tokens": 0, "output_tokens": 0}
        usage = {"input_tokens": chat.prompt_tokens, "output_tokens": out}
        if chat.cache_read or chat.cache_write:
            usage["cache_read_input_tokens"] = chat.cache_read
            usage["cache_creation_input_tokens"] = chat.cache_write
        return usage

    def _message(self, chat: Chat, content: list[Any], stop: str | None, out: int) -> dict:
        return {
            "id": chat.id,
            "type": "message",
            "role": "assistant",
            "model": chat.model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": self._usage(chat, out),
        }

    def _block(self, index: int, kind: str) -> bytes:
        block = {"type": kind, kind: ""} if kind == "thinking" else {"type": kind, "text": ""}
        if kind == "thinking":
            block["signature"] = ""
        start = {"type": "content_block_start", "index": index, "content_block": block}
        return sse(start, "content_block_start")

    def stream_head(self, chat: Chat) -> bytes:
        # Like the real API: message_start (with input tokens and output_tokens=1) arrives before
        # the first token; measure time to first token at the first text delta.
        start = {"type": "message_start", "message": self._message(chat, [], None, 1)}
        return (
            sse(start, "message_start")
            + self._block(0, "thinking" if chat.reasoning else "text")
            + sse({"type": "ping"}, "ping")
        )

    def stream_reasoning(self, chat: Chat, text: str) -> bytes:
        delta = {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": text},
        }
        return sse(delta, "content_block_delta")

    def stream_delta(self, chat: Chat, text: str, first: bool) -> bytes:
        out = b""
        index = 1 if chat.reasoning else 0
        if chat.reasoning and not chat.text_started:
            signature = {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "signature_delta", "signature": "ZmFrZSBzaWduYXR1cmU="},
            }
            out = (
                sse(signature, "content_block_delta")
                + sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
                + self._block(1, "text")
            )
        chat.text_started = True
        delta = {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "text_delta", "text": text},
        }
        return out + sse(delta, "content_block_delta")

    def stream_tail(self, chat: Chat, sent: int, now: float) -> bytes:
        stop = "max_tokens" if chat.truncated else "end_turn"
        usage = {"output_tokens": sent if chat.usage else 0}
        if chat.usage:  # today's API repeats the (cumulative) input side here
            usage |= {k: v for k, v in self._usage(chat, sent).items() if k != "output_tokens"}
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": usage,
        }
        index = 1 if chat.reasoning and chat.text_started else 0
        return (
            sse({"type": "content_block_stop", "index": index}, "content_block_stop")
            + sse(delta, "message_delta")
            + sse({"type": "message_stop"}, "message_stop")
        )

    def stream_malformed(self, chat: Chat) -> bytes:
        return b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{\n\n'

    def stream_error(self, chat: Chat) -> bytes:
        return sse(self.error_body(529, "Overloaded (fake in-band error)"), "error")

    def completion(self, chat: Chat, now: float) -> dict[str, Any]:
        stop = "max_tokens" if chat.truncated else "end_turn"
        content: list[dict[str, Any]] = []
        if chat.reasoning:
            thinking = "".join(chat.reasoning)
            content.append({"type": "thinking", "thinking": thinking, "signature": "ZmFrZQ=="})
        content.append({"type": "text", "text": "".join(chat.tokens)})
        return self._message(chat, content, stop, len(chat.tokens) + len(chat.reasoning))

    def model_list(self, knobs: Knobs) -> dict[str, Any]:
        names = knobs.models_for(self.name)
        data = [
            {
                "type": "model",
                "id": name,
                "display_name": anthropic_display_name(name),
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


def anthropic_display_name(model_id: str) -> str:
    """A display name the way Anthropic writes them: "claude-3-5-haiku-20241022" →
    "Claude 3.5 Haiku" (version digits keep their dot; the date suffix is dropped)."""
    name = re.sub(r"-(\d{8}|latest)$", "", model_id)
    name = re.sub(r"(?<=\d)-(?=\d(?:\D|$))", ".", name)
    return " ".join(word[:1].upper() + word[1:] for word in name.split("-"))
