"""The asyncio network backend under the egress guard's async transports (workbench.egress.network)
against a real local TCP server. The guard's own behaviour over it (allowlists, TLS, limits,
timeouts, the SDKs) is tests/test_egress.py; here: what the backend itself promises."""

from __future__ import annotations

import asyncio

import httpcore
import httpcore2
import httpx
import httpx2
import pytest

from workbench import egress
from workbench.egress import network


class Server:
    """A TCP server whose replies the test writes by hand."""

    def __init__(self):
        self.writers: list[asyncio.StreamWriter] = []
        self.connected = asyncio.Event()

    async def __aenter__(self):
        async def accept(reader, writer):
            self.writers.append(writer)
            self.connected.set()

        self.server = await asyncio.start_server(accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        for writer in self.writers:
            writer.close()
        self.server.close()
        await self.server.wait_closed()

    async def stream(self):
        stream = await network.AsyncioBackend(httpcore2).connect_tcp("127.0.0.1", self.port, 2)
        await self.connected.wait()
        return stream, self.writers[-1]


async def test_bytes_that_arrived_before_a_read_are_returned_without_waiting_and_split_at_max():
    async with Server() as server:
        stream, writer = await server.stream()
        writer.write(b"hello world")
        await writer.drain()
        await asyncio.sleep(0.05)  # the loop takes the bytes in before anyone reads
        assert await stream.read(5, timeout=0) == b"hello"
        assert await stream.read(100, timeout=0) == b" world"
        await stream.aclose()


async def test_a_read_waits_for_data_and_times_out_with_the_librarys_read_timeout():
    async with Server() as server:
        stream, writer = await server.stream()
        asyncio.get_running_loop().call_later(0.05, writer.write, b"late")
        assert await stream.read(100, timeout=2) == b"late"
        with pytest.raises(httpcore2.ReadTimeout):
            await stream.read(100, timeout=0.05)
        await stream.aclose()


async def test_a_cancelled_read_is_a_cancellation_not_a_timeout():
    async with Server() as server:
        stream, _ = await server.stream()
        reading = asyncio.create_task(stream.read(100, timeout=5))
        await asyncio.sleep(0.05)
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
        await stream.aclose()


async def test_the_servers_close_is_an_empty_read_and_makes_an_idle_connection_readable():
    async with Server() as server:
        stream, writer = await server.stream()
        assert stream.get_extra_info("is_readable") is False  # idle and open: reusable
        writer.write(b"last")
        writer.close()
        await asyncio.sleep(0.05)
        assert stream.get_extra_info("is_readable") is True  # not reusable any more
        assert await stream.read(100) == b"last"
        assert await stream.read(100) == b""
        assert stream.get_extra_info("server_addr")[1] == server.port


async def test_reading_pauses_above_the_high_water_mark_and_every_byte_arrives(monkeypatch):
    monkeypatch.setattr(network, "HIGH_WATER", 64 * 1024)
    monkeypatch.setattr(network, "LOW_WATER", 16 * 1024)
    sent = bytes(range(256)) * 4096  # 1 MiB
    async with Server() as server:
        stream, writer = await server.stream()
        writer.write(sent)
        writing = asyncio.create_task(writer.drain())
        await asyncio.sleep(0.2)
        protocol = stream._protocol
        assert protocol.paused_reading and protocol.buffered < len(sent)
        received = b""
        while len(received) < len(sent):
            received += await stream.read(65536, timeout=2)
        await writing
        assert received == sent and not protocol.paused_reading
        await stream.aclose()


async def test_a_refused_connection_is_the_librarys_connect_error():
    async with Server() as server:
        port = server.port
    with pytest.raises(httpcore.ConnectError):
        await network.AsyncioBackend(httpcore).connect_tcp("127.0.0.1", port, 2)


@pytest.mark.parametrize("flavor", ["httpx", "httpx2"])
async def test_the_guards_async_pools_run_on_the_asyncio_backend(flavor):
    # The transports replace their pool's (private) backend attribute: this pins that it exists
    # and is what the connections use.
    module = {"httpx": httpx, "httpx2": httpx2}[flavor]
    core = {"httpx": httpcore, "httpx2": httpcore2}[flavor]

    async def answer(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with egress.async_client(flavor=flavor, allow=[f"127.0.0.1:{port}"]) as client:
            answered = await client.get(f"http://127.0.0.1:{port}/")
            assert answered.text == "ok"
            pools = list(client._transport._pools.values())
            backend = pools[0]._pool._network_backend
            assert isinstance(backend, network.AsyncioBackend) and backend._errors is core
            assert isinstance(answered, module.Response)
    finally:
        server.close()
        await server.wait_closed()
