"""`make run`'s command: it says "running at…" only once the server accepts connections (issue 9,
bug 21); its children get its own environment, never the embedded database's URL (issue 7)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

from workbench.management.commands.serve import wait_until_listening


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])


def test_it_waits_until_something_listens_on_the_port():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        process = _sleeper()
        try:
            # Bound but not listening yet, as Daphne is while it imports the app.
            threading.Timer(0.6, server.listen).start()
            started = time.monotonic()
            assert wait_until_listening("127.0.0.1", port, process, timeout=10)
            assert time.monotonic() - started >= 0.5
        finally:
            process.kill()
            process.wait()


def test_it_gives_up_when_the_server_process_exits():
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])

    assert not wait_until_listening("127.0.0.1", port, process, timeout=10)


def test_children_never_get_the_embedded_database_url_and_keep_an_operators_own(
    settings, monkeypatch
):
    """With the embedded database, a DATABASE_URL handed to Daphne or the worker would make them
    refuse the secrets generated into the data directory (issue 7: production-safe run)."""
    from workbench.management.commands.serve import child_env

    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings.DATABASE_URL = "postgresql://postgres@/workbench?host=/somewhere"
    assert "DATABASE_URL" not in child_env()

    monkeypatch.setenv("DATABASE_URL", "postgresql://wb@db.example.com/wb")
    assert child_env()["DATABASE_URL"] == "postgresql://wb@db.example.com/wb"
