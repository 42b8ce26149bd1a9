"""Database connections around provider waits (DESIGN §5: no provider wait holds one).

Django keeps the connection a request opened until the request ends; a sync view that then waits
on a provider (REST completions via `async_to_sync`, a streamed response, a catalogue refresh)
would keep its pooled connection for seconds or minutes — a dozen such calls and every other
page fails with PoolTimeout. So whatever waits on a provider does its database work in short
hops that hand the connection back to the pool when they end: `hop(fn)` instead of
`sync_to_async(fn)`, or `release()` before waiting in sync code.

A connection inside an open transaction is never released (the transaction isn't ours to end;
pytest-django runs each non-transactional test in one)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connections


def release() -> None:
    """Return this context's connections to the pool (a checkout costs far less than a wait)."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and not connection.in_atomic_block:
            connection.close()


def hop(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`sync_to_async(fn)` that releases the connection when `fn` returns or raises: database
    work from async code that waits on a provider between hops."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            release()

    return sync_to_async(run)
