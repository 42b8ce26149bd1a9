"""Batch runs: a version × a table of variable rows × several models, run in the background.

`batch_create` checks everything first — every row rendered against the version's variables,
every model one of the owner's credentials the actor may use — and writes the batch, its rows
and its cells in one transaction, then enqueues the driver (prompts.batch_runner). A failure
names the rows and fields concerned and writes nothing. `batch_estimate` is the same check
without the writes: what the batch will cost before it runs.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts import access
from accounts.access import Action
from accounts.models import Team
from billing import pricing
from prompts.models import (
    BatchCell,
    BatchRow,
    BatchRun,
    BatchStatus,
    CellStatus,
    PromptTemplate,
    PromptVersion,
)
from prompts.rendering import RenderError, render_values
from prompts.services import clean_params, require_use_of
from prompts.variables import Variable
from providers import tokens
from providers.adapters.base import Message

MAX_ROWS = 1_000
MAX_TARGETS = 8
MAX_CELLS = 2_000
MAX_CSV_BYTES = 2 * 1024 * 1024
MAX_ROW_ERRORS = 20  # a table with many bad rows: the first ones, then how many more
DEFAULT_OUTPUT = 1024  # output tokens assumed per cell when no max_tokens is set
EXACT_COUNT_CHARS = 2_000_000  # above this much prompt text in all, tokens are estimated (bytes/4)


@dataclass(frozen=True)
class Target:
    """One model column of the matrix."""

    credential: object  # providers.ProviderCredential
    model: str

    def as_json(self) -> dict:
        return {
            "credential": self.credential.pk,
            "credential_name": self.credential.name,
            "preset": self.credential.preset,
            "model": self.model,
        }


@dataclass(frozen=True)
class TargetEstimate:
    label: str
    input_tokens: int
    output_tokens: int
    cost: Decimal | None  # None: unpriced
    local: bool


@dataclass(frozen=True)
class Estimate:
    rows: int
    cells: int
    targets: list[TargetEstimate]
    total: Decimal
    unpriced_cells: int
    output_assumed: int  # output tokens assumed per cell
    output_is_limit: bool  # True: max_tokens bounds it; False: a guess
    counted_exactly: bool


def _owner(template: PromptTemplate):
    return template.owner_team if template.owner_team_id else template.owner_user


def check_target(*, actor, owner, credential, model: str) -> Target:
    """A batch runs on its owner's credentials only (the team's for a team prompt, the actor's
    own for a personal one): whoever owns it pays — the rule chat and the playground follow."""
    access.require(actor, credential, Action.READ)
    if isinstance(owner, Team):
        if credential.owner_team_id != owner.pk:
            raise ValidationError(
                {
                    "targets": f"“{credential.name}” isn't one of {owner.name}'s credentials; a "
                    "team prompt's batch runs on the team's models only (the team pays for it)."
                }
            )
    elif credential.owner_user_id != actor.pk:
        raise ValidationError(
            {
                "targets": f"“{credential.name}” belongs to a team; a personal prompt's batch runs "
                "on your personal credentials only."
            }
        )
    access.require(actor, credential, Action.USE)
    if not credential.is_active:
        raise ValidationError({"targets": f"“{credential.name}” is deactivated."})
    model = (model or "").strip()
    if not model or len(model) > 200:
        raise ValidationError({"targets": f"Pick a model of “{credential.name}”."})
    return Target(credential, model)


def rows_check(*, version: PromptVersion, rows) -> list[dict[str, str]]:
    """Every row rendered against the version's variables (the text, not the retrieval): the
    values as they will be inserted, or one ValidationError naming each bad row."""
    if not isinstance(rows, list) or not rows:
        raise ValidationError({"rows": "Give at least one row of variables."})
    if len(rows) > MAX_ROWS:
        raise ValidationError({"rows": f"At most {MAX_ROWS:,} rows per batch."})
    clean, errors, bad = [], [], 0
    for number, row in enumerate(rows, start=1):
        try:
            rendered = render_values(version=version, values=row)
        except RenderError as exc:
            bad += 1
            if len(errors) < MAX_ROW_ERRORS:
                errors.append(f"Row {number}: {exc}")
            continue
        clean.append(rendered.values)
    if bad:
        if bad > len(errors):
            errors.append(f"… and {bad - len(errors)} more rows with problems.")
        raise ValidationError({"rows": errors})
    return clean


def rows_from_csv(*, data: bytes, version: PromptVersion) -> list[dict[str, str]]:
    """A CSV table (first line: variable names) → rows of values as typed. Columns must be the
    version's variables (missing ones fall back to defaults when rendered); blank lines skip."""
    if len(data) > MAX_CSV_BYTES:
        raise ValidationError(
            {"csv": f"The CSV file is larger than {MAX_CSV_BYTES // 1048576} MB."}
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError({"csv": "The CSV file isn't UTF-8 text."}) from None
    names = [Variable.from_dict(v).name for v in version.variables]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise ValidationError({"csv": "The CSV file is empty."})
        header = [column.strip() for column in header]
        unknown = [column for column in header if column not in names]
        if unknown:
            raise ValidationError(
                {
                    "csv": "These columns aren't variables of this prompt: "
                    + ", ".join(f"“{c[:64]}”" for c in unknown)
                    + (f". Its variables are: {', '.join(names)}." if names else ".")
                }
            )
        if len(set(header)) != len(header):
            raise ValidationError({"csv": "A column is named twice in the first line."})
        rows = []
        for line in reader:
            if not any(cell.strip() for cell in line):
                continue
            if len(line) != len(header):
                raise ValidationError(
                    {
                        "csv": f"Line {reader.line_num} has {len(line)} values; the first line "
                        f"names {len(header)} columns."
                    }
                )
            rows.append(dict(zip(header, line, strict=True)))
            if len(rows) > MAX_ROWS:
                raise ValidationError({"csv": f"At most {MAX_ROWS:,} rows per batch."})
    except csv.Error as exc:
        raise ValidationError({"csv": f"Not a readable CSV file: {exc}."}) from None
    if not rows:
        raise ValidationError({"csv": "The CSV file has a header but no rows."})
    return rows


def _token_count(version: PromptVersion, rows: list[dict[str, str]]) -> tuple[list[int], bool]:
    """Prompt tokens per row, counted offline (exact up to EXACT_COUNT_CHARS of text in all)."""
    from prompts.rendering import fill

    texts = [(fill(version.system_text, row), fill(version.user_text, row)) for row in rows]
    exact = sum(len(s) + len(u) for s, u in texts) <= EXACT_COUNT_CHARS
    counts = []
    for system, user in texts:
        messages = ([Message("system", system)] if system else []) + [Message("user", user)]
        counts.append(
            tokens.count_messages(messages) if exact else tokens.estimate_messages(messages)
        )
    return counts, exact


def estimate_for(
    *, version: PromptVersion, rows: list[dict[str, str]], targets: list[Target], params: dict
) -> Estimate:
    counts, exact = _token_count(version, rows)
    max_tokens = params.get("max_tokens")
    output = max_tokens or DEFAULT_OUTPUT
    per_target, total, unpriced = [], Decimal(0), 0
    for target in targets:
        preset = target.credential.preset_row
        # Per row: tiered prices depend on each call's prompt size, not the batch's.
        costs = [
            pricing.cost_for(
                provider_id=preset.price_provider,
                preset=preset.key,
                model=target.model,
                local=target.credential.is_local,
                tokens=pricing.Tokens(input=count, output=output, estimated=True),
            ).amount
            for count in counts
        ]
        cost = None if any(c is None for c in costs) else sum(costs, Decimal(0))
        if cost is None:
            unpriced += len(rows)
        else:
            total += cost
        per_target.append(
            TargetEstimate(
                label=f"{target.model} · {target.credential.name}",
                input_tokens=sum(counts),
                output_tokens=output * len(rows),
                cost=cost,
                local=target.credential.is_local,
            )
        )
    return Estimate(
        rows=len(rows),
        cells=len(rows) * len(targets),
        targets=per_target,
        total=total,
        unpriced_cells=unpriced,
        output_assumed=output,
        output_is_limit=bool(max_tokens),
        counted_exactly=exact,
    )


@dataclass(frozen=True)
class Checked:
    rows: list[dict[str, str]]
    targets: list[Target]
    params: dict
    estimate: Estimate


def batch_check(
    *, actor, template: PromptTemplate, version: PromptVersion, rows, targets, params=None
) -> Checked:
    """Everything `batch_create` checks, without writing: rows, models, size, parameters, and
    the estimate."""
    require_use_of(actor=actor, template=template)
    if version.template_id != template.pk:
        raise ValidationError({"version": "That version belongs to another prompt."})
    if not version.user_text.strip():
        raise ValidationError(
            {"version": "This version has no user part: a batch sends the user part to each model."}
        )
    owner = _owner(template)
    if not targets:
        raise ValidationError({"targets": "Pick at least one model."})
    if len(targets) > MAX_TARGETS:
        raise ValidationError({"targets": f"At most {MAX_TARGETS} models per batch."})
    checked_targets, seen = [], set()
    for credential, model in targets:
        target = check_target(actor=actor, owner=owner, credential=credential, model=model)
        key = (target.credential.pk, target.model)
        if key in seen:
            raise ValidationError({"targets": f"“{target.model}” is picked twice."})
        seen.add(key)
        checked_targets.append(target)
    params = {**version.params, **clean_params(params)}
    rows = rows_check(version=version, rows=rows)
    if len(rows) * len(checked_targets) > MAX_CELLS:
        raise ValidationError(
            {
                "rows": f"{len(rows):,} rows × {len(checked_targets)} models is more than "
                f"{MAX_CELLS:,} cells; split the table."
            }
        )
    estimate = estimate_for(version=version, rows=rows, targets=checked_targets, params=params)
    return Checked(rows, checked_targets, params, estimate)


def batch_create(
    *,
    actor,
    template: PromptTemplate,
    version: PromptVersion,
    rows,
    targets,
    params=None,
    title: str = "",
) -> BatchRun:
    """Check, write the batch with all its cells pending, and start it in the background."""
    checked = batch_check(
        actor=actor, template=template, version=version, rows=rows, targets=targets, params=params
    )
    title = (title or "").strip()[:200]
    batch = BatchRun(
        template=template,
        version=version,
        title=title,
        created_by=actor,
        columns=[Variable.from_dict(v).name for v in version.variables],
        targets=[t.as_json() for t in checked.targets],
        params=checked.params,
        row_count=len(checked.rows),
        cell_count=len(checked.rows) * len(checked.targets),
        estimate=checked.estimate.total,
        estimate_unpriced=checked.estimate.unpriced_cells,
    )
    batch.set_owner(_owner(template))
    with transaction.atomic():
        batch.save()
        BatchRow.objects.bulk_create(
            [BatchRow(batch=batch, index=i, values=values) for i, values in enumerate(checked.rows)]
        )
        BatchCell.objects.bulk_create(
            [
                BatchCell(batch=batch, row_index=r, target_index=t)
                for r in range(len(checked.rows))
                for t in range(len(checked.targets))
            ]
        )
        transaction.on_commit(lambda: _start(batch.pk))
    return batch


def _start(batch_id: int) -> None:
    from prompts.tasks import batch_drive

    batch_drive.enqueue(batch_id)


def batch_cancel(*, actor, batch: BatchRun) -> BatchRun:
    """Stop a batch: pending cells are cancelled now; cells running in a live worker are stopped
    by it within seconds (their calls end as `stopped` in the ledger). With no live worker, the
    batch ends at once."""
    require_use_of(actor=actor, template=batch.template)
    if not batch.is_active:
        raise ValidationError("This batch has already finished.")
    now = timezone.now()
    with transaction.atomic():
        locked = BatchRun.objects.select_for_update().get(pk=batch.pk)
        locked.cancel_requested = True
        fields = ["cancel_requested"]
        BatchCell.objects.filter(batch=locked, status=CellStatus.PENDING).update(
            status=CellStatus.CANCELLED, finished_at=now
        )
        # A cell whose lease ran out has nobody working on it.
        BatchCell.objects.filter(
            batch=locked, status=CellStatus.RUNNING, lease_until__lt=now
        ).update(status=CellStatus.CANCELLED, finished_at=now, lease_holder=None, lease_until=None)
        if not locked.driven_until or locked.driven_until < now:
            locked.status = BatchStatus.CANCELLED
            locked.finished_at = now
            fields += ["status", "finished_at"]
        locked.save(update_fields=fields)
    return locked


def batch_delete(*, actor, batch: BatchRun) -> None:
    """Delete a finished batch and its results (the ledger keeps its rows)."""
    access.require(actor, batch, Action.MANAGE if batch.owner_team_id else Action.WRITE)
    if batch.is_active:
        raise ValidationError("Cancel the batch before deleting it.")
    batch.delete()


def lease_seconds() -> float:
    return float(getattr(settings, "WORKBENCH_BATCH_LEASE_SECONDS", 60))


def concurrency() -> int:
    return int(getattr(settings, "WORKBENCH_BATCH_CONCURRENCY", 4))
