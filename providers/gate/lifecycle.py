"""The calls this process is running, and a graceful shutdown that settles them.

The ledger's sweep leaves live calls alone; a stopping server cancels them and waits until each
has settled its row as `interrupted`. A cancelled call's status says whose doing it was."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from billing.models import CallStatus
from providers.gate.calls import Call, CallControl


@dataclass
class Live:
    call: Call
    task: asyncio.Task | None
    pk: int
    settled: asyncio.Event = field(default_factory=asyncio.Event)

    def done(self) -> None:
        _LIVE.pop(self.pk, None)
        self.settled.set()


# Calls this process is running, by usage row id (the sweep leaves them alone; a graceful
# shutdown settles them). Shutting down: cancellations are the server's, not the caller's.
_LIVE: dict[int, Live] = {}
_shutting_down = False


def live_ids() -> frozenset[int]:
    return frozenset(_LIVE)


def live_add(call: Call, task: asyncio.Task | None, pk: int) -> Live:
    """Count a call as live (until its row is settled: `Live.done`)."""
    live = _LIVE[pk] = Live(call, task, pk)
    return live


def cancelled_status(exc: BaseException, control: CallControl | None) -> str:
    if _shutting_down:
        return CallStatus.INTERRUPTED
    if isinstance(exc, GeneratorExit) or (control is not None and control.stop_requested):
        return CallStatus.STOPPED  # the caller stopped iterating, or pressed Stop
    return CallStatus.DISCONNECTED  # the task was cancelled from outside: the caller went away


def shutting_down() -> None:
    """The server is stopping: from now on a cancelled call is `interrupted` (the server's
    doing), not `stopped` or `disconnected`."""
    global _shutting_down
    _shutting_down = True


async def shutdown(*, deadline: float = 8.0) -> int:
    """The server is stopping: cancel the calls still running in this process and wait (up to
    `deadline` seconds) until each has settled its usage row as `interrupted` with everything
    received so far. Returns how many calls were cut."""
    shutting_down()
    live = list(_LIVE.values())
    for entry in live:
        # A task the server is cancelling already (Daphne cancels its requests) is left to
        # that: a second cancel would only cut its own clean-up short.
        if entry.task is not None and not entry.task.done() and not entry.task.cancelling():
            entry.task.cancel()
    if live:
        await asyncio.wait(
            [asyncio.ensure_future(entry.settled.wait()) for entry in live], timeout=deadline
        )
    return len(live)
