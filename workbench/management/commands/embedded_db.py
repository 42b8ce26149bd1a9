from django.conf import settings
from django.core.management.base import BaseCommand

from workbench import embedded_db


class Command(BaseCommand):
    help = "Start, stop or show the embedded PostgreSQL server of this data directory."

    # Loading settings already starts the server when DATABASE_URL is unset; `stop` must not
    # depend on the database being reachable, so no system checks.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["start", "stop", "status"])

    def handle(self, *args, action, **options):
        data_dir = settings.DATA_DIR
        if action == "start":
            embedded_db.database_url(data_dir)
            self.stdout.write(f"running in {embedded_db.pgdata_dir(data_dir)}")
        elif action == "stop":
            stopped = embedded_db.stop(data_dir)
            self.stdout.write("stopped" if stopped else "was not running")
        else:
            running = embedded_db.is_running(data_dir)
            self.stdout.write(
                f"{'running' if running else 'stopped'} ({embedded_db.pgdata_dir(data_dir)})"
            )
