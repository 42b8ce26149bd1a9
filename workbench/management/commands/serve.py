"""`manage.py serve` — what `make run` runs: migrate, create the first admin, then Daphne on
127.0.0.1:8000 plus one task worker. Ctrl-C stops everything it started, the embedded
PostgreSQL server included."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from accounts import services
from workbench import embedded_db


class Command(BaseCommand):
    help = "Set up the database and run the web server and a task worker (Ctrl-C stops all)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("WORKBENCH_HOST", "127.0.0.1"))
        parser.add_argument(
            "--port", type=int, default=int(os.environ.get("WORKBENCH_PORT", "8000"))
        )
        parser.add_argument("--no-worker", action="store_true", help="Don't start a db_worker.")

    def handle(self, *args, host, port, no_worker, **options):
        call_command("migrate", interactive=False, verbosity=0)
        call_command("createcachetable", verbosity=0)
        if not settings.DEBUG:
            call_command("collectstatic", interactive=False, verbosity=0)
        user, password = services.admin_ensure()
        # Replies a previous run left `streaming` died with it (their heartbeat stopped).
        from chats.replies import replies_mark_stale

        if stale := replies_mark_stale():
            self.stdout.write(f"Marked {stale} reply(ies) interrupted by the last shutdown.")
        # Likewise the calls they made: nothing of ours runs yet, so every `running` row is an
        # orphan — settled from its last checkpoint.
        from datetime import timedelta

        from billing.services import usage_settle_stale

        if orphans := usage_settle_stale(older_than=timedelta(0)):
            self.stdout.write(f"Settled {orphans} call(s) the last shutdown left unfinished.")
        from playground.runs import answers_mark_stale

        if stale := answers_mark_stale():
            self.stdout.write(
                f"Marked {stale} playground answer(s) interrupted by the last shutdown."
            )
        url = f"http://{host}:{port}/"
        if settings.DEBUG:
            self.stdout.write(
                self.style.WARNING(
                    "Development mode (DEBUG=1): error pages show tracebacks and settings. "
                    "Never serve other people like this."
                )
            )
        if not os.environ.get("EMAIL_URL"):
            self.stdout.write(
                "EMAIL_URL is not set: emails (password resets, invitations) are printed here."
            )
        if password:
            self.stdout.write(
                self.style.SUCCESS(
                    "\nCreated the first admin. This password is shown only once:\n"
                    f"  username: {user.username}\n  password: {password}\n"
                )
            )
        env = child_env()
        children = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "daphne",
                    "-b",
                    host,
                    "-p",
                    str(port),
                    "workbench.asgi:application",
                ],
                env=env,
            )
        ]
        # The query-time embedder (rag.embedder_service): the built-in model stays out of Daphne.
        children.append(
            subprocess.Popen(
                [sys.executable, "manage.py", "embedder"],
                cwd=settings.BASE_DIR,
                env=env,
            )
        )
        if not no_worker:
            children.append(
                subprocess.Popen(
                    [sys.executable, "manage.py", "db_worker", "--no-reload"],
                    cwd=settings.BASE_DIR,
                    env=env,
                )
            )
        # A SIGTERM (systemd, timeout, kill) stops everything just like Ctrl-C.
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            # Say "running" only once Daphne accepts connections (it takes seconds to import the
            # app): a click on the printed URL before that would fail.
            if wait_until_listening(host, port, children[0]):
                self.stdout.write(
                    self.style.SUCCESS(f"Workbench is running at {url}  (Ctrl-C stops it)")
                )
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
            self.stderr.write("A process exited; stopping the others.")
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")
        finally:
            self._stop(children)

    def _stop(self, children):
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        if not os.environ.get("DATABASE_URL"):
            embedded_db.stop(settings.DATA_DIR)
            self.stdout.write("Stopped the embedded PostgreSQL server.")


def child_env() -> dict[str, str]:
    """The environment of Daphne, the embedder and the worker: exactly serve's own. With the
    embedded database they find the server themselves (reattaching takes milliseconds); passing
    them its DATABASE_URL would make them take this for a shared-database deployment and refuse
    the secrets generated into the data directory. An operator's own DATABASE_URL is inherited
    as it is."""
    return dict(os.environ)


def wait_until_listening(
    host: str, port: int, process: subprocess.Popen, timeout: float = 60
) -> bool:
    """True once something accepts connections on host:port; False if `process` exits first or
    nothing listens within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt
