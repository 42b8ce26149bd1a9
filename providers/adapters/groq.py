"""Groq, on the official `groq` SDK (an httpx client; base URL without /v1 — the SDK appends
/openai/v1). Same wire format as OpenAI, two quirks: no `stream_options` argument (sent in
`extra_body`), and usage arrives in `x_groq.usage`."""

from __future__ import annotations

import groq

from providers.adapters.clients import cached_client
from providers.adapters.openai_compat import (
    OpenAICompatAdapter,
    egress_client,
    field_of,
    usage_from,
)


class GroqAdapter(OpenAICompatAdapter):
    http_flavor = "httpx"
    raw_chunks = False  # the groq SDK's chunks as it parses them (x_groq usage, its own stream)
    supports_tools = False  # its SDK-parsed path reads no tool calls

    def _sdk(self):
        if self._client is None:
            self._client = cached_client(
                "groq",
                self.config,
                lambda: groq.AsyncGroq(
                    api_key=self.config.api_key or "not-needed",
                    base_url=self.config.base_url,
                    max_retries=0,
                    http_client=egress_client(self.config, self.http_flavor),
                ),
                lambda client: client.close(),
            )
        return self._client

    def _params(self, request):
        params = super()._params(request)
        params.pop("stream_options", None)
        params["extra_body"] = {"stream_options": {"include_usage": True}}
        return params

    def _reasoning_in(self, delta) -> str | None:
        return delta.reasoning or super()._reasoning_in(delta)  # a field of groq's delta

    def _has_usage(self, chunk) -> bool:
        return chunk.usage is not None or getattr(chunk, "x_groq", None) is not None

    def _usage_of(self, chunk):
        usage = super()._usage_of(chunk)
        if usage is not None:
            return usage
        return usage_from(field_of(field_of(chunk, "x_groq"), "usage"))


ADAPTER = GroqAdapter
