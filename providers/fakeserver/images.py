"""Image parts in chat requests, checked the way the real APIs check them: a malformed part is
a 400 in the format's error shape, and a model told it can't see images (`vision=False`)
refuses them like a text-only model does. Tests read what arrived from the recorded requests."""

from __future__ import annotations

import base64
import binascii
from typing import Any

MEDIA_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}


def _decoded(data: Any, media_type: str) -> str | None:
    """Why `data` (base64) is not an image of `media_type`, or None."""
    if media_type not in MEDIA_TYPES:
        return f"unsupported image media type {media_type!r}"
    if not isinstance(data, str) or not data:
        return "image data must be a non-empty base64 string"
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return "image data is not valid base64"
    if not raw.startswith(MAGIC[media_type]):
        return f"image data is not a valid {media_type} image"
    return None


def _openai_part(part: Any) -> tuple[int, str | None]:
    if not isinstance(part, dict):
        return 0, "content parts must be objects"
    kind = part.get("type")
    if kind == "text":
        return 0, None if isinstance(part.get("text"), str) else "a text part needs `text`"
    if kind != "image_url":
        return 0, f"unknown content part type {kind!r}"
    url = (
        (part.get("image_url") or {}).get("url")
        if isinstance(part.get("image_url"), dict)
        else None
    )
    if not isinstance(url, str):
        return 1, "an image_url part needs `image_url.url`"
    if url.startswith(("http://", "https://")):
        return 1, None
    head, _, data = url.partition(",")
    if not head.startswith("data:") or not head.endswith(";base64"):
        return 1, "image_url.url must be an http(s) URL or a base64 data URL"
    return 1, _decoded(data, head[5:-7])


def _anthropic_block(block: Any) -> tuple[int, str | None]:
    if not isinstance(block, dict):
        return 0, "content blocks must be objects"
    kind = block.get("type")
    if kind == "text":
        return 0, None if isinstance(block.get("text"), str) else "a text block needs `text`"
    if kind != "image":
        return 0, f"unknown content block type {kind!r}"
    source = block.get("source")
    if not isinstance(source, dict) or source.get("type") != "base64":
        return 1, "an image block needs a base64 `source`"
    return 1, _decoded(source.get("data"), str(source.get("media_type")))


def check(fmt: str, body: dict[str, Any]) -> tuple[int, str | None]:
    """(images found, the first problem or None) in a chat request body of format `fmt`."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return 0, None
    count = 0
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if fmt == "ollama":
            images = message.get("images") or []
            if not isinstance(images, list):
                return count, f"messages[{index}].images must be a list"
            for data in images:
                count += 1
                raw_ok = isinstance(data, str)
                try:
                    raw = base64.b64decode(data, validate=True) if raw_ok else b""
                except (binascii.Error, ValueError):
                    raw = b""
                if not any(raw.startswith(m) for ms in MAGIC.values() for m in ms):
                    return count, f"messages[{index}].images: not a base64 image"
            continue
        if not isinstance(content, list):
            continue
        if fmt in {"openai", "groq"} and message.get("role") != "user":
            return count, f"messages[{index}]: only user messages may have image parts"
        for part in content:
            found, problem = (_anthropic_block if fmt == "anthropic" else _openai_part)(part)
            count += found
            if problem:
                return count, f"messages[{index}]: {problem}"
    return count, None
