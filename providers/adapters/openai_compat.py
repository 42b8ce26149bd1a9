"""The OpenAI chat-completions wire format, on the official `openai` SDK. Serves every
OpenAI-compatible host (OpenAI, Gemini, Cohere, Mistral, Together, Perplexity, DeepSeek,
OpenRouter, vLLM, LM Studio, llama.cpp…): hosts differ only in preset data and quirk flags."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai

from providers.adapters import errors
from providers.adapters.base import (
    Adapter,
    CompletionRequest,
    EmbeddingResult,
    Event,
    ModelInfo,
    StopReason,
    TextDelta,
    Usage,
)
from providers.adapters.clients import cached_client
from workbench import egress

EMBEDDING_HINTS = ("embed", "embedding")


def egress_client(config, flavor: str):
    """An HTTP client from the egress guard, with our timeouts, for the SDK to use."""
    t = config.timeouts
    return egress.async_client(
        flavor=flavor,
        timeout=egress.Timeouts(connect=t.connect, read=t.read, total=t.total),
        allow=list(config.egress_allow) if config.egress_allow is not None else None,
        resolver=config.resolver,
    )


class OpenAICompatAdapter(Adapter):
    supports_embeddings = True
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
            "messages": [{"role": m.role, "content": m.content} for m in request.all_messages()],
            "stream": True,
        }
        optional = {
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_tokens,
            "stop": list(request.stop) or None,
            "seed": None if self.has_quirk("no_seed") else request.seed,
        }
        params.update({key: value for key, value in optional.items() if value is not None})
        if not self.has_quirk("no_stream_options"):
            params["stream_options"] = {"include_usage": True}
        return params

    async def _create_stream(self, params: dict):
        return await self._sdk().chat.completions.create(**params)

    def _usage_of(self, chunk) -> Usage | None:
        usage = getattr(chunk, "usage", None)
        if usage is not None and getattr(usage, "prompt_tokens", None) is not None:
            return Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0)
        return None

    async def stream(self, request: CompletionRequest) -> AsyncIterator[Event]:
        try:
            stream = await self._create_stream(self._params(request))
            async with stream:
                async for chunk in stream:
                    usage = self._usage_of(chunk)
                    if usage is not None:
                        yield usage
                    for choice in chunk.choices:
                        text = choice.delta.content if choice.delta else None
                        if text:
                            yield TextDelta(text)
                        if choice.finish_reason:
                            yield StopReason(choice.finish_reason)
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
