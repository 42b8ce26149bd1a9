"""A batch's result matrix as a file: CSV (one line per row × model, the row's variables first)
or JSON (rows with their variables and one result per model). A batch has at most
batches.MAX_CELLS cells, so the file is built whole (a streamed response would be consumed whole
by the ASGI handler anyway); cells are read a page at a time.

Spreadsheet programs run a cell that starts with `=`, `+`, `-`, `@`, tab or carriage return as a
formula; model output can start with anything, so such cells get a leading `'` in the CSV (the
JSON keeps the text exactly)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from django.db.models import Q
from django.http import HttpResponse

from billing import money
from prompts.models import BatchCell, BatchRun

PAGE = 500
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _cells(batch: BatchRun) -> Iterator[BatchCell]:
    last = (-1, -1)
    while True:
        page = list(
            BatchCell.objects.filter(batch=batch)
            .filter(Q(row_index__gt=last[0]) | Q(row_index=last[0], target_index__gt=last[1]))
            .order_by("row_index", "target_index")[:PAGE]
        )
        if not page:
            return
        yield from page
        last = (page[-1].row_index, page[-1].target_index)


def _rows(batch: BatchRun) -> dict[int, dict]:
    return dict(batch.rows.values_list("index", "values"))


def _target_label(target: dict) -> str:
    return f"{target['model']} · {target['credential_name']}"


def _csv(batch: BatchRun) -> Iterator[str]:
    rows = _rows(batch)
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(
        [
            "row",
            *batch.columns,
            "model",
            "credential",
            "status",
            "output",
            "input_tokens",
            "output_tokens",
            "tokens_estimated",
            "cost_usd",
            "cost_source",
            "ttft_ms",
            "duration_ms",
            "error_code",
            "error_message",
        ]
    )
    yield "\ufeff" + flush()  # a BOM so spreadsheet programs read UTF-8
    for cell in _cells(batch):
        values = rows.get(cell.row_index, {})
        target = batch.targets[cell.target_index]
        writer.writerow(
            [
                cell.row_index + 1,
                *(_safe(values.get(column, "")) for column in batch.columns),
                _safe(target["model"]),
                _safe(target["credential_name"]),
                cell.status,
                _safe(cell.output),
                "" if cell.input_tokens is None else cell.input_tokens,
                "" if cell.output_tokens is None else cell.output_tokens,
                "yes" if cell.tokens_estimated else "no",
                money.decimal_str(cell.cost) or "",
                cell.cost_source,
                "" if cell.ttft_ms is None else round(cell.ttft_ms),
                "" if cell.duration_ms is None else round(cell.duration_ms),
                cell.error_code,
                _safe(cell.error_message),
            ]
        )
        yield flush()


def _json(batch: BatchRun) -> Iterator[str]:
    rows = _rows(batch)
    head = {
        "batch": batch.pk,
        "prompt": batch.template_id,
        "version": batch.version.number,
        "status": batch.status,
        "models": [
            {"model": t["model"], "credential": t["credential_name"], "label": _target_label(t)}
            for t in batch.targets
        ],
        "params": batch.params,
    }
    yield json.dumps(head, ensure_ascii=False)[:-1] + ', "rows": ['
    current, results, first = None, [], True

    def row_doc(index: int, results: list) -> str:
        doc = {"row": index + 1, "variables": rows.get(index, {}), "results": results}
        return ("" if first else ",") + json.dumps(doc, ensure_ascii=False)

    for cell in _cells(batch):
        if current is not None and cell.row_index != current:
            yield row_doc(current, results)
            first, results = False, []
        current = cell.row_index
        results.append(
            {
                "model": batch.targets[cell.target_index]["model"],
                "status": cell.status,
                "output": cell.output,
                "input_tokens": cell.input_tokens,
                "output_tokens": cell.output_tokens,
                "tokens_estimated": cell.tokens_estimated,
                "cost": money.decimal_str(cell.cost),
                "cost_source": cell.cost_source,
                "ttft_ms": cell.ttft_ms,
                "duration_ms": cell.duration_ms,
                "error_code": cell.error_code,
                "error_message": cell.error_message,
            }
        )
    if current is not None:
        yield row_doc(current, results)
    yield "]}"


def batch_export_response(*, batch: BatchRun, fmt: str | None) -> HttpResponse:
    """The caller has checked `batch` is readable."""
    if fmt == "json":
        response = HttpResponse("".join(_json(batch)), content_type="application/json")
    else:
        fmt = "csv"
        response = HttpResponse("".join(_csv(batch)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="batch-{batch.pk}.{fmt}"'
    return response
