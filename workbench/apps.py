from django.apps import AppConfig


class WorkbenchConfig(AppConfig):
    name = "workbench"
    verbose_name = "Workbench"

    def ready(self):
        from workbench import text

        # Before any connection exists: every string and JSON value sent to PostgreSQL is
        # cleaned of what it can't store (NUL, lone surrogates) — see workbench/text.py.
        text.install()
