"""Batch pages: the new-batch form (rows typed or from a CSV, models, an estimate before it runs),
a batch's progress and result matrix (rows × models) with Cancel and CSV/JSON export."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import access
from accounts.access import Action
from billing.services import usage_settle_stale
from prompts import batches, exports, selectors
from prompts.forms import BatchForm
from prompts.services import require_use_of
from prompts.variables import Variable
from providers import selectors as provider_selectors

NAV = "prompts"
ROWS_SHOWN = 3  # empty rows in a new table
MAX_TYPED_ROWS = 200  # rows typed on the page; more come as a CSV file
ROWS_PER_PAGE = 50


def _version_choices(template) -> list[tuple[str, str]]:
    labels = {}
    for label in selectors.labels_of(template=template):
        labels.setdefault(label.version.number, []).append(label.name)
    return [
        (
            str(v.number),
            f"v{v.number}" + (f" ({', '.join(labels[v.number])})" if v.number in labels else ""),
        )
        for v in selectors.versions_of(template=template)[:200]
    ]


def _typed_rows(data, variables: list[Variable]) -> list[dict]:
    """The page's table: `row-<i>-<name>` inputs; rows left entirely empty are skipped."""
    indices = sorted(
        {
            int(key.split("-")[1])
            for key in data
            if key.startswith("row-") and key.count("-") >= 2 and key.split("-")[1].isdigit()
        }
    )
    if len(indices) > MAX_TYPED_ROWS:
        raise ValidationError(
            {"rows": f"Type at most {MAX_TYPED_ROWS} rows here; upload a CSV for more."}
        )
    rows = []
    for index in indices:
        row = {v.name: data.get(f"row-{index}-{v.name}", "") for v in variables}
        if any(value.strip() for value in row.values()):
            rows.append(row)
    return rows


def _example_rows(variables: list[Variable]) -> list[dict]:
    first = {v.name: v.example for v in variables}
    return [first] + [{v.name: "" for v in variables} for _ in range(ROWS_SHOWN - 1)]


@login_required
def batch_new(request, pk):
    template = selectors.template_for_user(user=request.user, pk=pk)
    require_use_of(actor=request.user, template=template)
    credentials = provider_selectors.chat_credentials_for(
        user=request.user, team=template.owner_team
    )
    form = BatchForm(
        request.POST or None,
        request.FILES or None,
        user=request.user,
        versions=_version_choices(template),
        credentials=credentials,
        initial={"version": str(template.latest_number)},
    )
    ref = request.POST.get("version") or request.GET.get("version") or template.latest_number
    version = selectors.version_resolve(template=template, ref=ref)
    variables = [Variable.from_dict(v) for v in version.variables]
    rows = _example_rows(variables)
    estimate = None
    status = 200
    if request.method == "POST":
        status = 400
        try:
            rows = _typed_rows(request.POST, variables) or rows
            if form.is_valid():
                data = form.cleaned_data
                upload = data.get("csv_file")
                if upload is not None:
                    if upload.size > batches.MAX_CSV_BYTES:
                        raise ValidationError(
                            {
                                "csv_file": f"The CSV file is larger than {batches.MAX_CSV_BYTES // 1048576} MB."
                            }
                        )
                    rows = batches.rows_from_csv(
                        data=upload.read(batches.MAX_CSV_BYTES + 1), version=version
                    )
                elif not _typed_rows(request.POST, variables):
                    raise ValidationError({"rows": "Fill in at least one row, or upload a CSV."})
                inputs = {
                    "actor": request.user,
                    "template": template,
                    "version": version,
                    "rows": rows,
                    "targets": data["targets"],
                    "params": {
                        k: data[k] for k in ("max_tokens", "temperature") if data.get(k) is not None
                    },
                }
                if request.POST.get("intent") == "run":
                    batch = batches.batch_create(**inputs, title=data.get("title") or "")
                    messages.success(
                        request, f"Started a batch of {batch.cell_count} calls in the background."
                    )
                    return redirect("prompts:batch_detail", pk=batch.pk)
                estimate = batches.batch_check(**inputs).estimate
                status = 200
        except ValidationError as exc:
            for field, errors in getattr(exc, "message_dict", {"__all__": exc.messages}).items():
                form.add_error(field if field in form.fields else None, errors)
    return render(
        request,
        "prompts/batch_form.html",
        {
            "template": template,
            "version": version,
            "variables": variables,
            "rows": rows[:MAX_TYPED_ROWS],
            "form": form,
            "estimate": estimate,
            "has_models": bool(form.fields["targets"].choices),
            "nav_active": NAV,
        },
        status=status,
    )


@login_required
def batch_detail(request, pk):
    batch = selectors.batch_for_user(user=request.user, pk=pk)
    usage_settle_stale()  # calls of a worker that died count as interrupted, not running
    progress = selectors.batch_progress(batch=batch)
    rows_page = Paginator(batch.rows.order_by("index"), ROWS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    indices = [row.index for row in rows_page.object_list]
    cells = {}
    if indices:
        for cell in batch.cells.filter(row_index__in=indices):
            cells[(cell.row_index, cell.target_index)] = cell
    matrix = [
        (row, [(target, cells.get((row.index, t))) for t, target in enumerate(batch.targets)])
        for row in rows_page.object_list
    ]
    context = {
        "batch": batch,
        "progress": progress,
        "matrix": matrix,
        "rows_page": rows_page,
        "can_use": access.allows(request.user, batch.template, Action.USE),
        "can_delete": access.allows(
            request.user, batch, Action.MANAGE if batch.owner_team_id else Action.WRITE
        ),
        "nav_active": NAV,
    }
    if request.htmx and request.GET.get("partial") == "live":
        return render(request, "prompts/batch_detail.html#live", context)
    return render(request, "prompts/batch_detail.html", context)


@login_required
@require_POST
def batch_cancel(request, pk):
    batch = selectors.batch_for_user(user=request.user, pk=pk)
    try:
        batches.batch_cancel(actor=request.user, batch=batch)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Cancelling: no new calls start; running ones stop.")
    return redirect("prompts:batch_detail", pk=batch.pk)


@login_required
def batch_delete(request, pk):
    batch = selectors.batch_for_user(user=request.user, pk=pk)
    access.require(request.user, batch, Action.MANAGE if batch.owner_team_id else Action.WRITE)
    if request.method == "POST":
        try:
            batches.batch_delete(actor=request.user, batch=batch)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect("prompts:batch_detail", pk=batch.pk)
        messages.success(request, "Deleted the batch and its results.")
        return redirect("prompts:detail", pk=batch.template_id)
    return redirect("prompts:batch_detail", pk=batch.pk)


@login_required
def batch_export(request, pk, fmt):
    batch = selectors.batch_for_user(user=request.user, pk=pk)
    return exports.batch_export_response(batch=batch, fmt=fmt)
