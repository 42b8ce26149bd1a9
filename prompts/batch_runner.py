"""What a task worker does with a batch: claim cells, call the models, write each result once.

The unit of work is a cell (one row × one model), and a cell belongs to whoever holds its lease:

- **Claim**: one `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED)` takes a pending cell, or
  a running one whose lease ran out (its worker died), stamping a random holder and
  `lease_until`. Concurrent drivers in any process get different cells.
- **Keep**: while its calls run, a driver renews its cells' leases and the batch's
  `driven_until` every couple of seconds (two statements), and learns about a Cancel there.
- **Write**: the result is written by `UPDATE … WHERE lease_holder = <me> AND status =
  'running'`. A driver that lost its lease (it stalled, someone else took the cell over) writes
  nothing: a cell gets exactly one result.

So a killed worker loses nothing (its cells' leases run out and another driver takes them) and
duplicates nothing (only the current holder writes). The call a dead worker had in flight is in
the ledger as its own row — money that was really spent — and the cell's retry makes another.

Driving is split into tasks of a few tens of seconds (`SLICE`), each enqueueing the next, so a
long batch never keeps a worker from other tasks (document ingestion, deliveries) for long. One
future task per unfinished batch (`next_check_at`) is always scheduled: when every driver has
died, that task — picked up by whichever worker runs next — carries on.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import aclosing
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import F, Q
from django.http import Http404
from django.utils import timezone

from prompts import batches
from prompts.models import BatchCell, BatchRun, BatchStatus, CellStatus, PromptVersion
from prompts.rendering import RenderError, aversion_render
from providers.adapters.base import CompletionRequest, Finished, ProviderError, TextDelta
from providers.gate import CallControl
from workbench import connections

logger = logging.getLogger(__name__)

SLICE = 30.0  # seconds a driver task claims new cells before handing over to a fresh task
KEEP_EVERY = 2.0  # seconds between lease renewals (and cancel checks)
MAX_ATTEMPTS = 3  # claims of one cell; past this a cell whose worker keeps dying is an error
BUSY_BACKOFF = 1.0  # seconds to wait after the user's concurrency cap refused a call
MAX_OUTPUT_CHARS = 1_000_000


@dataclass
class _Cell:
    id: int
    row_index: int
    target_index: int
    attempts: int
    values: dict


@dataclass
class _Batch:
    id: int
    actor: object
    version: PromptVersion
    targets: list[dict]
    params: dict


# --- Database hops -------------------------------------------------------------------------------

_CLAIM_SQL = """
UPDATE prompts_batchcell AS c
   SET status = 'running', lease_holder = %(holder)s,
       lease_until = now() + make_interval(secs => %(lease)s),
       attempts = c.attempts + 1, started_at = coalesce(c.started_at, now())
 WHERE c.id = (
        SELECT id FROM prompts_batchcell
         WHERE batch_id = %(batch)s
           AND (status = 'pending' OR (status = 'running' AND lease_until < now()))
         ORDER BY row_index, target_index
         LIMIT 1
         FOR UPDATE SKIP LOCKED)
RETURNING c.id, c.row_index, c.target_index, c.attempts,
          (SELECT "values" FROM prompts_batchrow r WHERE r.batch_id = c.batch_id
                                                   AND r.index = c.row_index)
