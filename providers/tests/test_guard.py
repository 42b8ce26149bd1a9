"""The gate's idle/total deadlines around an adapter (providers.gate.deadlines): one watchdog
timer, no timeout context per event."""

from __future__ import annotations

import asyncio

import pytest

from providers.adapters.base import ProviderError, TextDelta, Timeouts
from providers.gate.calls import Call
from providers.gate.deadlines import guarded


async def events(*delays: float):
    for index, delay in enumerate(delays):
        await asyncio.sleep(delay)
        yield TextDelta(str(index))


async def collect(stream, *, caller_pause: float = 0.0) -> list[str]:
    out = []
    async for event in stream:
        out.append(event.text)
        await asyncio.sleep(caller_pause)  # the caller handling the event (a slow socket)
    return out


async def test_a_slow_caller_between_events_is_not_provider_silence():
    timeouts = Timeouts(read=0.1, total=5)
    got = await collect(guarded(events(0, 0.05, 0.05), timeouts, Call()), caller_pause=0.25)
    assert got == ["0", "1", "2"]


async def test_a_silent_provider_times_out_after_the_idle_time():
    timeouts = Timeouts(read=0.1, total=5)
    call = Call()
    with pytest.raises(ProviderError) as raised:
        await collect(guarded(events(0, 0.02, 1.0), timeouts, call))
    assert raised.value.code == "timeout"
    assert "did not answer" in raised.value.message  # no first token recorded on this _Call


async def test_the_total_deadline_holds_however_steady_the_events():
    timeouts = Timeouts(read=0.1, total=0.3)
    with pytest.raises(ProviderError) as raised:
        await collect(guarded(events(*[0.05] * 20), timeouts, Call()))
    assert "whole call" in raised.value.message


async def test_a_cancellation_from_outside_stays_a_cancellation():
    timeouts = Timeouts(read=5, total=10)
    task = asyncio.create_task(collect(guarded(events(0, 10), timeouts, Call())))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
