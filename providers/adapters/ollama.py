"""Ollama's native API (NDJSON), on the official `ollama` SDK (an httpx client). Local: $0."""

from __future__ import annotations

from collections.abc import AsyncIterator

import ollama

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
    Usage,
)
from providers.adapters.clients import cached_client
from workbench import egress

STOP_REASONS = {"stop": "stop", "length": "length"}


def _map(exc: Exception, api_key: str) -> ProviderError:
    if errors.egress_cause(exc) is not None:
        return errors.from_sdk(exc, api_key=api_key)
    if isinstance(exc, ollama.ResponseError):
        status = getattr(exc, "status_code", None) or 500
        if status == -1:  # the SDK's code for an error inside the stream
            return ProviderError(
                "provider_error",
                "Ollama reported an error mid-stream.",
                detail=errors.scrub(str(exc.error), api_key),
            )
        # The SDK raises ResponseError from inside its HTTPStatusError handler: the response
        # (and its Retry-After) is on the context.
        response = getattr(exc.__context__, "response", None)
        return errors.from_status(
            status,
            errors.scrub(str(exc.error), api_key),
            retry_after=errors.retry_after(getattr(response, "headers", None)),
        )
    if isinstance(exc, ConnectionError) or type(exc).__name__ == "ConnectionError":
        return ProviderError(
            "unreachable", "Could not connect to Ollama. Is it running?", retryable=True
        )
    return errors.from_sdk(exc, api_key=api_key)


def ollama_message(message) -> dict:
    """Ollama takes a message's images as base64 strings beside its text."""
    body = {"role": message.role, "content": message.content}
    if message.images:
        body["images"] = [image.base64() for image in message.images]
    return body


class OllamaAdapter(Adapter):
    supports_embeddings = True
    supports_vision = True

    def __init__(self, config):
        super().__init__(config)
        self._client = None

    def _sdk(self):
        if self._client is None:
            self._client = cached_client(
                "ollama", self.config, self._new_client, lambda c: c._client.aclose()
            )
        return self._client

    def _new_client(self):
        t = self.config.timeouts
        client = ollama.AsyncClient(
            host=self.config.base_url,
            headers={"Authorization": f"Bearer {self.config.api_key}"}
            if self.config.api_key
            else None,
            **egress.ollama_client_kwargs(
                timeout=egress.Timeouts(connect=t.connect, read=t.read, total=t.total),
                allow=list(self.config.egress_allow)
                if self.config.egress_allow is not None
                else None,
                resolver=self.config.resolver,
            ),
        )
        if not self.config.api_key:
            # The SDK would add the server's own OLLAMA_API_KEY to requests to *any* host.
            client._client.headers.pop("authorization", None)
        return client

    def _options(self, request: CompletionRequest) -> dict:
        options = {
            "temperature": request.temperature,
            "top_p": request.top_p,
            "num_predict": request.max_tokens,
            "stop": list(request.stop) or None,
            "seed": request.seed,
        }
        return {key: value for key, value in options.items() if value is not None}

    async def stream(self, request: CompletionRequest) -> AsyncIterator[Event]:
        try:
            parts = await self._sdk().chat(
                model=request.model,
                messages=[ollama_message(m) for m in request.all_messages()],
                options=self._options(request),
                stream=True,
            )
            async for part in parts:
                thinking = part.message.thinking if part.message else None
                if thinking:
                    yield ReasoningDelta(thinking)
                text = part.message.content if part.message else ""
                if text:
                    yield TextDelta(text)
                if part.done:
                    if part.prompt_eval_count is not None or part.eval_count is not None:
                        yield Usage(
                            input_tokens=part.prompt_eval_count or 0,
                            output_tokens=part.eval_count or 0,
                        )
                    yield StopReason(
                        STOP_REASONS.get(part.done_reason or "stop", part.done_reason or "stop")
                    )
        except Exception as exc:
            raise _map(exc, self.config.api_key) from None

    async def list_models(self) -> list[ModelInfo]:
        try:
            listed = await self._sdk().list()
        except Exception as exc:
            raise _map(exc, self.config.api_key) from None
        models = []
        for item in listed.models:
            details = item.details
            family = (details.family if details else "") or ""
            name = item.model or ""
            kind = "embedding" if "embed" in name or family in {"nomic-bert", "bert"} else "chat"
            models.append(
                ModelInfo(
                    id=name,
                    kind=kind,
                    family=family,
                    size_bytes=item.size,
                    details={
                        "parameter_size": getattr(details, "parameter_size", "") if details else "",
                        "quantization": getattr(details, "quantization_level", "")
                        if details
                        else "",
                        "local": True,
                    },
                )
            )
        return models

    async def context_window(self, model: str) -> int | None:
        try:
            shown = await self._sdk().show(model)
        except Exception:
            return None
        info = shown.modelinfo or {}
        for key, value in info.items():
            if key.endswith(".context_length") and isinstance(value, int):
                return value
        return None

    async def embed(self, model: str, inputs: list[str]) -> EmbeddingResult:
        try:
            response = await self._sdk().embed(model=model, input=inputs)
        except Exception as exc:
            raise _map(exc, self.config.api_key) from None
        return EmbeddingResult(
            [list(v) for v in response.embeddings], getattr(response, "prompt_eval_count", None)
        )

    async def aclose(self) -> None:
        if self._client is not None and not self.config.reuse_clients:
            await self._client._client.aclose()
        self._client = None  # otherwise it stays cached for the next call on this loop


ADAPTER = OllamaAdapter
