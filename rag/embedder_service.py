"""The query-time embedder service: one small process per machine that holds the built-in
models (each loaded on its first request) and embeds search queries for the web processes over
a Unix socket.

Why: the web process stays light (no onnxruntime, no 23 MB model, no ~100 MB of arenas per
Daphne process, no 32 MB WordLlama table) and a query costs one local round trip (~5–20 ms)
instead of a model load.
`manage.py serve` starts it; a web process that finds it missing starts one itself (under a
file lock, so only one) — which is how a bare `daphne` or the test suite get one. A service
started that way exits after being idle for a while; `manage.py embedder --stop` stops it.

Wire format (both ways length-prefixed, big-endian u32):
  request:  JSON {"texts": [str, ...], "model": a built-in model id (optional: the default)}
  response: 1 status byte (0 ok, 1 error), u32 length, then float32 little-endian vectors
            (n × the model's dimensions) or a UTF-8 error message.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from django.conf import settings

from rag.embedders import DEFAULT_MODEL, EmbedderUnavailable, builtin_model

logger = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1_000_000
MAX_TEXTS = 64
IDLE_EXIT_SECONDS = 600
START_TIMEOUT = 60.0


class EmbedderServiceError(RuntimeError):
    pass


def socket_path() -> Path:
    explicit = os.environ.get("WORKBENCH_EMBEDDER_SOCKET")
    if explicit:
        return Path(explicit)
    path = Path(settings.DATA_DIR) / "embedder.sock"
    if len(str(path)) > 100:  # AF_UNIX paths are limited to ~107 bytes
        digest = hashlib.sha256(str(settings.DATA_DIR).encode()).hexdigest()[:12]
        path = Path(tempfile.gettempdir()) / f"workbench-embedder-{digest}.sock"
    return path


def _pid_path() -> Path:
    return socket_path().with_suffix(".pid")


# --- Server ------------------------------------------------------------------------------------


def _recv_exact(sock, n: int) -> bytes:
    parts, left = [], n
    while left:
        part = sock.recv(min(left, 65536))
        if not part:
            raise EmbedderServiceError("connection closed")
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        self.server.last_used = time.monotonic()
        try:
            (length,) = struct.unpack(">I", _recv_exact(self.request, 4))
            if length > MAX_REQUEST_BYTES:
                raise ValueError("request too large")
            body = json.loads(_recv_exact(self.request, length))
            if not isinstance(body, dict):
                raise ValueError("send a JSON object")
            texts = body.get("texts")
            if (
                not isinstance(texts, list)
                or not 0 < len(texts) <= MAX_TEXTS
                or not all(isinstance(t, str) for t in texts)
            ):
                raise ValueError(f"send 1–{MAX_TEXTS} texts")
            model_id = body.get("model") or DEFAULT_MODEL
            if not isinstance(model_id, str):
                raise ValueError("model: a built-in model id")
            vectors = self.server.model(model_id).embed(texts)
            payload = vectors.astype("<f4").tobytes()
            self.request.sendall(b"\x00" + struct.pack(">I", len(payload)) + payload)
        except (ValueError, EmbedderServiceError, EmbedderUnavailable) as exc:
            message = str(exc).encode()[:500]
            with contextlib.suppress(OSError):
                self.request.sendall(b"\x01" + struct.pack(">I", len(message)) + message)
        finally:
            self.server.last_used = time.monotonic()


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def serve(*, idle_exit: float | None = None) -> None:
    """Run the service in this process until SIGTERM/SIGINT (or idle for `idle_exit` s)."""
    from rag.embedders import shared

    path = socket_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    old_umask = os.umask(0o177)  # the socket is ours alone (0600)
    try:
        server = _Server(str(path), _Handler)
    finally:
        os.umask(old_umask)
    # Each model loads on its first request (about a second for MiniLM, a fifth for WordLlama):
    # a server whose collections all use one model never holds the other.
    server.model = shared
    server.last_used = time.monotonic()
    _pid_path().write_text(str(os.getpid()))

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if idle_exit:

        def watch():
            while True:
                time.sleep(min(idle_exit, 5))
                if time.monotonic() - server.last_used > idle_exit:
                    stop()
                    return

        threading.Thread(target=watch, daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        for leftover in (path, _pid_path()):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def stop_running() -> bool:
    """Stop the service this data directory's socket belongs to (by its pid file)."""
    try:
        pid = int(_pid_path().read_text().strip())
    except (FileNotFoundError, ValueError):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            time.sleep(0.05)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
        return True
    return False


