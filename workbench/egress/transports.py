"""The guarded transports: check, connect to the checked IP, bound the body and the time."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from types import ModuleType
from typing import Any, ClassVar

import anyio
import httpcore
import httpcore2
import httpx
import httpx2

from workbench.egress.addresses import (
    Target,
    _addresses_of,
    _addresses_of_sync,
    _decide,
    allowlist,
    parse_url,
)
from workbench.egress.contract import (
    DEFAULT_MAX_BYTES,
    EgressError,
    Httpx2EgressError,
    HttpxEgressError,
    Resolver,
    Timeouts,
)
from workbench.egress.network import AsyncioBackend

log = logging.getLogger("workbench.egress")


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every client. Building one loads the CA bundle (~20 ms);
    a context is safe to share between connections and threads."""
    return ssl.create_default_context()


class _Guard:
    """What the four transports share: policy, the request rewrite, the response limits."""

    _mod: ClassVar[ModuleType]
    _error: ClassVar[type[EgressError]]

    def __init__(
        self,
        *,
        timeouts: Timeouts | None = None,
        max_bytes: int | None = None,
        resolver: Resolver | None = None,
        allow: Iterable[str] | None = None,
        verify: ssl.SSLContext | bool = True,
    ):
        self.timeouts = timeouts or Timeouts()
        self.max_bytes = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
        self.resolver = resolver
        self.allowed = allowlist(allow)
        self._verify = verify
        # https pools are kept per host name: one pool keyed by IP would let a connection whose
        # certificate was verified for one name carry requests for another name on that IP.
        self._pools: dict[str, Any] = {}
        self._pools_lock = threading.Lock()  # a sync client may be shared by worker threads

    def _pool(self, target: Target, factory: Callable[..., Any]) -> Any:
        key = target.host if target.scheme == "https" else ""
        with self._pools_lock:
            if key not in self._pools:
                verify = shared_ssl_context() if self._verify is True else self._verify
                self._pools[key] = factory(retries=0, verify=verify)
            return self._pools[key]

    def _fail(self, code: str, target: Target) -> EgressError:
        what = {
            "response_too_large": f"is larger than {self.max_bytes} bytes",
            "deadline_exceeded": f"took longer than {self.timeouts.total:g} s",
            "bad_response": "is compressed although none was asked for",
        }[code]
        log.warning("egress stopped: host=%s port=%s reason=%s", target.host, target.port, code)
        message = f"The response from {target.authority} {what}."
        return self._error(message, code=code, host=target.host, port=target.port)

    def _flavored(self, exc: EgressError) -> EgressError:
        if isinstance(exc, self._error):
            return exc
        return self._error(str(exc), code=exc.code, host=exc.host, port=exc.port)

    def _rewrite(self, request: Any, target: Target, ip: str, left: float) -> Any:
        """A copy of `request` aimed at `ip`; the caller's request stays as it was (SDKs log it)."""
        headers = request.headers.copy()  # the Host header keeps the name, not the IP
        headers.setdefault("Host", request.url.netloc.decode("ascii"))
        # The size bound is on what the caller ends up holding. A compressed body could inflate a
        # thousandfold past it, so ask for none and refuse one sent anyway (`_check_head`).
        headers["Accept-Encoding"] = "identity"
        extensions = dict(request.extensions)
        given = extensions.get("timeout") or {}
        extensions["timeout"] = {
            key: min(
                v for v in (getattr(self.timeouts, key), given.get(key), left) if v is not None
            )
            for key in ("connect", "read", "write", "pool")
        }
        if target.scheme == "https":  # httpcore verifies the certificate against this name
            extensions["sni_hostname"] = target.host if target.ip is None else str(target.ip)
        else:
            extensions.pop("sni_hostname", None)
        url = request.url.copy_with(host=ip)
        return self._mod.Request(
            request.method, url, headers=headers, stream=request.stream, extensions=extensions
        )

    def _check_head(self, response: Any, target: Target) -> EgressError | None:
        if response.headers.get("content-encoding", "").strip().lower() not in ("", "identity"):
            return self._fail("bad_response", target)
        length = response.headers.get("content-length", "")
        if length.isascii() and length.isdigit() and int(length) > self.max_bytes:
            return self._fail("response_too_large", target)
        return None


