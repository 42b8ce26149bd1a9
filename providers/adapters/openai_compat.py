"""The OpenAI chat-completions wire format, on the official `openai` SDK. Serves every
OpenAI-compatible host (OpenAI, Gemini, Cohere, Mistral, Together, Perplexity, DeepSeek,
OpenRouter, vLLM, LM Studio, llama.cpp…): hosts differ only in preset data and quirk flags."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import openai
import orjson

from providers.adapters import errors
from providers.adapters.base import (
    Adapter,
    CompletionRequest,
    EmbeddingResult,
    Event,
    ModelInfo,
    ProviderError,
    ReasoningDelta,
    StopReason,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from providers.adapters.clients import cached_client
from workbench import egress

EMBEDDING_HINTS = ("embed", "embedding")
# Where OpenAI-compatible hosts put a reasoning model's thinking: DeepSeek, vLLM and llama.cpp
# say `reasoning_content`; OpenRouter, Groq and Ollama's /v1 say `reasoning`.
REASONING_FIELDS = ("reasoning_content", "reasoning")


def field_of(obj: Any, name: str) -> Any:
    """A field of an SDK object (declared or extra) or of a plain dict."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    value = getattr(obj, name, None)
    if value is None:
        extra = getattr(obj, "model_extra", None) or {}
        value = extra.get(name)
    return value


def usage_from(usage: Any) -> Usage | None:
    """OpenAI-shaped usage → Usage: cached prompt tokens (`prompt_tokens_details.cached_tokens`,
    DeepSeek's `prompt_cache_hit_tokens`) and reasoning tokens
    (`completion_tokens_details.reasoning_tokens`) are parts of prompt/completion tokens."""
    prompt = field_of(usage, "prompt_tokens")
    if prompt is None:
        return None
    cached = field_of(field_of(usage, "prompt_tokens_details"), "cached_tokens")
    if cached is None:
        cached = field_of(usage, "prompt_cache_hit_tokens")
    reasoning = field_of(field_of(usage, "completion_tokens_details"), "reasoning_tokens")
    return Usage(
        input_tokens=int(prompt or 0),
        output_tokens=int(field_of(usage, "completion_tokens") or 0),
        cache_read_tokens=int(cached or 0),
        reasoning_tokens=int(reasoning) if reasoning is not None else None,
    )


def reasoning_of(delta: Any) -> str | None:
    for name in REASONING_FIELDS:
        value = field_of(delta, name)
        if isinstance(value, str) and value:
            return value
    return None


def content_type(response: Any) -> str:
    return (response.headers.get("content-type") or "").split(";")[0].strip().lower()


def not_a_stream(kind: str) -> ProviderError:
    shown = "an HTML page" if kind == "text/html" else f"“{kind or 'no content type'}”"
    return ProviderError(
        "provider_error",
        f"The provider answered with {shown} instead of a reply stream (is the base URL right?).",
    )


def json_body(raw: bytes) -> dict:
    """A whole JSON body that came instead of a stream; an `error` object in it is the
    provider's error (scrubbed by the caller's mapping)."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise ProviderError(
            "provider_error", "The provider answered with malformed JSON instead of a stream."
        ) from None
    if not isinstance(data, dict):
        raise ProviderError("provider_error", "The provider answered with unexpected JSON.")
    if data.get("error"):
        raise ProviderError("provider_error", "The provider answered with an error object.")
    return data


def egress_client(config, flavor: str):
    """An HTTP client from the egress guard, with our timeouts, for the SDK to use."""
    t = config.timeouts
    return egress.async_client(
        flavor=flavor,
        timeout=egress.Timeouts(connect=t.connect, read=t.read, total=t.total),
        allow=list(config.egress_allow) if config.egress_allow is not None else None,
        resolver=config.resolver,
    )


def openai_content(message) -> str | list[dict]:
    """A message's content: plain text, or text and image parts (data URLs) for a message with
    images — the shape OpenAI, Groq, Gemini's and every OpenAI-compatible vision server take."""
    if not message.images:
        return message.content
    parts: list[dict] = [{"type": "text", "text": message.content}] if message.content else []
    parts += [
        {"type": "image_url", "image_url": {"url": image.data_url()}} for image in message.images
    ]
    return parts