def service_env() -> dict[str, str]:
    """The service's environment: exactly ours, like `manage.py serve`'s children
    (`workbench.management.commands.serve.child_env`). Handing it the embedded server's
    DATABASE_URL made it take this for a shared-database deployment and refuse to start without
    SECRET_KEY in the environment — a bare `daphne` or a bench then searched by words only."""
    return dict(os.environ)


def start_detached(*, idle_exit: float | None = IDLE_EXIT_SECONDS) -> subprocess.Popen | None:
    """Start a service unless one is (being) started: a lock file makes that one at a time."""
    lock_path = socket_path().with_suffix(".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # someone else is starting it right now
        if _ping():
            return None
        command = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "embedder"]
        if idle_exit:
            command += ["--idle-exit", str(int(idle_exit))]
        process = subprocess.Popen(
            command,
            cwd=settings.BASE_DIR,
            env=service_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # not killed with the web process's terminal signals
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            if _ping():
                return process
            time.sleep(0.1)
        return process


def _ping() -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        try:
            sock.connect(str(socket_path()))
        except OSError:
            return False
    return True


# --- Clients -----------------------------------------------------------------------------------


def _encode(texts: list[str], model: str) -> bytes:
    body = json.dumps({"texts": texts, "model": model}).encode()
    if len(body) > MAX_REQUEST_BYTES or len(texts) > MAX_TEXTS:
        raise EmbedderServiceError("Too much text to embed at once.")
    return struct.pack(">I", len(body)) + body


def _decode(status: int, payload: bytes, n: int, dims: int) -> list[list[float]]:
    if status != 0:
        raise EmbedderServiceError(payload.decode(errors="replace"))
    floats = struct.unpack(f"<{len(payload) // 4}f", payload)
    if len(floats) != n * dims:
        raise EmbedderServiceError("The embedder answered with the wrong size.")
    return [list(floats[i * dims : (i + 1) * dims]) for i in range(n)]


def _model_dims(model: str) -> int:
    try:
        return builtin_model(model).dims
    except ValueError as exc:
        raise EmbedderServiceError(str(exc)) from None


def embed(
    texts: list[str], *, model: str = DEFAULT_MODEL, timeout: float = 30.0
) -> list[list[float]]:
    """Vectors of the built-in `model` from the service, starting it when none is running."""
    dims = _model_dims(model)
    request = _encode(texts, model)
    for attempt in (1, 2):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect(str(socket_path()))
            except (FileNotFoundError, ConnectionRefusedError):
                if attempt == 2:
                    raise EmbedderServiceError("The embedder service did not start.") from None
                _start_and_wait()
                continue
            sock.sendall(request)
            status = _recv_exact(sock, 1)[0]
            (length,) = struct.unpack(">I", _recv_exact(sock, 4))
            return _decode(status, _recv_exact(sock, length), len(texts), dims)
    raise EmbedderServiceError("unreachable")  # pragma: no cover


def _start_and_wait() -> None:
    start_detached()
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if _ping():
            return
        time.sleep(0.1)


async def aembed(
    texts: list[str], *, model: str = DEFAULT_MODEL, timeout: float = 30.0
) -> list[list[float]]:
    """The same from async code, without blocking the event loop on the round trip."""
    dims = _model_dims(model)
    request = _encode(texts, model)
    try:
        reader, writer = await asyncio.open_unix_connection(str(socket_path()))
    except (FileNotFoundError, ConnectionRefusedError):
        await asyncio.to_thread(_start_and_wait)
        reader, writer = await asyncio.open_unix_connection(str(socket_path()))
    try:
        async with asyncio.timeout(timeout):
            writer.write(request)
            await writer.drain()
            status = (await reader.readexactly(1))[0]
            (length,) = struct.unpack(">I", await reader.readexactly(4))
            payload = await reader.readexactly(length)
    except (asyncio.IncompleteReadError, TimeoutError) as exc:
        raise EmbedderServiceError("The embedder service did not answer.") from exc
    finally:
        writer.close()
    return _decode(status, payload, len(texts), dims)
