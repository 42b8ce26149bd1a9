"""What every websocket consumer shares (DESIGN §5): a malformed frame gets an `invalid` error
frame, never a closed socket.

`JsonSocket` decodes each text frame itself — bounded in size and depth, a JSON object with a
string `type`, every string cleaned of what the database can't store (workbench.text) — and
answers anything else with an error frame: binary frames, non-JSON, deep nesting, `"type": [...]`.
An unexpected exception in a handler is logged and answered with a `server_error` frame instead
of Channels' close with 1011; the socket stays usable."""

from __future__ import annotations

import json
import logging

from channels.exceptions import AcceptConnection, DenyConnection, StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from workbench import text

logger = logging.getLogger(__name__)

# A chat message may hold 200,000 characters; escaped as \\uXXXX pairs that is 2.4 million.
MAX_FRAME_CHARS = 2_500_000
MAX_DEPTH = 16
MAX_REF_CHARS = 100


class FrameError(ValueError):
    """A frame we can't read; the message says what to send instead."""


def decode_frame(text_data: str) -> dict:
    """The frame as a dict with a string `type`, strings cleaned; FrameError otherwise."""
    if len(text_data) > MAX_FRAME_CHARS:
        raise FrameError(f"Messages can be at most {MAX_FRAME_CHARS:,} characters.")
    try:
        content = json.loads(text_data, parse_constant=_not_json)
    except (ValueError, RecursionError):
        raise FrameError("Send one JSON object per message.") from None
    if text.depth(content, MAX_DEPTH) > MAX_DEPTH:
        raise FrameError(f"JSON nested more than {MAX_DEPTH} levels deep.")
    if not isinstance(content, dict) or not isinstance(content.get("type"), str):
        raise FrameError('Each message is a JSON object with a "type" string.')
    return text.clean_data(content)


def _not_json(name: str):
    raise ValueError(f"{name} is not JSON")


def ref_of(content) -> str | int | None:
    """The client's `ref` to echo in a reply: a short string or an integer, else nothing."""
    ref = content.get("ref") if isinstance(content, dict) else None
    if isinstance(ref, str) and len(ref) <= MAX_REF_CHARS:
        return ref
    if isinstance(ref, int) and not isinstance(ref, bool) and abs(ref) < 2**53:
        return ref
    return None


class JsonSocket(AsyncJsonWebsocketConsumer):
    """Base of our consumers: override `receive_json` as usual; frames arrive decoded and safe."""

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if text_data is None:
            await self.send_error("invalid", "Send text frames of JSON; binary frames aren't read.")
            return
        try:
            content = decode_frame(text_data)
        except FrameError as exc:
            await self.send_error("invalid", str(exc))
            return
        try:
            await self.receive_json(content, **kwargs)
        except (AcceptConnection, DenyConnection, StopConsumer):
            raise
        except Exception:
            logger.exception("%s failed on a %r frame", type(self).__name__, content["type"])
            await self.send_error(
                "server_error", "Something went wrong on our side; try again.", content
            )

    async def send_error(self, code: str, message: str, content=None) -> None:
        await self.send_json(
            {"type": "error", "code": code, "message": message, "ref": ref_of(content)}
        )