"""


def _begin(batch_id: int, holder: uuid.UUID) -> tuple[_Batch | None, object]:
    """Mark the batch running and make sure a later check is scheduled. Returns the batch (None
    when it is finished or gone) and when to schedule the check (None: one already is)."""
    now = timezone.now()
    lease = batches.lease_seconds()
    with transaction.atomic():
        batch = (
            BatchRun.objects.select_for_update(of=("self",))
            .select_related("version", "version__template", "version__collection", "template")
            .filter(pk=batch_id)
            .first()
        )
        if batch is None or not batch.is_active:
            return None, None
        fields = ["driven_until"]
        if batch.status == BatchStatus.QUEUED:
            batch.status, batch.started_at = BatchStatus.RUNNING, now
            fields += ["status", "started_at"]
        batch.driven_until = now + timedelta(seconds=lease)
        schedule = None
        if batch.next_check_at is None or batch.next_check_at <= now:
            schedule = now + timedelta(seconds=2 * lease)
            batch.next_check_at = schedule
            fields.append("next_check_at")
        batch.save(update_fields=fields)
    actor = get_user_model().objects.filter(pk=batch.created_by_id, is_active=True).first()
    version = batch.version
    version.template = batch.template
    return (
        _Batch(batch.pk, actor, version, list(batch.targets), dict(batch.params)),
        schedule,
    )


def _claim(batch_id: int, holder: uuid.UUID) -> _Cell | None:
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL, {"holder": holder, "lease": batches.lease_seconds(), "batch": batch_id}
        )
        row = cursor.fetchone()
    if row is None:
        return None
    values = row[4]
    if isinstance(values, str):  # jsonb from a raw cursor
        import json

        values = json.loads(values)
    return _Cell(row[0], row[1], row[2], row[3], values or {})


def _keep(batch_id: int, holder: uuid.UUID) -> bool:
    """Renew this driver's leases and the batch's sign of life. Returns whether a Cancel came."""
    lease = timedelta(seconds=batches.lease_seconds())
    now = timezone.now()
    BatchCell.objects.filter(
        batch_id=batch_id, lease_holder=holder, status=CellStatus.RUNNING
    ).update(lease_until=now + lease)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE prompts_batchrun SET driven_until = %s WHERE id = %s RETURNING cancel_requested",
            [now + lease, batch_id],
        )
        row = cursor.fetchone()
    return row is None or bool(row[0])


def _write(cell_id: int, holder: uuid.UUID, **fields) -> bool:
    """The one write of a cell's result, by its lease holder only."""
    fields.setdefault("finished_at", timezone.now())
    written = BatchCell.objects.filter(
        pk=cell_id, lease_holder=holder, status=CellStatus.RUNNING
    ).update(lease_holder=None, lease_until=None, **fields)
    return written == 1


def _release(cell_id: int, holder: uuid.UUID) -> None:
    """Give a cell back untried (the user's concurrency cap was full): it doesn't count as an
    attempt."""
    BatchCell.objects.filter(pk=cell_id, lease_holder=holder, status=CellStatus.RUNNING).update(
        status=CellStatus.PENDING, lease_holder=None, lease_until=None, attempts=F("attempts") - 1
    )


def _usage_figures(usage_id: int | None) -> dict:
    if not usage_id:
        return {}
    from billing.models import UsageRecord

    row = (
        UsageRecord.objects.filter(pk=usage_id)
        .values("input_tokens", "output_tokens", "tokens_estimated", "cost", "cost_source")
        .first()
    )
    return {**row, "usage_id": usage_id} if row else {"usage_id": usage_id}


def _end(batch_id: int, holder: uuid.UUID, out_of_time: bool) -> str:
    """After a slice: finish the batch if nothing is left, or hand over to a fresh task."""
    now = timezone.now()
    with transaction.atomic():
        batch = BatchRun.objects.select_for_update().filter(pk=batch_id).first()
        if batch is None or not batch.is_active:
            return "finished"
        if batch.cancel_requested:
            BatchCell.objects.filter(
                batch=batch, status__in=[CellStatus.PENDING, CellStatus.RUNNING]
            ).filter(
                # pending ones, ours, and any whose lease ran out (nobody else is on them)
                Q(status=CellStatus.PENDING) | Q(lease_holder=holder) | Q(lease_until__lt=now)
            ).update(
                status=CellStatus.CANCELLED, finished_at=now, lease_holder=None, lease_until=None
            )
        open_cells = BatchCell.objects.filter(
            batch=batch, status__in=[CellStatus.PENDING, CellStatus.RUNNING]
        )
        if not open_cells.exists():
            batch.status = BatchStatus.CANCELLED if batch.cancel_requested else BatchStatus.DONE
            batch.finished_at = now
            batch.driven_until = batch.next_check_at = None
            batch.save(update_fields=["status", "finished_at", "driven_until", "next_check_at"])
            return batch.status
        claimable = open_cells.filter(status=CellStatus.PENDING).exists()
    if claimable and out_of_time:
        batches._start(batch_id)  # a fresh task at the back of the queue
        return "continued"
    return "waiting"  # cells held by other drivers; the scheduled check follows up


