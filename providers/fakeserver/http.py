"""A small HTTP/1.1 server side over asyncio streams: just what the provider SDKs use.

Requests: request line, headers, a Content-Length or chunked body, keep-alive. Responses: a whole
body with Content-Length, or a stream with `Transfer-Encoding: chunked` (one HTTP chunk per SSE
event / NDJSON line, so the client sees each token as soon as it is written).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

MAX_HEADERS = 100
MAX_BODY = 32 * 1024 * 1024


class BadRequest(Exception):
    """The bytes on the wire are not an HTTP/1.1 request we can answer."""


class ClientGone(Exception):
    """The client closed its side while we were still answering."""


@dataclass
class Request:
    method: str
    path: str
    query: str
    version: str
    headers: dict[str, str]
    body: bytes
    received_at: float  # loop.time() once the whole request was read

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is empty or not JSON."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """Read one request; None when the client closed the connection between requests."""
    try:
        line = await reader.readline()
        while line in (b"\r\n", b"\n"):  # RFC 9112 §2.2: ignore blank lines before a request
            line = await reader.readline()
        if not line:
            return None
        parts = line.decode("latin-1").rstrip("\r\n").split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise BadRequest(f"bad request line {line[:100]!r}")
        method, target, version = parts
        headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise BadRequest("connection closed inside the headers")
            if len(headers) >= MAX_HEADERS or b":" not in line:
                raise BadRequest("too many or malformed headers")
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        body = await _read_body(reader, headers)
    except (ValueError, asyncio.LimitOverrunError) as exc:  # a line longer than the reader limit
        raise BadRequest(str(exc)) from exc
    except asyncio.IncompleteReadError as exc:
        raise BadRequest("connection closed inside the body") from exc
    path, _, query = target.partition("?")
    loop = asyncio.get_running_loop()
    return Request(method.upper(), path, query, version, headers, body, loop.time())


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks = []
        size_total = 0
        while True:
            size = int((await reader.readline()).split(b";")[0].strip(), 16)  # ValueError if bad
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            size_total += size
            if size_total > MAX_BODY:
                raise BadRequest("body too large")
            chunks.append(await reader.readexactly(size))
            await reader.readline()
    length = int(headers.get("content-length", "0") or "0")
    if length < 0 or length > MAX_BODY:
        raise BadRequest("bad Content-Length")
    return await reader.readexactly(length) if length else b""


def _head(status: int, headers: dict[str, str]) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Connection:
    """The server side of one client connection: write responses, notice the client leaving."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.keep_alive = True

    def client_gone(self) -> bool:
        # The transport keeps reading while we write, so a client that closed shows up as EOF here
        # (or as a closing transport after a failed write) without a read of our own.
        return self.reader.at_eof() or self.writer.is_closing()

    async def send(
        self,
        status: int,
        body: bytes = b"",
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        """A whole response with Content-Length."""
        all_headers = {"content-type": content_type, "content-length": str(len(body))}
        all_headers.update(headers or {})
        if not self.keep_alive:
            all_headers["connection"] = "close"
        self.writer.write(_head(status, all_headers) + body)
        await self.writer.drain()

    async def send_json(
        self, status: int, data: Any, headers: dict[str, str] | None = None
    ) -> None:
        await self.send(status, json.dumps(data).encode(), headers=headers)

    async def start_stream(
        self, status: int, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        all_headers = {
            "content-type": content_type,
            "transfer-encoding": "chunked",
            "cache-control": "no-cache",
        }
        all_headers.update(headers or {})
        if not self.keep_alive:
            all_headers["connection"] = "close"
        self.writer.write(_head(status, all_headers))
        await self.writer.drain()

    async def write_chunk(self, data: bytes) -> None:
        """One HTTP chunk; raises ClientGone when the client has left."""
        if self.client_gone():
            raise ClientGone
        try:
            self.writer.write(b"%x\r\n%b\r\n" % (len(data), data))
            await self.writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise ClientGone from exc

    async def end_stream(self) -> None:
        """The terminating zero-length chunk: the response is complete."""
        if self.client_gone():
            raise ClientGone
        try:
            self.writer.write(b"0\r\n\r\n")
            await self.writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise ClientGone from exc

    async def wait_until_gone(self) -> None:
        """Hang (reading and discarding) until the client closes the connection."""
        try:
            while await self.reader.read(65536):
                pass
        except ConnectionError:
            pass

    async def close(self) -> None:
        """Close after flushing what was written: the client sees the body end early."""
        self.keep_alive = False
        if not self.writer.is_closing():
            self.writer.close()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.writer.wait_closed()
