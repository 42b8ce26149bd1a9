"""`manage.py embedder` — the query-time embedder service (rag.embedder_service)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from rag import embedder_service


class Command(BaseCommand):
    help = "Serve the built-in embedding model to web processes over a Unix socket."

    def add_arguments(self, parser):
        parser.add_argument(
            "--idle-exit", type=float, default=None, help="Exit after this many idle seconds."
        )
        parser.add_argument("--stop", action="store_true", help="Stop the running service.")

    def handle(self, *args, idle_exit, stop, **options):
        if stop:
            stopped = embedder_service.stop_running()
            self.stdout.write("Stopped the embedder service." if stopped else "None was running.")
            return
        embedder_service.serve(idle_exit=idle_exit)