# --- The driver ------------------------------------------------------------------------------------


def _request(batch: _Batch, target: dict, rendered) -> CompletionRequest:
    params = batch.params
    return CompletionRequest(
        model=target["model"],
        system=rendered.system,
        messages=rendered.messages,
        temperature=params.get("temperature"),
        top_p=params.get("top_p"),
        max_tokens=params.get("max_tokens"),
        seed=params.get("seed"),
    )


class _Busy(Exception):
    """The user's concurrency cap is full: try the cell again a little later."""


async def _run_cell(
    batch: _Batch, cell: _Cell, holder: uuid.UUID, cancelled: asyncio.Event, control: CallControl
) -> None:
    write = connections.hop(_write)
    if cell.attempts > MAX_ATTEMPTS:
        await write(
            cell.id,
            holder,
            status=CellStatus.ERROR,
            error_code="worker_lost",
            error_message=f"The worker stopped during this cell {MAX_ATTEMPTS} times; "
            "not trying again.",
        )
        return
    if batch.actor is None:
        await write(
            cell.id,
            holder,
            status=CellStatus.ERROR,
            error_code="access_denied",
            error_message="The account that started this batch is no longer active.",
        )
        return
    target = batch.targets[cell.target_index]
    try:
        rendered = await aversion_render(
            user=batch.actor, version=batch.version, values=cell.values
        )
    except RenderError as exc:
        await write(
            cell.id,
            holder,
            status=CellStatus.ERROR,
            error_code=exc.code,
            error_message=str(exc)[:500],
        )
        return
    except (Http404, PermissionDenied):
        await write(
            cell.id,
            holder,
            status=CellStatus.ERROR,
            error_code="access_denied",
            error_message="You can no longer read this prompt.",
        )
        return
    from providers.services import completion_stream

    context = {**rendered.usage_context(), "prompt_batch": batch.id, "prompt_cell": cell.id}
    parts: list[str] = []
    size = 0
    finished: Finished | None = None
    try:
        async with aclosing(
            completion_stream(
                user=batch.actor,
                credential_id=target["credential"],
                request=_request(batch, target, rendered),
                feature="batch",
                context=context,
                control=control,
            )
        ) as stream:
            async for event in stream:
                if type(event) is TextDelta:
                    if size < MAX_OUTPUT_CHARS:
                        parts.append(event.text)
                        size += len(event.text)
                elif type(event) is Finished:
                    finished = event
    except ProviderError as exc:
        if exc.code == "too_many_calls":
            await connections.hop(_release)(cell.id, holder)
            raise _Busy from None
        figures = await connections.hop(_usage_figures)(getattr(exc, "usage_id", None))
        await write(
            cell.id,
            holder,
            status=CellStatus.ERROR,
            error_code=exc.code,
            error_message=(exc.message or exc.code)[:500],
            output="".join(parts)[:MAX_OUTPUT_CHARS],
            **figures,
        )
        return
    except (Http404, PermissionDenied):
        await write(
            cell.id,
            holder,
            status=CellStatus.ERROR,
            error_code="access_denied",
            error_message=f"You can no longer use “{target['credential_name']}”.",
        )
        return
    except asyncio.CancelledError:
        # The gate has recorded the call as stopped. A Cancel of the batch ends the cell; a
        # driver going down for any other reason gives it back for another try.
        if cancelled.is_set():
            done = write(
                cell.id,
                holder,
                status=CellStatus.CANCELLED,
                output="".join(parts)[:MAX_OUTPUT_CHARS],
            )
        else:
            done = connections.hop(_release)(cell.id, holder)
        await asyncio.shield(done)
        raise
    await write(
        cell.id,
        holder,
        status=CellStatus.DONE,
        output="".join(parts)[:MAX_OUTPUT_CHARS],
        input_tokens=finished.input_tokens if finished else None,
        output_tokens=finished.output_tokens if finished else None,
        tokens_estimated=bool(finished and finished.tokens_estimated),
        cost=Decimal(finished.cost) if finished and finished.cost is not None else None,
        cost_source=finished.cost_source if finished else "",
        ttft_ms=finished.ttft_ms if finished else None,
        duration_ms=finished.duration_ms if finished else None,
        usage_id=finished.usage_id if finished else None,
    )


