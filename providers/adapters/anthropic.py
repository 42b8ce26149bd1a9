"""Anthropic Messages API, on the official `anthropic` SDK (an httpx2 client).

System prompt is a top-level field, not a message; usage comes in `message_start` (input, cache
reads and writes) and `message_delta` (output); `thinking` blocks are reasoning; the stream is
complete only at `message_stop`; there is no seed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic

from providers.adapters import errors
from providers.adapters.base import (
    Adapter,
    CompletionRequest,
    Event,
    ModelInfo,
    ReasoningDelta,
    StopReason,
    TextDelta,
    Usage,
)
from providers.adapters.clients import cached_client
from providers.adapters.openai_compat import (
    content_type,
    egress_client,
    field_of,
    json_body,
    not_a_stream,
)

# The Messages API requires max_tokens; used when the caller leaves it open.
DEFAULT_MAX_TOKENS = 4096
STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}


def anthropic_content(message) -> str | list[dict]:
    """Text, or image blocks (base64) followed by the text, as Anthropic recommends."""
    if not message.images:
        return message.content
    blocks: list[dict] = [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": image.media_type, "data": image.base64()},
        }
        for image in message.images
    ]
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    return blocks


class AnthropicAdapter(Adapter):
    supports_seed = False
    supports_vision = True

    def __init__(self, config):
        super().__init__(config)
        self._client = None

    def _sdk(self):
        if self._client is None:
            self._client = cached_client(
                "anthropic",
                self.config,
                lambda: anthropic.AsyncAnthropic(
                    api_key=self.config.api_key or "not-needed",
                    base_url=self.config.base_url,
                    max_retries=0,
                    http_client=egress_client(self.config, "httpx2"),
                ),
                lambda client: client.close(),
            )
        return self._client

    def _params(self, request: CompletionRequest) -> dict:
        system = "\n\n".join(
            [request.system, *(m.content for m in request.messages if m.role == "system")]
        ).strip()
        params: dict = {
            "model": request.model,
            "messages": [
                {"role": m.role, "content": anthropic_content(m)}
                for m in request.messages
                if m.role != "system"
            ],
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "stream": True,
        }
        if system:
            params["system"] = system
        if request.stop:
            params["stop_sequences"] = list(request.stop)
        sampling = {
            key: value
            for key, value in {"temperature": request.temperature, "top_p": request.top_p}.items()
            if value is not None
        }
        if sampling:
            params["extra_body"] = (
                sampling  # the SDK dropped these keywords; the API still takes them
            )
        return params

    async def stream(self, request: CompletionRequest) -> AsyncIterator[Event]:
        try:
            stream = await self._sdk().messages.create(**self._params(request))
            async with stream:
                kind = content_type(stream.response)
                if kind == "application/json":
                    # A server that ignored `stream: true`: the whole message at once.
                    for event in _message_events(json_body(await stream.response.aread())):
                        yield event
                    return
                if kind != "text/event-stream":
                    raise not_a_stream(kind)
                reason, counts = None, {}
                async for event in stream:
                    kind = event.type
                    if kind == "content_block_delta":
                        delta = event.delta
                        if delta.type == "thinking_delta":
                            if delta.thinking:
                                yield ReasoningDelta(delta.thinking)
                        else:
                            text = getattr(delta, "text", None)
                            if text:
                                yield TextDelta(text)
                    elif kind == "message_start":
                        usage = _usage_from(field_of(event.message, "usage"), counts, start=True)
                        if usage is not None:
                            yield usage
                    elif kind == "message_delta":
                        usage = _usage_from(field_of(event, "usage"), counts, start=False)
                        if usage is not None:
                            yield usage
                        reason = field_of(event.delta, "stop_reason") or reason
                    elif kind == "message_stop":
                        # Only now is the message complete (a stream cut after message_delta
                        # is still cut).
                        yield StopReason(STOP_REASONS.get(reason or "", reason or "stop"))
                    elif kind == "error":  # pragma: no cover - the SDK raises for these
                        raise errors.ProviderError(
                            "provider_error", "The provider reported an error mid-stream."
                        )
        except Exception as exc:
            raise errors.from_sdk(exc, api_key=self.config.api_key) from None

    async def list_models(self) -> list[ModelInfo]:
        try:
            page = await self._sdk().models.list(limit=1000)
            found = [item async for item in page]
        except Exception as exc:
            raise errors.from_sdk(exc, api_key=self.config.api_key) from None
        return [
            ModelInfo(id=item.id, label=getattr(item, "display_name", "") or "", family="claude")
            for item in found
        ]

    async def aclose(self) -> None:
        if self._client is not None and not self.config.reuse_clients:
            await self._client.close()
        self._client = None  # otherwise it stays cached for the next call on this loop


def _usage_from(usage: Any, counts: dict, *, start: bool) -> Usage | None:
    """Anthropic counts cache reads and writes apart from `input_tokens`; ours (genai-prices')
    input is the whole prompt. `counts` carries the parts across events (message_delta may
    repeat some, all or none of message_start's). At message_start the output count is a
    placeholder (1): only message_delta's is real. Zeros everywhere mean "not reported" (a host
    without usage)."""
    if usage is None:
        return None
    for ours, theirs in (
        ("uncached", "input_tokens"),
        ("read", "cache_read_input_tokens"),
        ("write", "cache_creation_input_tokens"),
    ):
        value = field_of(usage, theirs)
        if value is not None and (value or ours not in counts):
            counts[ours] = value
    output = None if start else field_of(usage, "output_tokens")
    if not any((*counts.values(), output)):
        return None
    fields: dict = {"output_tokens": output} if output is not None else {}
    if any(counts.values()):
        fields |= {
            "input_tokens": sum(counts.values()),
            "cache_read_tokens": counts.get("read", 0),
            "cache_write_tokens": counts.get("write", 0),
        }
    return Usage(**fields) if fields else None


def _message_events(data: dict) -> list[Event]:
    events: list[Event] = []
    for block in data.get("content") or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "thinking" and block.get("thinking"):
            events.append(ReasoningDelta(block["thinking"]))
        elif block.get("type") == "text" and block.get("text"):
            events.append(TextDelta(block["text"]))
    usage = data.get("usage")
    if isinstance(usage, dict):
        whole = _usage_from(usage, {}, start=False)
        if whole is not None:
            events.append(whole)
    reason = data.get("stop_reason")
    if reason:
        events.append(StopReason(STOP_REASONS.get(reason, reason)))
    return events


ADAPTER = AnthropicAdapter
