"""The websocket handshake's Origin check (workbench/origins.py): the full origin — scheme, host,
port — of the site or of CSRF_TRUSTED_ORIGINS, exactly as Django's CSRF check decides, on every
websocket route; through the ASGI application and through a real Daphne."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware

from tests import servers
from tests.websocket import connect, session_cookie_for
from workbench.origins import origin_allowed
from workbench.routing import websocket_urlpatterns

# Async tests reach the database from another thread: their rows must be committed.
sockets = pytest.mark.django_db(transaction=True)


def _route_paths() -> list[str]:
    """A concrete path for every websocket route (ids don't matter: the origin check comes
    before routing)."""
    paths = []
    for pattern in websocket_urlpatterns:
        route = str(pattern.pattern)
        paths.append("/" + route.replace("<int:conversation_id>", "1"))
    assert len(paths) == len(websocket_urlpatterns)
    return paths


@sockets
@pytest.mark.parametrize("path", _route_paths())
async def test_a_page_on_another_port_of_the_same_host_is_refused_on_every_route(path, alice):
    """The reported attack: a page on http://127.0.0.1:9115 opened ws://127.0.0.1:8000/ws/… with
    the victim's cookies. Same host name, other port: another origin."""
    async with connect(path, user=alice, host="127.0.0.1:8000", origin="http://127.0.0.1:9115") as (
        _,
        connected,
    ):
        assert connected is False


@sockets
async def test_any_other_origin_is_refused(alice):
    for origin in [
        "https://127.0.0.1:8000",  # other scheme
        "http://127.0.0.1",  # default port: another origin than :8000
        "http://localhost:8000",  # another host name, although it is in ALLOWED_HOSTS
        "http://127.0.0.1:8000.evil.example",
        "null",
        None,  # no Origin header at all
    ]:
        async with connect("/ws/ping/", user=alice, host="127.0.0.1:8000", origin=origin) as (
            _,
            connected,
        ):
            assert connected is False, origin


@sockets
async def test_the_same_origin_is_accepted(alice):
    async with connect(
        "/ws/ping/", user=alice, host="127.0.0.1:8000", origin="http://127.0.0.1:8000"
    ) as (ws, connected):
        assert connected
        await ws.send_json_to({"type": "ping"})
        assert (await ws.receive_json_from())["type"] == "pong"


@sockets
async def test_a_secure_socket_needs_an_https_origin(alice):
    async with connect(
        "/ws/ping/", user=alice, host="wb.localhost", origin="https://wb.localhost", scheme="wss"
    ) as (_, connected):
        assert connected is False  # wb.localhost is not in ALLOWED_HOSTS

    async with connect(
        "/ws/ping/", user=alice, host="localhost", origin="https://localhost", scheme="wss"
    ) as (_, connected):
        assert connected
    async with connect(
        "/ws/ping/", user=alice, host="localhost", origin="http://localhost", scheme="wss"
    ) as (_, connected):
        assert connected is False


@sockets
async def test_a_trusted_origin_is_accepted(alice, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://workbench.example.com", "https://*.corp.example"]

    for origin, accepted in [
        ("https://workbench.example.com", True),
        ("https://team.corp.example", True),
        ("http://workbench.example.com", False),
        ("https://workbench.example.com:8443", False),
    ]:
        async with connect("/ws/ping/", user=alice, host="127.0.0.1:8000", origin=origin) as (
            _,
            connected,
        ):
            assert connected is accepted, origin


@sockets
async def test_a_host_outside_allowed_hosts_is_refused_even_when_the_origin_matches(alice):
    async with connect(
        "/ws/ping/", user=alice, host="evil.example", origin="http://evil.example"
    ) as (_, connected):
        assert connected is False


@sockets
async def test_behind_a_trusted_proxy_the_forwarded_scheme_counts(alice, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    async with connect("/ws/ping/", user=alice, origin="https://localhost", host="localhost") as (
        _,
        connected,
    ):
        assert connected is False  # the proxy didn't say https
    from channels.testing import WebsocketCommunicator

    from workbench.asgi import application

    cookie = (await session_cookie_for(alice)).encode()
    communicator = WebsocketCommunicator(
        application,
        "/ws/ping/",
        headers=[
            (b"host", b"localhost"),
            (b"origin", b"https://localhost"),
            (b"x-forwarded-proto", b"https"),
            (b"cookie", cookie),
        ],
    )
    connected, _ = await communicator.connect()
    await communicator.disconnect()
    assert connected


# --- The same answers as Django's CSRF origin check --------------------------------------------

CASES = [
    # (scheme, host, origin)
    ("ws", "127.0.0.1:8000", "http://127.0.0.1:8000"),
    ("ws", "127.0.0.1:8000", "http://127.0.0.1:9115"),
    ("ws", "127.0.0.1:8000", "https://127.0.0.1:8000"),
    ("wss", "localhost", "https://localhost"),
    ("wss", "localhost", "http://localhost"),
    ("ws", "localhost", "http://LOCALHOST"),
    ("ws", "evil.example", "http://evil.example"),
    ("ws", "localhost", "https://workbench.example.com"),
    ("ws", "localhost", "https://a.corp.example"),
    ("ws", "localhost", "https://corp.example"),
    ("ws", "localhost", "http://a.corp.example"),
    ("ws", "localhost", "https://a.corp.example:444"),
    ("ws", "localhost", "http://[::1"),
    ("ws", "[::1]:8000", "http://[::1]:8000"),
]


@pytest.mark.parametrize(("scheme", "host", "origin"), CASES)
def test_the_handshake_check_answers_as_csrf_does(scheme, host, origin, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://workbench.example.com", "https://*.corp.example"]
    scope = {
        "type": "websocket",
        "scheme": scheme,
        "headers": [(b"host", host.encode()), (b"origin", origin.encode())],
    }
    request = HttpRequest()
    request.META = {"HTTP_HOST": host, "HTTP_ORIGIN": origin}
    request.is_secure = lambda: scheme == "wss"

    csrf = CsrfViewMiddleware(lambda r: None)._origin_verified(request)

    assert origin_allowed(scope) is csrf, (scheme, host, origin)


# --- A real Daphne and a real websocket client ---------------------------------------------------


@pytest.fixture
def daphne(tmp_path, settings):
    process, port = servers.start_daphne(
        servers.daphne_env(CSRF_TRUSTED_ORIGINS="http://trusted.localhost:7000"),
        tmp_path / "daphne.log",
    )
    yield port
    servers.stop(process)


async def _ping(port: int, origin: str, cookie: str) -> str:
    import websockets

    try:
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/ws/ping/",
            origin=origin,
            additional_headers={"Cookie": cookie},
            open_timeout=5,
        ) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            return json.loads(await asyncio.wait_for(ws.recv(), 5))["type"]
    except websockets.InvalidStatus as exc:
        return f"refused {exc.response.status_code}"


@sockets
async def test_daphne_refuses_another_ports_origin_and_accepts_its_own_and_trusted_ones(
    daphne, alice
):
    cookie = await session_cookie_for(alice)

    assert await _ping(daphne, "http://127.0.0.1:9115", cookie) == "refused 403"
    assert await _ping(daphne, f"http://127.0.0.1:{daphne}", cookie) == "pong"
    assert await _ping(daphne, "http://trusted.localhost:7000", cookie) == "pong"
    assert await _ping(daphne, f"https://127.0.0.1:{daphne}", cookie) == "refused 403"


def test_every_websocket_route_sits_behind_the_origin_check():
    from workbench.asgi import application
    from workbench.origins import SameOriginOnly

    assert isinstance(application.application_mapping["websocket"], SameOriginOnly)
