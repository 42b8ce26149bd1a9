"""Database connections around provider waits (DESIGN §5: no provider wait holds one).

Django keeps the connection a request opened until the request ends; a sync view that then waits
on a provider (REST completions via `async_to_sync`, a streamed response, a catalogue refresh)
would keep its pooled connection for seconds or minutes — a dozen such calls and every other
page fails with PoolTimeout. So whatever waits on a provider does its database work in short
hops that hand the connection back to the pool when they end: `hop(fn)` instead of
`sync_to_async(fn)`, or `release()` before waiting in sync code.

Which thread a hop runs in (issue 11, P3): under a request (Django's per-request thread, or a
sync caller above us: `async_to_sync`) the hop stays thread-sensitive, as `sync_to_async`. With
neither — websocket consumers and the reply tasks they start, which Channels would otherwise
run one after another in the single thread it gives all database work in a process — hops run
in a small pool of threads (`WORKBENCH_DB_HOP_THREADS`; 0, the default for now, keeps Channels'
one thread), so one reply's PostgreSQL
round trips don't queue every other reply's start behind them. Each hop hands its connection
back when it ends, so the pool of threads never holds more connections than hops in flight.

A connection inside an open transaction is never released (the transaction isn't ours to end;
pytest-django runs each non-transactional test in one)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import AsyncToSync, SyncToAsync, sync_to_async
from django.conf import settings
from django.db import connections


def release() -> None:
    """Return this context's connections to the pool (a checkout costs far less than a wait)."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and not connection.in_atomic_block:
            connection.close()


_executor: ThreadPoolExecutor | None = None


def _hop_executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        threads = int(getattr(settings, "WORKBENCH_DB_HOP_THREADS", 0))
        _executor = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="db-hop")
    return _executor


def _under_a_request() -> bool:
    """A sync caller above us, or a request's own thread: stay with it (thread-sensitive)."""
    return (
        getattr(AsyncToSync.executors, "current", None) is not None
        or SyncToAsync.thread_sensitive_context.get(None) is not None
    )


def hop(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`sync_to_async(fn)` that releases the connection when `fn` returns or raises: database
    work from async code that waits on a provider between hops, or that many replies starting
    at once would otherwise queue in one thread (see the module's docstring)."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            release()

    sensitive = sync_to_async(run)
    pooled = None

    @functools.wraps(fn)
    async def call(*args, **kwargs):
        nonlocal pooled
        if _under_a_request() or getattr(settings, "WORKBENCH_DB_HOP_THREADS", 0) <= 0:
            return await sensitive(*args, **kwargs)
        if pooled is None:
            pooled = sync_to_async(run, thread_sensitive=False, executor=_hop_executor())
        return await pooled(*args, **kwargs)

    return call