def openai_message(message) -> dict:
    """A message in OpenAI's shape, tool calls and tool results included."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    out: dict = {"role": message.role, "content": openai_content(message)}
    if message.tool_calls:
        out["content"] = message.content or None
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    return out


def tool_call_events(calls: Any) -> list[Event]:
    """ToolCallDelta events of a stream delta's or a whole message's `tool_calls`."""
    events: list[Event] = []
    if not isinstance(calls, list):
        return events
    for position, call in enumerate(calls):
        if not isinstance(call, dict):
            continue
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        index = call.get("index", position)
        arguments = function.get("arguments")
        events.append(
            ToolCallDelta(
                index=index if isinstance(index, int) and not isinstance(index, bool) else 0,
                id=str(call.get("id") or ""),
                name=str(function.get("name") or ""),
                arguments=arguments if isinstance(arguments, str) else "",
            )
        )
    return events


async def sse_data(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The `data` of each server-sent event, as bytes (multi-line data joined by "\\n"),
    split on the raw bytes: no text decoding per chunk (orjson reads UTF-8 bytes itself)."""
    buffer = b""
    lines: list[bytes] = []
    async for chunk in chunks:
        buffer += chunk
        if b"\n" not in chunk:
            continue
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            if line.endswith(b"\r"):
                line = line[:-1]
            if line:
                if line.startswith(b"data:"):
                    lines.append(line[6:] if line[5:6] == b" " else line[5:])
            elif lines:
                yield b"\n".join(lines)
                lines = []
    if buffer.startswith(b"data:"):
        lines.append(buffer[6:] if buffer[5:6] == b" " else buffer[5:])
    if lines:
        yield b"\n".join(lines)


