"""The idle and total deadlines around an adapter's stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from providers.adapters.base import ProviderError, Timeouts
from providers.gate.calls import Call


def _timeout_message(timeouts: Timeouts, call: Call, *, total: bool) -> str:
    if total:
        return f"The reply took longer than the {timeouts.total:g} s Workbench allows for a whole call."
    if call.first_token_at:
        return f"The provider stopped sending the reply (nothing for {timeouts.read:g} s)."
    return "The provider did not answer in time."


async def guarded(events: AsyncIterator, timeouts: Timeouts, call: Call) -> AsyncIterator:
    """Idle and total deadlines while waiting for the adapter — not while the caller handles an
    event (a slow websocket must not look like a stalled provider). Every event counts as
    activity: reasoning deltas keep a thinking model's call alive.

    One watchdog timer, re-armed only when it fires (about once per idle timeout), rather than a
    timeout context per event: entering `asyncio.timeout_at` for every chunk was ~7 % of a
    streaming server's CPU (py-spy, docs/performance.md). When it fires while the call waits on
    the adapter past its deadline, it cancels the waiting task; the cancellation becomes the
    `timeout` error here (an outside cancellation stays a cancellation, as asyncio.timeout does)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeouts.total
    iterator = aiter(events)
    waiting: asyncio.Task | None = None  # the task waiting on the adapter, while it waits
    wait_started = 0.0
    expired = False
    handle: asyncio.TimerHandle | None = None

    def watchdog() -> None:
        nonlocal handle, expired
        now = loop.time()
        if waiting is not None:
            due = min(wait_started + timeouts.read, deadline)
            if now >= due:
                expired, handle = True, None
                waiting.cancel()
                return
        else:  # the caller is handling an event: look again later (a wait checks the deadline)
            due = min(now + timeouts.read, deadline) if deadline > now else now + timeouts.read
        handle = loop.call_at(due, watchdog)

    handle = loop.call_at(min(loop.time() + timeouts.read, deadline), watchdog)
    try:
        while True:
            wait_started = loop.time()
            waiting = asyncio.current_task()
            if wait_started >= deadline:  # the whole call's time ran out while the caller worked
                raise ProviderError("timeout", _timeout_message(timeouts, call, total=True))
            try:
                event = await anext(iterator)
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                if not expired or waiting.uncancel() > 0:
                    raise
                message = _timeout_message(timeouts, call, total=loop.time() >= deadline)
                raise ProviderError("timeout", message) from None
            finally:
                waiting = None
            yield event
    finally:
        if handle is not None:
            handle.cancel()
        await events.aclose()


# --- Graceful shutdown -----------------------------------------------------------------------------