class _AsyncBody:
    """The response stream with the byte budget and the total deadline enforced per chunk."""

    def __init__(self, inner: Any, guard: _Guard, target: Target, deadline: float):
        self._inner, self._guard, self._target, self._deadline = inner, guard, target, deadline

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks, used = aiter(self._inner), 0
        idle = self._guard.timeouts.read
        while True:
            chunk = None
            if self._deadline - time.monotonic() > idle:
                # The socket's idle timeout fires before the deadline could: no cancel scope
                # needed (it costs more than anything else per chunk).
                chunk = await anext(chunks, None)
            else:
                with anyio.CancelScope(deadline=self._deadline) as scope:
                    chunk = await anext(chunks, None)
                if scope.cancelled_caught:
                    raise self._guard._fail("deadline_exceeded", self._target)
            if chunk is None:
                return
            used += len(chunk)
            if used > self._guard.max_bytes:
                raise self._guard._fail("response_too_large", self._target)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class _SyncBody:
    """Sync twin of _AsyncBody. A blocking read can't be interrupted, so the deadline is checked
    between chunks; each read was capped at the time left when the request was sent."""

    def __init__(self, inner: Any, guard: _Guard, target: Target, deadline: float):
        self._inner, self._guard, self._target, self._deadline = inner, guard, target, deadline

    def __iter__(self) -> Iterator[bytes]:
        used = 0
        for chunk in self._inner:
            if time.monotonic() > self._deadline:
                raise self._guard._fail("deadline_exceeded", self._target)
            used += len(chunk)
            if used > self._guard.max_bytes:
                raise self._guard._fail("response_too_large", self._target)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class _AsyncGuard(_Guard):
    _body: ClassVar[type[_AsyncBody]]
    _core: ClassVar[ModuleType]  # the httpcore the transport's pool comes from

    def _async_transport(self, **options: Any) -> Any:
        """The library's pooled transport on the asyncio network backend (workbench.egress.
        network: no anyio cancel scope and no reader toggling per read). httpx's transport takes
        no backend, so its pool's is replaced before any connection is made — a private
        attribute of httpcore's pool, pinned by workbench/tests/test_egress_network.py."""
        transport = self._mod.AsyncHTTPTransport(**options)
        transport._pool._network_backend = AsyncioBackend(self._core)
        return transport

    async def handle_async_request(self, request: Any) -> Any:
        """Parse, resolve once, decide, send to the first reachable checked address (e.g. [::1]
        refused, then 127.0.0.1). Never follows a redirect: a 3xx comes back as it is."""
        deadline = anyio.current_time() + self.timeouts.total
        try:
            target, response = parse_url(str(request.url)), None
            with anyio.CancelScope(deadline=deadline):
                ips = await _addresses_of(target, self.resolver)
                _decide(target, ips, self.allowed)
                pool = self._pool(target, self._async_transport)
                *others, last = ips
                for ip in others:
                    with contextlib.suppress(self._mod.ConnectError):
                        response = await pool.handle_async_request(
                            self._rewrite(request, target, ip, math.inf)
                        )
                        break
                else:
                    response = await pool.handle_async_request(
                        self._rewrite(request, target, last, math.inf)
                    )
            if response is None:
                raise self._fail("deadline_exceeded", target)
            if (problem := self._check_head(response, target)) is not None:
                await response.aclose()
                raise problem
        except EgressError as exc:
            raise self._flavored(exc) from None
        response.stream = self._body(response.stream, self, target, deadline)
        return response

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()


class _SyncGuard(_Guard):
    _body: ClassVar[type[_SyncBody]]

    def handle_request(self, request: Any) -> Any:
        """Sync twin of `_AsyncGuard.handle_async_request` (webhook deliveries)."""
        deadline = time.monotonic() + self.timeouts.total
        try:
            target = parse_url(str(request.url))
            ips = _addresses_of_sync(target, self.resolver)
            _decide(target, ips, self.allowed)
            pool = self._pool(target, self._mod.HTTPTransport)
            *others, last = ips
            for ip in others:
                with contextlib.suppress(self._mod.ConnectError):
                    response = pool.handle_request(
                        self._rewrite(request, target, ip, _left(deadline))
                    )
                    break
            else:
                response = pool.handle_request(
                    self._rewrite(request, target, last, _left(deadline))
                )
            if (problem := self._check_head(response, target)) is not None:
                response.close()
                raise problem
        except EgressError as exc:
            raise self._flavored(exc) from None
        response.stream = self._body(response.stream, self, target, deadline)
        return response

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.001)


# httpx checks the stream's type, so each flavour needs its own subclass.
_HttpxAsyncBody = type("_HttpxAsyncBody", (_AsyncBody, httpx.AsyncByteStream), {})
_Httpx2AsyncBody = type("_Httpx2AsyncBody", (_AsyncBody, httpx2.AsyncByteStream), {})
_HttpxSyncBody = type("_HttpxSyncBody", (_SyncBody, httpx.SyncByteStream), {})
_Httpx2SyncBody = type("_Httpx2SyncBody", (_SyncBody, httpx2.SyncByteStream), {})


class HttpxAsyncTransport(_AsyncGuard, httpx.AsyncBaseTransport):
    """The guard as an `httpx` async transport (groq, ollama). Same keywords as `async_client`."""

    _mod, _error, _body, _core = httpx, HttpxEgressError, _HttpxAsyncBody, httpcore


class Httpx2AsyncTransport(_AsyncGuard, httpx2.AsyncBaseTransport):
    """The guard as an `httpx2` async transport (openai, anthropic)."""

    _mod, _error, _body, _core = httpx2, Httpx2EgressError, _Httpx2AsyncBody, httpcore2


class HttpxSyncTransport(_SyncGuard, httpx.BaseTransport):
    _mod, _error, _body = httpx, HttpxEgressError, _HttpxSyncBody


class Httpx2SyncTransport(_SyncGuard, httpx2.BaseTransport):
    _mod, _error, _body = httpx2, Httpx2EgressError, _Httpx2SyncBody


# --- Clients -----------------------------------------------------------------------------------------
