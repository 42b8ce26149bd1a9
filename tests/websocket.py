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
async def connect(path: str, *, user=None, origin: str = "http://localhost", timeout: float = 3):
    """`async with connect("/ws/ping/", user=alice) as (ws, connected): ...`

    `connected` is False when the server refused the handshake. The communicator is always
    disconnected on exit."""
    from workbench.asgi import application

    headers = [(b"origin", origin.encode())]
    if user is not None:
        headers.append((b"cookie", (await session_cookie_for(user)).encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=timeout)
    try:
        yield communicator, connected
    finally:
        await communicator.disconnect()
