"""Background tasks (django.tasks on the django-tasks-db backend, `manage.py db_worker`).

Arguments are ids; the body (prompts.batch_runner) re-checks access as the batch's creator."""

from __future__ import annotations

from django.tasks import task

from prompts import batch_runner


@task(queue_name="default")
def batch_drive(batch_id: int) -> str:
    return batch_runner.batch_drive(batch_id=batch_id)
