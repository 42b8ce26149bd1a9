"""SDK clients cached per event loop, so calls reuse connections (keep-alive, TLS sessions)
instead of building a client — and a TLS handshake — per call.

Keyed by everything that shapes the client (host, a digest of the key, timeouts, the egress
allowlist), so a changed key or URL gets a fresh client. Clients belong to one event loop, so
the cache is per loop and goes away with it."""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections.abc import Callable
from typing import Any

from django.conf import settings

MAX_PER_LOOP = 64
_closing: set[asyncio.Task] = set()

_cache: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple, Any]] = (
    weakref.WeakKeyDictionary()
)


def _key(kind: str, config) -> tuple:
    allow = (
        config.egress_allow
        if config.egress_allow is not None
        else tuple(settings.WORKBENCH_EGRESS_ALLOW)
    )
    return (
        kind,
        config.base_url,
        hashlib.sha256(config.api_key.encode()).hexdigest(),
        config.organization,
        config.timeouts,
        tuple(allow),
        id(config.resolver) if config.resolver is not None else None,
    )


def cached_client(
    kind: str, config, factory: Callable[[], Any], close: Callable[[Any], Any]
) -> Any:
    if not config.reuse_clients:
        return factory()
    loop = asyncio.get_running_loop()
    clients = _cache.get(loop)
    if clients is None:
        clients = _cache[loop] = {}
    key = _key(kind, config)
    client, _ = clients.get(key, (None, None))
    if client is None:
        if len(clients) >= MAX_PER_LOOP:
            oldest_key = next(iter(clients))  # dicts keep insertion order: the oldest first
            task = loop.create_task(_close(*clients.pop(oldest_key)))
            _closing.add(task)  # keep a reference until it is done (the loop holds weak ones)
            task.add_done_callback(_closing.discard)
        client = factory()
        clients[key] = (client, close)
    return client


async def _close(client, close) -> None:
    await close(client)


async def aclose_all() -> None:
    """Close every client cached for the running loop (shutdown, the end of a script)."""
    clients = _cache.pop(asyncio.get_running_loop(), {})
    for client, close in clients.values():
        await close(client)


def clear() -> None:
    """Forget every cached client (tests that change settings the key doesn't cover)."""
    _cache.clear()
