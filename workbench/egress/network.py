"""An asyncio network backend for httpcore2/httpcore under the egress guard's async transports.

httpcore's default backend on asyncio is anyio's: every read enters a cancel scope (a timer
armed and cancelled) and toggles the transport's reading on and off (`resume_reading` before
the wait, `pause_reading` after it: two epoll_ctl calls). A streamed reply reads once per
provider chunk, so that is paid per token; under Daphne it was the largest part of the
gateway's CPU per paced chunk after Daphne's own write path (bench/daphne_floor.py `proxy` vs
`raw`, docs/performance.md). Here the transport keeps reading into a buffer (paused only
above HIGH_WATER, so memory stays bounded), a read that finds data returns it without
waiting, and a read that waits arms its timeout only then.

The guard decides where to connect before this backend is reached (`host` is the checked IP
literal: no DNS lookup here). Errors are the calling library's own (ConnectError, ReadError,
ReadTimeout, …), as its anyio backend raises them."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import deque
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from httpcore2._utils import is_socket_readable

HIGH_WATER = 1 << 20  # bytes buffered before the transport stops reading
LOW_WATER = 1 << 18


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer: deque[bytes] = deque()
        self.buffered = 0
        self.waiter: asyncio.Future | None = None
        self.eof = False
        self.lost = False
        self.error: BaseException | None = None
        self.paused_reading = False
        self.drained: asyncio.Future | None = None  # set while writing is paused
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buffer.append(bytes(data))
        self.buffered += len(data)
        if self.buffered > HIGH_WATER and not self.paused_reading:
            self.paused_reading = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # close the transport; nothing more is written after the server's EOF

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost, self.error = True, exc
        self._wake()
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    def pause_writing(self) -> None:
        self.drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)
        self.drained = None


async def _within(future: asyncio.Future, timeout: float | None, loop) -> bool:
    """Wait for `future`; False if `timeout` passed first (the future is then cancelled)."""
    if timeout is None:
        await future
        return True
    expired = False

    def expire() -> None:
        nonlocal expired
        if not future.done():
            expired = True
            future.cancel()

    handle = loop.call_later(timeout, expire)
    try:
        await future
    except asyncio.CancelledError:
        if not expired:
            raise  # the task itself was cancelled
        return False
    finally:
        handle.cancel()
    return True


class AsyncioStream:
    def __init__(self, transport: asyncio.Transport, protocol: _Protocol, errors: ModuleType):
        self._transport, self._protocol, self._errors = transport, protocol, errors

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.buffer:
            if protocol.lost or protocol.eof:
                return self._ended()
            loop = asyncio.get_running_loop()
            protocol.waiter = loop.create_future()
            try:
                if not await _within(protocol.waiter, timeout, loop):
                    raise self._errors.ReadTimeout("Timed out reading from the provider.")
            finally:
                protocol.waiter = None
            if not protocol.buffer:
                return self._ended()
        chunk = protocol.buffer.popleft()
        if len(chunk) > max_bytes:
            chunk, rest = chunk[:max_bytes], chunk[max_bytes:]
            protocol.buffer.appendleft(rest)
        protocol.buffered -= len(chunk)
        if protocol.paused_reading and protocol.buffered < LOW_WATER and not protocol.lost:
            protocol.paused_reading = False
            self._transport.resume_reading()
        return chunk

    def _ended(self) -> bytes:
        error = self._protocol.error
        if error is not None:
            raise self._errors.ReadError(str(error) or type(error).__name__)
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        if protocol.lost or self._transport.is_closing():
            raise self._errors.WriteError("The connection is closed.")
        self._transport.write(buffer)
        drained = protocol.drained
        if drained is not None and not drained.done():
            if not await _within(asyncio.shield(drained), timeout, asyncio.get_running_loop()):
                raise self._errors.WriteTimeout("Timed out writing to the provider.")
            if protocol.lost:
                raise self._errors.WriteError("The connection is closed.")

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> AsyncioStream:
        loop = asyncio.get_running_loop()
        try:
            transport = await loop.start_tls(
                self._transport,
                self._protocol,
                ssl_context,
                server_hostname=server_hostname,
                ssl_handshake_timeout=timeout,
            )
        except TimeoutError as exc:
            self._transport.close()
            raise self._errors.ConnectTimeout(str(exc)) from exc
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            self._transport.close()
            raise self._errors.ConnectError(str(exc)) from exc
        if transport is None:  # pragma: no cover - the connection closed during the handshake
            raise self._errors.ConnectError("The connection closed during the TLS handshake.")
        return AsyncioStream(transport, self._protocol, self._errors)

    def get_extra_info(self, info: str) -> Any:
        transport = self._transport
        if info == "ssl_object":
            return transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "server_addr":
            return transport.get_extra_info("peername")
        if info == "socket":
            return transport.get_extra_info("socket")
        if info == "is_readable":
            # The transport reads as data comes: what the loop has taken in shows as buffered
            # bytes or EOF, what it has not yet as a readable socket.
            protocol = self._protocol
            if protocol.buffer or protocol.eof or protocol.lost:
                return True
            return is_socket_readable(transport.get_extra_info("socket"))
        return None


class AsyncioBackend:
    """`network_backend` for an httpcore2 (or httpcore) async connection pool; `errors` is that
    library's module, whose exception classes are raised."""

    def __init__(self, errors: ModuleType):
        self._errors = errors

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[tuple] | None = None,
    ) -> AsyncioStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    _Protocol,
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                )
        except TimeoutError as exc:
            raise self._errors.ConnectTimeout(str(exc) or "Timed out connecting.") from exc
        except OSError as exc:
            raise self._errors.ConnectError(str(exc)) from exc
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return AsyncioStream(transport, protocol, self._errors)

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise self._errors.ConnectError("Unix sockets are not a provider address.")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