async def _keeper(
    batch_id: int, holder: uuid.UUID, running: dict, controls: dict, cancelled: asyncio.Event
):
    keep = connections.hop(_keep)
    while True:
        await asyncio.sleep(KEEP_EVERY)
        try:
            if await keep(batch_id, holder):
                cancelled.set()
                for cell_id, task in list(running.items()):
                    controls[cell_id].stop_requested = True  # the ledger says "stopped"
                    task.cancel()
        except Exception:  # a database hiccup: the next round renews (leases outlast a few)
            logger.exception("Couldn't renew the leases of batch %s", batch_id)


async def _drive(batch: _Batch, holder: uuid.UUID, slice_seconds: float) -> bool:
    """Run cells until none is left to claim or the slice is over. True when out of time."""
    claim = connections.hop(_claim)
    running: dict[int, asyncio.Task] = {}
    controls: dict[int, CallControl] = {}
    cancelled = asyncio.Event()
    keeper = asyncio.create_task(_keeper(batch.id, holder, running, controls, cancelled))
    deadline = time.monotonic() + slice_seconds
    limit = batches.concurrency()
    # After a claim finds nothing, claim again only once a call has finished: cells held by a
    # dead worker become claimable while ours run, and are taken over then.
    exhausted = False
    try:
        while True:
            out_of_time = time.monotonic() >= deadline
            while (
                len(running) < limit
                and not cancelled.is_set()
                and not exhausted
                and not out_of_time
            ):
                cell = await claim(batch.id, holder)
                if cell is None:
                    exhausted = True
                    break
                controls[cell.id] = CallControl()
                running[cell.id] = asyncio.create_task(
                    _run_cell(batch, cell, holder, cancelled, controls[cell.id])
                )
            if not running:
                break
            done, _ = await asyncio.wait(running.values(), return_when=asyncio.FIRST_COMPLETED)
            exhausted = False
            for task in done:
                for cell_id, candidate in list(running.items()):
                    if candidate is task:
                        del running[cell_id], controls[cell_id]
                if task.cancelled():
                    continue
                if isinstance(task.exception(), _Busy):
                    limit = max(1, len(running))  # the cap is full: fewer at once for a while
                    await asyncio.sleep(BUSY_BACKOFF)
                elif task.exception() is not None:
                    logger.error("Batch %s cell failed", batch.id, exc_info=task.exception())
    finally:
        keeper.cancel()
        for task in running.values():
            task.cancel()
        if running:
            await asyncio.gather(*running.values(), return_exceptions=True)
    return out_of_time


def batch_drive(*, batch_id: int, slice_seconds: float = SLICE) -> str:
    """The task body: drive the batch for one slice. Returns what happened (for the task log)."""
    holder = uuid.uuid4()
    batch, schedule = _begin(batch_id, holder)
    if batch is None:
        return "finished"
    if schedule is not None:
        from prompts.tasks import batch_drive as task

        task.using(run_after=schedule).enqueue(batch_id)
    connections.release()  # the calls below hold no connection while they wait
    out_of_time = asyncio.run(_drive(batch, holder, slice_seconds))
    return _end(batch_id, holder, out_of_time)
