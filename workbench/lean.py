"""The lean HTTP path for machine clients (docs/performance.md, issue 11).

Django's middleware chain costs every request thread hops under ASGI: a chain with any sync-only
middleware runs in a worker thread (and an async view inside it behind `async_to_sync`), and
Django's own MiddlewareMixin hops to a thread for each `process_request`/`process_response` even
in async mode. Browser pages need that chain (sessions, CSRF, messages, the team switcher, time
zones, CSP). Scripts calling the gateway or `/api/completions` with an API token need none of it:
their authentication is the token, they carry no cookies, and their answers are JSON or SSE.
(What the chain would do for them is nothing: no session means no team (`request.team` is read
with getattr) and no profile time zone — a token request gets the server's zone either way.)

So requests to the gateway (`/v1/…`, `/anthropic/v1/…`) and REST requests with a Bearer token
(`/api/…` but the Swagger page and its schema) go to a second Django handler with no middleware: same URLconf, same views,
same exception handling (404/500 pages) — fully async, so an async view runs on the event loop
with no thread hop and a sync view (DRF) in exactly one. It still validates the Host header
(ALLOWED_HOSTS) and sends `X-Content-Type-Options: nosniff`, the two things of the skipped
chain such answers rely on. Everything else goes to the full handler, unchanged."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.http import Http404, JsonResponse

logger = logging.getLogger("django.request")

LEAN_PREFIXES = ("/v1/", "/anthropic/v1/")
# With a Bearer token: the REST API, except its browser pages (Swagger UI and the schema it reads).
TOKEN_PREFIX = "/api/"
BROWSER_API_PATHS = ("/api/docs/", "/api/schema/")


def is_lean(scope: dict) -> bool:
    """Does this request take the lean path?"""
    if scope["type"] != "http":
        return False
    path = scope.get("path", "")
    if path.startswith(LEAN_PREFIXES):
        return True
    if path.startswith(TOKEN_PREFIX) and not path.startswith(BROWSER_API_PATHS):
        for name, value in scope.get("headers", ()):
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                return True
    return False


IDLE_THREADS = 32  # request threads kept for reuse; more concurrent requests get new ones


class LeanHandler(ASGIHandler):
    """Django's ASGI handler with an empty middleware chain — and request threads reused.

    Django gives each request a fresh single-thread executor for its thread-sensitive work
    (`ThreadSensitiveContext()`): a thread started per request (7.6 % of a token `GET
    /api/me/`'s server CPU in py-spy) whose database connection is new too. Here a request
    borrows an idle single-thread executor and returns it: each request in flight still has its
    own thread (concurrency is unchanged), but threads are started only when more requests run
    at once than ever before."""

    def __init__(self):
        super().__init__()
        self._idle: list[ThreadPoolExecutor] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self._idle.pop() if self._idle else ThreadPoolExecutor(max_workers=1)
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            if len(self._idle) < IDLE_THREADS:
                self._idle.append(executor)
            else:
                executor.shutdown(wait=False)

    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        inner = self._get_response_async if is_async else self._get_response

        if is_async:

            async def respond(request):
                started = time.perf_counter()
                try:
                    request.get_host()  # DisallowedHost → 400, as CommonMiddleware would
                    response = await inner(request)
                except Exception as exc:
                    response = error_response(request, exc)
                response.headers.setdefault("X-Content-Type-Options", "nosniff")
                # The server's time until the answer (or a stream's first bytes) was ready:
                # what bench/http_gateway.py reports as server time.
                elapsed = (time.perf_counter() - started) * 1000
                response.headers["Server-Timing"] = f"app;dur={elapsed:.2f}"
                return response
        else:

            def respond(request):
                try:
                    request.get_host()
                    response = inner(request)
                except Exception as exc:
                    response = error_response(request, exc)
                response.headers.setdefault("X-Content-Type-Options", "nosniff")
                return response

        self._middleware_chain = convert_exception_to_response(respond)


def error_response(request, exc: Exception) -> JsonResponse:
    """Machine clients get JSON errors (`{"error": {"code", "message", "type"}}`: our API's
    shape and OpenAI's), never the browser's HTML pages — which need the skipped middleware."""
    if isinstance(exc, Http404):
        status, code, message = 404, "not_found", "No such endpoint."
    elif isinstance(exc, PermissionDenied):
        status, code, message = 403, "permission_denied", "You may not do this."
    elif isinstance(exc, SuspiciousOperation):
        status, code, message = 400, "bad_request", "Bad request."
    else:
        logger.exception("Unhandled error on %s", request.path, exc_info=exc)
        status, code, message = 500, "server_error", "Something went wrong on our side."
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JsonResponse({"error": {"code": code, "message": message, "type": kind}}, status=status)


class HttpDispatch:
    """Lean requests to the lean handler, the rest to Django's full one."""

    def __init__(self, full, lean):
        self.full, self.lean = full, lean

    async def __call__(self, scope, receive, send):
        handler = self.lean if is_lean(scope) else self.full
        return await handler(scope, receive, send)
