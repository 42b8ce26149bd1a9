"""Websocket test helper: connect to the real ASGI application (auth middleware, origin check,
routing — everything a browser goes through) as a given user."""

from __future__ import annotations

from contextlib import asynccontextmanager

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client


@sync_to_async
def session_cookie_for(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


@asynccontextmanager
async def connect(
    path: str,
    *,
    user=None,
    origin: str | None = "http://localhost",
    host: str = "localhost",
    scheme: str = "ws",
    timeout: float = 3,
):
    """`async with connect("/ws/ping/", user=alice) as (ws, connected): ...`

    As a browser on `http://localhost` would connect: Host `localhost`, Origin its page's origin
    (None: no Origin header). `connected` is False when the server refused the handshake. The
    communicator is always disconnected on exit."""
    from workbench.asgi import application

    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if user is not None:
        headers.append((b"cookie", (await session_cookie_for(user)).encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    communicator.scope["scheme"] = scheme
    connected, _ = await communicator.connect(timeout=timeout)
    try:
        yield communicator, connected
    finally:
        await communicator.disconnect()
