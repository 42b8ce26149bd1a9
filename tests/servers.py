"""Real servers for tests: a Daphne subprocess serving the test database (browser tests, crash
recovery) — websockets included, which pytest-django's WSGI live_server cannot do."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from django.conf import settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    """The URL of the test database pytest-django created (same server, `test_` name)."""
    db = settings.DATABASES["default"]
    user = quote(db.get("USER") or "postgres")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    if db.get("HOST"):
        return f"postgresql://{user}{password}@{db['HOST']}:{db.get('PORT') or 5432}/{db['NAME']}"
    return f"postgresql://{user}{password}@/{db['NAME']}?host={quote(db['OPTIONS']['host'])}"


def daphne_env(**extra: str) -> dict[str, str]:
    """The environment of a Daphne on the test database. Never passes on the flag the browser
    tests set for their own thread: the server under test keeps its async-safety checks."""
    return {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_SETTINGS_MODULE": "workbench.settings_test",
        "DATABASE_URL": test_database_url(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        **extra,
    }


def start_daphne(
    env: dict[str, str], log: Path, *, port: int | None = None
) -> tuple[subprocess.Popen, int]:
    """Start Daphne and wait until it accepts connections. Returns (process, port)."""
    port = port or free_port()
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "workbench.asgi:application",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Daphne exited early:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, port
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"Daphne did not start in 30 s:\n{log.read_text()}")


def stop(*processes: subprocess.Popen) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