class OpenAICompatAdapter(Adapter):
    supports_embeddings = True
    supports_response_format = True
    # Read the stream's events with orjson instead of letting the SDK build a pydantic model per
    # chunk: that construction was a third of a streaming server's CPU (docs/performance.md).
    # The SDK still builds, sends and authenticates the request and maps HTTP errors.
    raw_chunks: ClassVar[bool] = True
    supports_vision = True
    supports_tools = True  # read from the raw chunks (`raw_chunks`); Groq's SDK path has none
    http_flavor = "httpx2"

    def __init__(self, config):
        super().__init__(config)
        self.supports_embeddings = config.preset.embeddings
        self._client = None

    def _sdk(self):
        if self._client is None:
            self._client = cached_client(
                "openai",
                self.config,
                lambda: openai.AsyncOpenAI(
                    api_key=self.config.api_key or "not-needed",
                    organization=self.config.organization or None,
                    base_url=self.config.base_url,
                    max_retries=0,  # the gate retries, and only before the first token
                    http_client=egress_client(self.config, self.http_flavor),
                ),
                lambda client: client.close(),
            )
        return self._client

    def _params(self, request: CompletionRequest) -> dict:
        params: dict = {
            "model": request.model,
            "messages": [openai_message(m) for m in request.all_messages()],
            "stream": True,
        }
        optional = {
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_tokens,
            "stop": list(request.stop) or None,
            "seed": None if self.has_quirk("no_seed") else request.seed,
            "response_format": request.response_format,
            "tools": list(request.tools) or None,
            "tool_choice": request.tool_choice,
        }
        params.update({key: value for key, value in optional.items() if value is not None})
        if not self.has_quirk("no_stream_options"):
            params["stream_options"] = {"include_usage": True}
        return params

    async def _create_stream(self, params: dict):
        return await self._sdk().chat.completions.create(**params)

    def _has_usage(self, chunk) -> bool:
        return chunk.usage is not None

    def _reasoning_in(self, delta) -> str | None:
        """A stream delta's reasoning: not a field of the openai SDK's delta, so in its extras."""
        extra = delta.__pydantic_extra__
        if extra:
            reasoning = extra.get("reasoning_content") or extra.get("reasoning")
            if isinstance(reasoning, str):
                return reasoning
        return None

    def _usage_of(self, chunk) -> Usage | None:
        return usage_from(field_of(chunk, "usage"))

    def _choice_events(self, choice: Any, part: str) -> list[Event]:
        """Events of one choice: `part` is "delta" (a stream chunk) or "message" (a whole
        completion)."""
        events: list[Event] = []
        body = field_of(choice, part)
        reasoning = reasoning_of(body)
        if reasoning:
            events.append(ReasoningDelta(reasoning))
        text = field_of(body, "content")
        if isinstance(text, str) and text:
            events.append(TextDelta(text))
        if self.supports_tools and isinstance(body, dict) and body.get("tool_calls"):
            events += tool_call_events(body["tool_calls"])
        reason = field_of(choice, "finish_reason")
        if reason:
            events.append(StopReason(str(reason)))
        return events

    def _message_events(self, data: dict) -> list[Event]:
        """A whole completion (a server that ignored `stream: true`) as the events a stream of
        it would have given."""
        events: list[Event] = []
        for choice in (data.get("choices") or [])[:1]:
            events += self._choice_events(choice, "message")
        usage = self._usage_of(data)
        if usage is not None:
            events.append(usage)
        return events

    async def _raw_events(self, params: dict) -> AsyncIterator[Event]:
        create = self._sdk().chat.completions.with_streaming_response.create
        async with create(**params) as response:
            kind = content_type(response)
            if kind == "application/json":
                for event in self._message_events(json_body(await response.read())):
                    yield event
                return
            if kind == "text/html":
                raise not_a_stream(kind)
            chunks = 0
            async for data in sse_data(response.http_response.aiter_bytes()):
                if data == b"[DONE]":
                    break
                chunks += 1
                for event in self._chunk_events(data):
                    yield event
            if not chunks and kind != "text/event-stream":
                raise not_a_stream(kind)

    def _chunk_events(self, data: bytes) -> list[Event]:
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            # orjson refuses a lone surrogate escape ("\ud800"), which real APIs do send
            # mid-emoji; the standard parser reads it and the gate's sanitizer cleans the text.
            try:
                chunk = json.loads(data)
            except ValueError:
                raise ProviderError(
                    "provider_error", "The provider sent a malformed stream chunk."
                ) from None
        if not isinstance(chunk, dict):
            return []
        error = chunk.get("error")
        if error:  # an in-band error, as the SDK would raise it
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise ProviderError(
                "provider_error",
                errors.scrub(str(message or "The provider sent an error."), self.config.api_key),
            )
        events: list[Event] = []
        usage = self._usage_of(chunk)
        if usage is not None:
            events.append(usage)
        for choice in chunk.get("choices") or ():
            events += self._choice_events(choice, "delta")
        return events

    async def stream(self, request: CompletionRequest) -> AsyncIterator[Event]:
        if self.raw_chunks:
            try:
                async for event in self._raw_events(self._params(request)):
                    yield event
            except Exception as exc:
                raise errors.from_sdk(exc, api_key=self.config.api_key) from None
            return
        try:
            stream = await self._create_stream(self._params(request))
            async with stream:
                kind = content_type(stream.response)
                if kind == "application/json":
                    for event in self._message_events(json_body(await stream.response.aread())):
                        yield event
                    return
                if kind == "text/html":
                    raise not_a_stream(kind)
                chunks = 0
                # The hot path (every token): declared SDK fields by attribute, the reasoning
                # hosts add from the model's extras dict — no getattr probes that raise.
                async for chunk in stream:
                    chunks += 1
                    if self._has_usage(chunk):
                        usage = self._usage_of(chunk)
                        if usage is not None:
                            yield usage
                    for choice in chunk.choices or ():
                        delta = choice.delta
                        if delta is not None:
                            reasoning = self._reasoning_in(delta)
                            if reasoning:
                                yield ReasoningDelta(reasoning)
                            if delta.content:
                                yield TextDelta(delta.content)
                        if choice.finish_reason:
                            yield StopReason(choice.finish_reason)
                if not chunks and kind != "text/event-stream":
                    raise not_a_stream(kind)
        except Exception as exc:
            raise errors.from_sdk(exc, api_key=self.config.api_key) from None

    async def list_models(self) -> list[ModelInfo]:
        if self.has_quirk("no_models_list"):
            return await super().list_models()
        try:
            page = await self._sdk().models.list()
            found = [item async for item in page]
        except Exception as exc:
            raise errors.from_sdk(exc, api_key=self.config.api_key) from None
        models = []
        for item in found:
            model_id = item.id
            kind = (
                "embedding" if any(hint in model_id.lower() for hint in EMBEDDING_HINTS) else "chat"
            )
            extra = item.model_extra or {}
            window = (
                extra.get("context_window")
                or extra.get("context_length")
                or extra.get("max_model_len")
            )
            models.append(
                ModelInfo(
                    id=model_id,
                    kind=kind,
                    label=extra.get("display_name") or extra.get("name") or "",
                    context_window=int(window) if isinstance(window, int | float) else None,
                    family=str(getattr(item, "owned_by", "") or ""),
                )
            )
        return models

    async def embed(self, model: str, inputs: list[str]) -> EmbeddingResult:
        try:
            response = await self._sdk().embeddings.create(model=model, input=inputs)
        except Exception as exc:
            raise errors.from_sdk(exc, api_key=self.config.api_key) from None
        vectors = [item.embedding for item in sorted(response.data, key=lambda item: item.index)]
        usage = getattr(response, "usage", None)
        return EmbeddingResult(vectors, getattr(usage, "prompt_tokens", None) if usage else None)

    async def aclose(self) -> None:
        if self._client is not None and not self.config.reuse_clients:
            await self._client.close()
        self._client = None  # otherwise it stays cached for the next call on this loop


ADAPTER = OpenAICompatAdapter
