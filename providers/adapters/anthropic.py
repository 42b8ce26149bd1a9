"""Anthropic Messages API, on the official `anthropic` SDK (an httpx2 client).

System prompt is a top-level field, not a message; usage comes in `message_start` (input) and
`message_delta` (output); there is no seed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic

from providers.adapters import errors
from providers.adapters.base import (
    Adapter,
    CompletionRequest,
    Event,
    ModelInfo,
    StopReason,
    TextDelta,
    Usage,
)
from providers.adapters.clients import cached_client
from providers.adapters.openai_compat import egress_client

# The Messages API requires max_tokens; used when the caller leaves it open.
DEFAULT_MAX_TOKENS = 4096
STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}


class AnthropicAdapter(Adapter):
    supports_seed = False

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
                {"role": m.role, "content": m.content}
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
        input_tokens = output_tokens = None
        try:
            stream = await self._sdk().messages.create(**self._params(request))
            async with stream:
                async for event in stream:
                    kind = event.type
                    if kind == "content_block_delta":
                        text = getattr(event.delta, "text", None)
                        if text:
                            yield TextDelta(text)
                    elif kind == "message_start":
                        usage = getattr(event.message, "usage", None)
                        if usage is not None:
                            input_tokens = usage.input_tokens
                            output_tokens = usage.output_tokens or output_tokens
                    elif kind == "message_delta":
                        usage = getattr(event, "usage", None)
                        if usage is not None and usage.output_tokens is not None:
                            output_tokens = usage.output_tokens
                        reason = getattr(event.delta, "stop_reason", None)
                        if reason:
                            yield StopReason(STOP_REASONS.get(reason, reason))
                    elif kind == "error":  # pragma: no cover - the SDK raises for these
                        raise errors.ProviderError(
                            "provider_error", "The provider reported an error mid-stream."
                        )
        except Exception as exc:
            raise errors.from_sdk(exc, api_key=self.config.api_key) from None
        if (
            input_tokens is not None
            and output_tokens is not None
            and (input_tokens or output_tokens)
        ):
            yield Usage(input_tokens, output_tokens)

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


ADAPTER = AnthropicAdapter
