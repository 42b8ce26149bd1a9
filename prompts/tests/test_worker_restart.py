"""A batch survives its worker being killed: real `db_worker` processes on the test database,
calls through the gate to the fake provider over HTTP. The first worker is SIGKILLed in the
middle of the batch (calls in flight, cells leased); a second worker started afterwards finishes
it. Every cell ends with exactly one result, and nothing is lost."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings

from billing.models import UsageRecord
from prompts import batches
from prompts.models import BatchCell, BatchRun, BatchStatus, CellStatus
from prompts.tests.conftest import make_prompt
from tests import servers

LEASE = 3  # seconds: how soon the second worker may take the first one's cells over


def worker(env: dict, log) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "db_worker",
            "--no-startup-delay",
            "--no-reload",
            "--interval",
            "0.2",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"Timed out waiting for {what}")


def counts(batch) -> dict[str, int]:
    result = dict.fromkeys(CellStatus.values, 0)
    for status in BatchCell.objects.filter(batch=batch).values_list("status", flat=True):
        result[status] += 1
    return result


@pytest.mark.django_db(transaction=True)
def test_a_batch_survives_a_killed_worker_without_duplicated_or_lost_cells(
    alice, make_credential, fake_provider, tmp_path
):
    # About a second and a half per call, so the kill lands while calls are in flight.
    fake_provider.configure(tokens_per_second=10, reply_tokens=15)
    openai = make_credential(alice, "openai", name="fake openai")
    anthropic = make_credential(alice, "anthropic", name="fake anthropic")
    prompt = make_prompt(alice, user="Tell me about {{topic}}.")
    batch = batches.batch_create(
        actor=alice,
        template=prompt,
        version=prompt.versions.get(),
        rows=[{"topic": t} for t in ("tides", "moons", "comets", "geysers", "dunes")],
        targets=[
            (openai, "gpt-4o-mini"),
            (openai, "gpt-4o"),
            (anthropic, "claude-3-5-haiku-latest"),
        ],
    )
    assert batch.cell_count == 15
    env = servers.daphne_env(
        WORKBENCH_EGRESS_ALLOW=f"localhost:11434,127.0.0.1:{fake_provider.port}",
        WORKBENCH_BATCH_LEASE_SECONDS=str(LEASE),
        WORKBENCH_BATCH_CONCURRENCY="3",
    )
    log_path = tmp_path / "workers.log"
    with open(log_path, "w") as log:
        first = worker(env, log)
        try:
            # A running cell isn't yet a call in flight (its usage row opens after the
            # prepare step): at load 7 the kill could land between the two.
            wait_for(
                lambda: (
                    (c := counts(batch))[CellStatus.DONE] >= 3
                    and c[CellStatus.RUNNING] >= 1
                    and UsageRecord.objects.filter(
                        context__prompt_batch=batch.pk, status="running"
                    ).exists()
                ),
                timeout=90,
                what="the first worker to finish some cells and be in the middle of a call",
            )
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                first.kill()
        held = set(
            BatchCell.objects.filter(batch=batch, status=CellStatus.RUNNING).values_list(
                "pk", flat=True
            )
        )
        done_before = set(
            BatchCell.objects.filter(batch=batch, status=CellStatus.DONE).values_list(
                "pk", flat=True
            )
        )
        assert held, "the kill should have left cells mid-call"
        assert BatchRun.objects.get(pk=batch.pk).status == BatchStatus.RUNNING

        second = worker(env, log)
        try:
            wait_for(
                lambda: BatchRun.objects.get(pk=batch.pk).status == BatchStatus.DONE,
                timeout=120,
                what="the second worker to finish the batch",
            )
        finally:
            second.terminate()
            second.wait(timeout=20)
    worker_log = log_path.read_text()
    assert "Traceback" not in worker_log, worker_log

    cells = list(BatchCell.objects.filter(batch=batch))
    assert len(cells) == 15
    assert {c.status for c in cells} == {CellStatus.DONE}, counts(batch)
    assert all(c.output.startswith("lorem ipsum") for c in cells)
    # Each cell's one result points at its own successful call.
    usage_ids = [c.usage_id for c in cells]
    assert None not in usage_ids and len(set(usage_ids)) == 15
    rows = {r.pk: r for r in UsageRecord.objects.filter(pk__in=usage_ids)}
    for cell in cells:
        row = rows[cell.usage_id]
        assert row.status == "ok" and row.context["prompt_cell"] == cell.pk
    # Cells in flight at the kill were taken over once; the others ran once; finished ones
    # were never run again.
    for cell in cells:
        expected = 2 if cell.pk in held else 1
        assert cell.attempts == expected, (cell, cell.attempts, cell.pk in held)
    # One ledger row per call: the calls the dead worker had in flight were opened at their
    # start and are settled as interrupted by the sweep (at start-up, or when a page reads).
    from datetime import timedelta

    from billing.services import usage_settle_stale

    usage_settle_stale(older_than=timedelta(0))
    calls = UsageRecord.objects.filter(context__prompt_batch=batch.pk)
    statuses = list(calls.values_list("status", flat=True))
    ok, interrupted = statuses.count("ok"), statuses.count("interrupted")
    assert ok + interrupted == len(statuses), statuses
    # Only a call that had ended (ledger written) but whose cell wasn't written yet when the
    # worker died can have been made twice; every other successful call belongs to one cell.
    assert 15 <= ok <= 15 + len(held)
    assert interrupted + (ok - 15) <= len(held)
    assert interrupted >= 1, "the kill should have caught a call in flight"
    assert done_before <= {c.pk for c in cells if c.attempts == 1}
