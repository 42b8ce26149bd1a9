"""The websocket handshake's Origin check: the same rule Django's CSRF check applies to HTTP.

A browser sends our cookies with a websocket handshake from any page, so without this a page on
`http://127.0.0.1:9115` could open `ws://127.0.0.1:8000/ws/chat/…` as the signed-in victim.
Channels' AllowedHostsOriginValidator compares only the host name (not scheme, not port); we
compare the full origin — scheme, host and port — with the site's own origin as the handshake
names it (the Host header, validated against ALLOWED_HOSTS, and ws/wss or the trusted proxy's
X-Forwarded-Proto), or with an entry of CSRF_TRUSTED_ORIGINS (wildcard subdomains as CSRF
allows them). A handshake without an Origin is refused: browsers always send one.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from django.utils.http import is_same_domain


class _Handshake(HttpRequest):
    """Enough of a request for Django's own get_host() (ALLOWED_HOSTS, USE_X_FORWARDED_HOST)
    and is_secure() (SECURE_PROXY_SSL_HEADER) to answer for a websocket scope."""

    def __init__(self, scope):
        super().__init__()
        self._scope_scheme = scope.get("scheme", "ws")
        server = scope.get("server") or (None, None)
        self.META = {"SERVER_NAME": server[0] or "", "SERVER_PORT": str(server[1] or "")}
        for name, value in scope.get("headers", []):
            key = name.decode("latin-1").upper().replace("-", "_")
            self.META[f"HTTP_{key}"] = value.decode("latin-1")

    def _get_scheme(self):
        return "https" if self._scope_scheme in ("wss", "https") else "http"


def origin_allowed(scope) -> bool:
    """Would CSRF accept this handshake's Origin for an unsafe request? (The test suite checks
    the answer against django.middleware.csrf on the same inputs.)"""
    request = _Handshake(scope)
    origin = request.META.get("HTTP_ORIGIN")
    if not origin:
        return False
    try:
        good_origin = f"{request.scheme}://{request.get_host()}"
    except DisallowedHost:
        good_origin = None
    if origin == good_origin:
        return True
    trusted = settings.CSRF_TRUSTED_ORIGINS
    if origin in {entry for entry in trusted if "*" not in entry}:
        return True
    try:
        parsed = urlsplit(origin)
    except ValueError:
        return False
    return any(
        is_same_domain(parsed.netloc, urlsplit(entry).netloc.lstrip("*"))
        for entry in trusted
        if "*" in entry and urlsplit(entry).scheme == parsed.scheme
    )


class SameOriginOnly:
    """ASGI middleware for every websocket route: refuse the handshake (HTTP 403) unless
    `origin_allowed`."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.application(scope, receive, send)
