"""Echo: local, no network, free. Streams back exactly what a model would receive — system
prompt, history, injected context and parameters — so the workbench works with no keys and
prompts can be debugged."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

from providers.adapters.base import (
    Adapter,
    CompletionRequest,
    Event,
    ModelInfo,
    StopReason,
    TextDelta,
)

_TOKENISH = re.compile(r"\S+\s*|\s+")


def render(request: CompletionRequest) -> str:
    """The reply: a Markdown report of the request."""
    lines = [f"**Echo** of what `{request.model}` would receive:", ""]
    for message in request.all_messages():
        lines.append(f"**{message.role}**")
        lines.append("")
        lines.append("```text")
        lines.append(message.content.replace("```", "ˋˋˋ"))
        lines.append("```")
        lines.append("")
        for number, image in enumerate(message.images, 1):
            size = f", {image.width}×{image.height}" if image.width else ""
            name = image.name.replace("`", "'")
            lines.append(
                f"*image {number}:* `{name or 'image'}` ({image.media_type}{size}, "
                f"{len(image.data):,} bytes)"
            )
            lines.append("")
    params = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
        "stop": list(request.stop) or None,
        "seed": request.seed,
    }
    shown = {key: value for key, value in params.items() if value is not None}
    lines.append("**parameters** " + (f"`{json.dumps(shown)}`" if shown else "(provider defaults)"))
    return "\n".join(lines)


class EchoAdapter(Adapter):
    network = False
    supports_vision = True  # it lists the images it would receive

    async def stream(self, request: CompletionRequest) -> AsyncIterator[Event]:
        text = render(request)
        pieces = _TOKENISH.findall(text)
        if request.max_tokens is not None:
            pieces = pieces[: request.max_tokens]
        # A few tokens per chunk, yielding to the loop between chunks so a stop acts at once.
        for start in range(0, len(pieces), 4):
            yield TextDelta("".join(pieces[start : start + 4]))
            await asyncio.sleep(0)
        truncated = request.max_tokens is not None and len(pieces) < len(_TOKENISH.findall(text))
        yield StopReason("length" if truncated else "stop")

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo(id="echo", label="Echo", family="echo", details={"local": True})]


ADAPTER = EchoAdapter
