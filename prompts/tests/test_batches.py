"""Batches: checks before anything starts, the estimate, the runner (real gate, real SDK against
the fake provider over HTTP), leases, cancel, and exports."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from billing.models import UsageRecord
from prompts import batch_runner, batches, exports
from prompts.models import BatchCell, BatchRun, BatchStatus, CellStatus
from prompts.tests.conftest import make_prompt
from providers import services as provider_services

ROWS = [{"topic": "tides"}, {"topic": "volcanoes", "tone": "formal", "words": 20}]


def version_of(template):
    return template.versions.get(number=template.latest_number)


@pytest.fixture
def echo(alice):
    return provider_services.credentials_ensure_echo(user=alice)


def start(alice, prompt, targets, rows=ROWS, **kwargs):
    return batches.batch_create(
        actor=alice,
        template=prompt,
        version=version_of(prompt),
        rows=rows,
        targets=targets,
        **kwargs,
    )


# --- Checks and the estimate -------------------------------------------------------------------


def test_every_bad_row_is_named_and_nothing_is_saved(alice, summarize, echo):
    rows = [{"topic": "ok"}, {}, {"topic": "x", "words": "many"}, {"topic": "x", "colour": 1}]
    with pytest.raises(ValidationError) as caught:
        start(alice, summarize, [(echo, "echo")], rows=rows)
    assert caught.value.messages == [
        "Row 2: Missing “topic”.",
        "Row 3: “words” must be a number.",
        "Row 4: Not variables of this prompt: “colour”.",
    ]
    assert not BatchRun.objects.exists()


def test_a_batch_runs_on_its_owners_credentials_only(alice, team, summarize, team_prompt, echo):
    team_echo = provider_services.credentials_ensure_echo(user=alice, team=team)
    with pytest.raises(ValidationError, match="isn't one of Acme's credentials"):
        start(alice, team_prompt, [(echo, "echo")], rows=[{"name": "Ann"}])
    with pytest.raises(ValidationError, match="belongs to a team"):
        start(alice, summarize, [(team_echo, "echo")])
    with pytest.raises(ValidationError, match="picked twice"):
        start(alice, summarize, [(echo, "echo"), (echo, "echo")])


def test_a_viewer_cant_start_a_batch_and_an_outsider_cant_see_the_prompt(
    alice, team, team_prompt, vera_viewer, charlie_outsider
):
    team_echo = provider_services.credentials_ensure_echo(user=alice, team=team)
    with pytest.raises(PermissionDenied):
        start(vera_viewer, team_prompt, [(team_echo, "echo")], rows=[{"name": "A"}])
    with pytest.raises(Http404):
        start(charlie_outsider, team_prompt, [(team_echo, "echo")], rows=[{"name": "A"}])


def test_size_limits_hold(alice, summarize, echo, monkeypatch):
    monkeypatch.setattr(batches, "MAX_CELLS", 3)
    with pytest.raises(ValidationError, match="more than 3 cells"):
        start(alice, summarize, [(echo, "echo")], rows=[{"topic": str(i)} for i in range(4)])
    with pytest.raises(ValidationError, match="at least one row"):
        start(alice, summarize, [(echo, "echo")], rows=[])


def test_the_estimate_prices_prompt_tokens_and_the_most_each_call_may_write(
    alice, summarize, make_credential
):
    openai = make_credential(alice, "openai")
    checked = batches.batch_check(
        actor=alice,
        template=summarize,
        version=version_of(summarize),
        rows=ROWS,
        targets=[(openai, "gpt-4o-mini")],
        params={"max_tokens": 100},
    )
    estimate = checked.estimate
    assert (estimate.rows, estimate.cells, estimate.output_assumed) == (2, 2, 100)
    assert estimate.output_is_limit and estimate.counted_exactly
    target = estimate.targets[0]
    assert target.output_tokens == 200 and target.input_tokens > 10
    assert estimate.total > 0 and target.cost == estimate.total


def test_a_local_model_is_estimated_at_zero(alice, summarize, echo):
    estimate = batches.batch_check(
        actor=alice,
        template=summarize,
        version=version_of(summarize),
        rows=ROWS,
        targets=[(echo, "echo")],
    ).estimate
    assert estimate.total == 0 and estimate.targets[0].local
    assert estimate.output_assumed == batches.DEFAULT_OUTPUT and not estimate.output_is_limit


# --- CSV ---------------------------------------------------------------------------------------------


def test_rows_come_from_a_csv_table(alice, summarize):
    data = '\ufefftopic,words\n"tides, and moons",10\n\n"multi\nline",\n'.encode()
    rows = batches.rows_from_csv(data=data, version=version_of(summarize))
    assert rows == [
        {"topic": "tides, and moons", "words": "10"},
        {"topic": "multi\nline", "words": ""},
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"topic,colour\nx,y\n", "aren't variables of this prompt: \u201ccolour\u201d"),
        (b"topic,topic\nx,y\n", "named twice"),
        (b"topic,words\nx\n", "Line 2 has 1 values"),
        (b"topic\n", "no rows"),
        ("topic\ncaf\u00e9\n".encode("latin-1"), "isn't UTF-8"),
    ],
)
def test_a_bad_csv_says_whats_wrong(alice, summarize, data, message):
    with pytest.raises(ValidationError, match=message):
        batches.rows_from_csv(data=data, version=version_of(summarize))


def test_a_csv_with_too_many_rows_is_refused_while_reading(alice, summarize, monkeypatch):
    monkeypatch.setattr(batches, "MAX_ROWS", 3)
    data = ("topic\n" + "x\n" * 10).encode()
    with pytest.raises(ValidationError, match="At most 3 rows"):
        batches.rows_from_csv(data=data, version=version_of(summarize))


# --- The runner -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_batch_runs_every_cell_once_through_the_gate(alice, summarize, make_credential):
    openai = make_credential(alice, "openai")
    batch = start(alice, summarize, [(openai, "gpt-4o-mini"), (openai, "gpt-4o")])
    assert batch.cell_count == 4 and batch.status == BatchStatus.QUEUED
    assert DBTaskResult.objects.filter(task_path="prompts.tasks.batch_drive").count() == 1

    assert batch_runner.batch_drive(batch_id=batch.pk) == "done"

    batch.refresh_from_db()
    assert batch.status == BatchStatus.DONE and batch.finished_at and batch.next_check_at is None
    cells = list(batch.cells.order_by("row_index", "target_index"))
    assert [c.status for c in cells] == [CellStatus.DONE] * 4
    assert cells[1].output == "Hello from the fake gpt-4o! How can I help you today?"
    rows = UsageRecord.objects.filter(feature="batch").order_by("id")
    assert rows.count() == 4
    assert {c.usage_id for c in cells} == {r.pk for r in rows}
    first = UsageRecord.objects.get(pk=cells[0].usage_id)
    assert first.context == {
        "prompt_template": summarize.pk,
        "prompt_version": version_of(summarize).pk,
        "prompt_batch": batch.pk,
        "prompt_cell": cells[0].pk,
    }
    assert cells[0].input_tokens == first.input_tokens and cells[0].cost == first.cost
    assert cells[0].duration_ms is not None and cells[0].attempts == 1


@pytest.mark.django_db(transaction=True)
def test_the_model_receives_the_rendered_prompt_with_values_kept_literal(alice, echo):
    prompt = make_prompt(alice, system="Be {{tone}}.", user="About {{topic}}.", variables=[])
    batch = start(alice, prompt, [(echo, "echo")], rows=[{"tone": "{{topic}}", "topic": "x"}])
    batch_runner.batch_drive(batch_id=batch.pk)
    output = batch.cells.get().output
    assert "Be {{topic}}." in output and "About x." in output


@pytest.mark.django_db(transaction=True)
def test_a_failing_model_marks_only_its_cells_with_the_reason(
    alice, summarize, make_credential, fake_provider, one_attempt
):
    good = make_credential(alice, "openai", name="good")
    bad = make_credential(alice, "anthropic", name="bad")
    batch = start(alice, summarize, [(good, "gpt-4o-mini"), (bad, "claude-3-5-haiku-latest")])
    bad.is_active = False  # after the start: the gate refuses it, with its stable code
    bad.save()
    batch_runner.batch_drive(batch_id=batch.pk)
    cells = {(c.row_index, c.target_index): c for c in batch.cells.all()}
    assert cells[(0, 0)].status == cells[(1, 0)].status == CellStatus.DONE
    for row in (0, 1):
        cell = cells[(row, 1)]
        assert cell.status == CellStatus.ERROR
        assert cell.error_code == "inactive" and "deactivated" in cell.error_message
        assert cell.usage_id is not None
    batch.refresh_from_db()
    assert batch.status == BatchStatus.DONE


@pytest.mark.django_db(transaction=True)
def test_a_cell_whose_worker_died_is_taken_over_once_its_lease_runs_out(alice, summarize, echo):
    batch = start(alice, summarize, [(echo, "echo")])
    dead = uuid.uuid4()
    cell = batch.cells.get(row_index=0)
    BatchCell.objects.filter(pk=cell.pk).update(
        status=CellStatus.RUNNING,
        lease_holder=dead,
        lease_until=timezone.now() + timedelta(minutes=5),
        attempts=1,
    )
    # While the lease holds, nobody else touches the cell.
    assert batch_runner.batch_drive(batch_id=batch.pk) == "waiting"
    cell.refresh_from_db()
    assert cell.status == CellStatus.RUNNING and cell.lease_holder == dead
    assert batch.cells.get(row_index=1).status == CellStatus.DONE
    # Once it runs out, the next driver takes it over.
    BatchCell.objects.filter(pk=cell.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert batch_runner.batch_drive(batch_id=batch.pk) == "done"
    cell.refresh_from_db()
    assert cell.status == CellStatus.DONE and cell.attempts == 2 and cell.lease_holder is None
    # The dead worker, should it wake up, can't write over the result.
    assert not batch_runner._write(cell.pk, dead, status=CellStatus.ERROR, error_code="late")
    cell.refresh_from_db()
    assert cell.status == CellStatus.DONE


@pytest.mark.django_db(transaction=True)
def test_a_cell_whose_workers_keep_dying_is_given_up(alice, summarize, echo):
    batch = start(alice, summarize, [(echo, "echo")], rows=[{"topic": "x"}])
    BatchCell.objects.filter(batch=batch).update(
        status=CellStatus.RUNNING,
        lease_holder=uuid.uuid4(),
        lease_until=timezone.now() - timedelta(seconds=1),
        attempts=batch_runner.MAX_ATTEMPTS,
    )
    batch_runner.batch_drive(batch_id=batch.pk)
    cell = batch.cells.get()
    assert cell.status == CellStatus.ERROR and cell.error_code == "worker_lost"
    assert not UsageRecord.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_driver_hands_over_to_a_fresh_task_when_its_slice_is_over(alice, summarize, echo):
    batch = start(alice, summarize, [(echo, "echo")])
    DBTaskResult.objects.all().delete()
    assert batch_runner.batch_drive(batch_id=batch.pk, slice_seconds=0) == "continued"
    tasks = list(DBTaskResult.objects.order_by("enqueued_at"))
    # the one scheduled follow-up (in the future) and the continuation (now)
    assert len(tasks) == 2
    later = [t for t in tasks if t.run_after and t.run_after.year < 9999]
    assert len(later) == 1 and later[0].run_after > timezone.now() + timedelta(seconds=60)
    assert batch_runner.batch_drive(batch_id=batch.pk) == "done"
    # A follow-up for a finished batch does nothing.
    assert batch_runner.batch_drive(batch_id=batch.pk) == "finished"


@pytest.mark.django_db(transaction=True)
def test_cancel_stops_what_hasnt_started_and_ends_a_batch_nobody_drives(alice, summarize, echo):
    batch = start(alice, summarize, [(echo, "echo")])
    batches.batch_cancel(actor=alice, batch=batch)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CANCELLED and batch.finished_at
    assert set(batch.cells.values_list("status", flat=True)) == {CellStatus.CANCELLED}
    assert batch_runner.batch_drive(batch_id=batch.pk) == "finished"
    assert not UsageRecord.objects.exists()
    with pytest.raises(ValidationError, match="already finished"):
        batches.batch_cancel(actor=alice, batch=batch)


@pytest.mark.django_db(transaction=True)
def test_cancel_reaches_calls_a_live_driver_is_making(
    alice, summarize, make_credential, fake_provider
):
    import threading

    openai = make_credential(alice, "openai")
    fake_provider.configure(tokens_per_second=20, reply_tokens=200)  # ten seconds a call
    batch = start(alice, summarize, [(openai, "gpt-4o-mini")])
    result = {}

    def drive():
        from django.db import connections

        try:
            result["r"] = batch_runner.batch_drive(batch_id=batch.pk)
        finally:
            connections.close_all()  # this thread's own connection

    driver = threading.Thread(target=drive)
    driver.start()
    deadline = timezone.now() + timedelta(seconds=20)
    while batch.cells.filter(status=CellStatus.RUNNING).count() != 2:
        assert timezone.now() < deadline, "the calls never started"
        threading.Event().wait(0.05)
    batches.batch_cancel(actor=alice, batch=batch)
    driver.join(timeout=30)
    assert not driver.is_alive()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CANCELLED and result["r"] == "cancelled"
    assert set(batch.cells.values_list("status", flat=True)) == {CellStatus.CANCELLED}
    assert set(UsageRecord.objects.values_list("status", flat=True)) == {"stopped"}


@pytest.mark.django_db(transaction=True)
def test_a_creator_who_lost_access_gets_clear_errors_not_calls(
    alice, team, team_prompt, bob_teammate
):
    from accounts.models import Membership, Role

    team_echo = provider_services.credentials_ensure_echo(user=alice, team=team)
    batch = start(bob_teammate, team_prompt, [(team_echo, "echo")], rows=[{"name": "A"}])
    Membership.objects.filter(user=bob_teammate, team=team).update(role=Role.VIEWER)
    batch_runner.batch_drive(batch_id=batch.pk)
    cell = batch.cells.get()
    assert cell.status == CellStatus.ERROR and cell.error_code == "access_denied"


# --- Exports ---------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_csv_export_has_one_line_per_row_and_model_and_defuses_formulas(alice, echo):
    prompt = make_prompt(alice, user="{{q}}")
    batch = start(alice, prompt, [(echo, "echo")], rows=[{"q": "=HYPERLINK(1)"}, {"q": "plain"}])
    batch_runner.batch_drive(batch_id=batch.pk)
    response = exports.batch_export_response(batch=batch, fmt="csv")
    text = response.content.decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0][:4] == ["row", "q", "model", "credential"]
    assert len(lines) == 3
    assert lines[1][1] == "'=HYPERLINK(1)" and lines[2][1] == "plain"
    assert lines[1][4] == "done" and lines[1][9] == "0"


@pytest.mark.django_db(transaction=True)
def test_the_json_export_groups_results_by_row(alice, summarize, echo, make_credential):
    openai = make_credential(alice, "openai")
    batch = start(alice, summarize, [(echo, "echo"), (openai, "gpt-4o-mini")])
    batch_runner.batch_drive(batch_id=batch.pk)
    document = json.loads(exports.batch_export_response(batch=batch, fmt="json").content)
    assert [m["model"] for m in document["models"]] == ["echo", "gpt-4o-mini"]
    assert [r["row"] for r in document["rows"]] == [1, 2]
    assert document["rows"][1]["variables"] == {
        "tone": "formal",
        "topic": "volcanoes",
        "words": "20",
    }
    assert [r["status"] for r in document["rows"][0]["results"]] == ["done", "done"]
    assert Decimal(document["rows"][0]["results"][1]["cost"]) > 0
