"""The lean streaming path shared by the gateway and `/api/completions`.

The gate's events are read by one task (`Pump`) into a buffer; the response takes whatever has
accumulated each time it can write, so deltas that arrive together (a fast provider, a busy
loop, a slow client) leave in one write — one `send` through Django and Daphne instead of one
per token — while a lone delta still leaves at once (no timer, no added latency). The encoder
decides how a batch is spelled: OpenAI and our SSE merge consecutive text deltas into one
event; Anthropic's blocks follow the same rule.

Cancelling the response (the client went away) cancels the task, so the gate records the call
as `disconnected` and settles it, as with direct iteration."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from providers.adapters.base import ReasoningDelta, TextDelta


class Pump:
    def __init__(self, events: AsyncIterator):
        self.events = events
        self.buffer: list = []
        self.ready = asyncio.Event()
        self.done = False
        self.error: BaseException | None = None
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            async for event in self.events:
                self.buffer.append(event)
                if not self.ready.is_set():
                    self.ready.set()
        except BaseException as exc:  # handed to the reader, which raises it
            self.error = exc
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self.done = True
            self.ready.set()
            await self.events.aclose()

    async def next_batch(self) -> list | None:
        """Everything that arrived since the last call (waiting for at least one event);
        None when the stream has ended. Raises the stream's error once the events before it
        have been taken."""
        if not self.buffer and not self.done:
            self.ready.clear()
            await self.ready.wait()
        batch, self.buffer = self.buffer, []
        if batch:
            return batch
        if self.error is not None and not isinstance(self.error, asyncio.CancelledError):
            raise self.error
        return None

    async def aclose(self) -> None:
        if not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


def merged(batch: list) -> list:
    """Consecutive deltas of the same kind as one (a client concatenates them anyway)."""
    if len(batch) == 1:
        return batch
    out: list = []
    for event in batch:
        kind = type(event)
        if out and kind is type(out[-1]) and (kind is TextDelta or kind is ReasoningDelta):
            out[-1] = kind(out[-1].text + event.text)
        else:
            out.append(event)
    return out


async def encoded(
    first: list, pump: Pump, encode: Callable[[list], bytes], on_error: Callable[[Exception], bytes]
) -> AsyncIterator[bytes]:
    """Bytes for the response: `first` (what arrived before the headers were sent), then each
    batch, encoded; an error after the first byte is encoded in-band by `on_error`."""
    try:
        if first:
            yield encode(merged(first))
        while (batch := await pump.next_batch()) is not None:
            yield encode(merged(batch))
    except Exception as exc:
        yield on_error(exc)
    finally:
        await pump.aclose()
