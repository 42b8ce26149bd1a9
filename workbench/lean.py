"""The lean HTTP path for machine clients (docs/performance.md, issue 11).

Django's middleware chain costs every request thread hops under ASGI: a chain with any sync-only
middleware runs in a worker thread (and an async view inside it behind `async_to_sync`), and
Django's own MiddlewareMixin hops to a thread for each `process_request`/`process_response` even
in async mode. Browser pages need that chain (sessions, CSRF, messages, the team switcher, time
zones, CSP). Scripts calling the gateway or `/api/completions` with an API token need none of it:
their authentication is the token, they carry no cookies, and their answers are JSON or SSE.

So requests to the gateway (`/v1/…`, `/anthropic/v1/…`) and token-authenticated requests to
`/api/completions` go to a second Django handler with no middleware: same URLconf, same views,
same exception handling (404/500 pages) — fully async, so an async view runs on the event loop
with no thread hop and a sync view (DRF) in exactly one. It still validates the Host header
(ALLOWED_HOSTS) and sends `X-Content-Type-Options: nosniff`, the two things of the skipped
chain such answers rely on. Everything else goes to the full handler, unchanged."""

from __future__ import annotations

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response

LEAN_PREFIXES = ("/v1/", "/anthropic/v1/")
TOKEN_PATHS = ("/api/completions",)


def is_lean(scope: dict) -> bool:
    """Does this request take the lean path?"""
    if scope["type"] != "http":
        return False
    path = scope.get("path", "")
    if path.startswith(LEAN_PREFIXES):
        return True
    if path in TOKEN_PATHS:
        for name, value in scope.get("headers", ()):
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                return True
    return False


class LeanHandler(ASGIHandler):
    """Django's ASGI handler with an empty middleware chain."""

    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        inner = self._get_response_async if is_async else self._get_response

        if is_async:

            async def respond(request):
                request.get_host()  # DisallowedHost → 400, as CommonMiddleware would
                response = await inner(request)
                response.headers.setdefault("X-Content-Type-Options", "nosniff")
                return response
        else:

            def respond(request):
                request.get_host()
                response = inner(request)
                response.headers.setdefault("X-Content-Type-Options", "nosniff")
                return response

        self._middleware_chain = convert_exception_to_response(respond)


class HttpDispatch:
    """Lean requests to the lean handler, the rest to Django's full one."""

    def __init__(self, full, lean):
        self.full, self.lean = full, lean

    async def __call__(self, scope, receive, send):
        handler = self.lean if is_lean(scope) else self.full
        return await handler(scope, receive, send)
