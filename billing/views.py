"""Pages of billing: the Usage dashboard (and its CSV and calls), Settings → Budgets, the
notifications (the bell). Thin: validate, call one service or selector, render."""

from __future__ import annotations

import csv
import io
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts import access
from accounts.access import Action
from accounts.views import _form_errors
from billing import (
    ledger_pages,
    money,
    notifications,
    selectors,
    services,
    usage,
    usage_charts,
    usage_figures,
    windows,
)
from billing.forms import BudgetForm, UsageFilterForm


@login_required
def budget_list(request):
    budgets = selectors.budgets_for_user(user=request.user)
    statuses = selectors.budget_statuses(user=request.user, budgets=budgets)
    return render(
        request,
        "billing/budgets.html",
        {"statuses": statuses, "tab": "budgets"},
    )


def _form_context(request, form, **extra) -> dict:
    return {"form": form, "tab": "budgets", "zones": sorted(windows.zone_names()), **extra}


@login_required
def budget_add(request):
    initial = {"time_zone": "UTC", "thresholds": "50, 80, 100", "hard": True}
    if request.team is not None and access.allows(request.user, request.team, Action.MANAGE):
        initial["owner_team"] = request.team.pk
    form = BudgetForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            budget = services.budget_create(actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"Budget “{budget.name or 'new budget'}” saved.")
            return redirect("billing:budget_list")
    return render(
        request,
        "billing/budget_form.html",
        _form_context(request, form, adding=True),
        status=400 if request.method == "POST" else 200,
    )


@login_required
def budget_edit(request, pk):
    budget = selectors.budget_for_user(user=request.user, pk=pk, action=Action.MANAGE)
    initial = {
        "name": budget.name,
        "user": budget.user_id,
        "credential": budget.credential_id,
        "preset": budget.preset,
        "model": budget.model,
        "period": budget.period,
        "time_zone": budget.time_zone,
        "limit": budget.limit,
        "hard": budget.hard,
        "thresholds": ", ".join(map(str, budget.thresholds)),
    }
    form = BudgetForm(request.POST or None, user=request.user, initial=initial, editing=True)
    if request.method == "POST" and form.is_valid():
        try:
            services.budget_update(actor=request.user, budget=budget, **form.cleaned_data)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, "Budget saved.")
            return redirect("billing:budget_list")
    return render(
        request,
        "billing/budget_form.html",
        _form_context(request, form, budget=budget),
        status=400 if request.method == "POST" else 200,
    )


@login_required
def budget_delete(request, pk):
    budget = selectors.budget_for_user(user=request.user, pk=pk, action=Action.MANAGE)
    if request.method == "POST":
        services.budget_delete(actor=request.user, budget=budget)
        messages.success(request, "Budget deleted.")
        return redirect("billing:budget_list")
    [status] = selectors.budget_statuses(user=request.user, budgets=[budget])
    return render(request, "billing/budget_delete.html", {"status": status, "tab": "budgets"})


@login_required
def notification_list(request):
    page = Paginator(notifications.notifications_for_user(user=request.user), 30).get_page(
        request.GET.get("page")
    )
    return render(request, "billing/notifications.html", {"page": page})


@login_required
@require_POST
def notifications_read(request):
    notifications.notifications_mark_read(user=request.user)
    target = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("billing:notification_list")
    return redirect(target)


# --- The Usage dashboard -------------------------------------------------------------------------


def _usage_query(request) -> tuple[UsageFilterForm, usage.UsageQuery]:
    """The filters from the query string. A foreign team, member or credential id is a 404
    (never a silent "all"); a bad date range is a form error, and the default period is shown."""
    data = request.GET.copy()
    if "team" not in data:  # a first visit shows the team the switcher is on
        data["team"] = str(request.team.pk) if request.team is not None else ""
    form = UsageFilterForm(data, user=request.user)
    form.is_valid()
    cleaned = form.cleaned_data
    custom_ok = "__all__" not in form.errors
    query = usage.usage_query_for(
        user=request.user,
        team=cleaned.get("team"),
        member=cleaned.get("user") or None,
        credential=cleaned.get("credential") or None,
        preset=cleaned.get("provider") or "",
        model=cleaned.get("model") or "",
        feature=cleaned.get("feature") or "",
        status=cleaned.get("status") or "",
        period=cleaned.get("period", usage.DEFAULT_PERIOD) if custom_ok else usage.DEFAULT_PERIOD,
        start=cleaned.get("start"),
        end=cleaned.get("end"),
    )
    return form, query


def _usage_context(request, form, query) -> dict:
    return {
        "form": form,
        "query": query,
        "params": query.as_params(),
        "zone": usage.zone_name(),
        "teams": usage.usage_team_choices(user=request.user),
        "members": usage.usage_members_for(user=request.user, team=query.team),
        "credentials": usage.usage_credentials_for(user=request.user, team=query.team),
        "provider_label": selectors.preset_labels().get(query.preset, query.preset),
        "nav_active": "usage",
    }


@login_required
def usage_index(request):
    """The dashboard: figures, charts and notices from the rollups; a GET form (htmx swaps the
    results in place; without script it is a plain form)."""
    form, query = _usage_query(request)
    services.usage_settle_stale()  # a dead process's calls count before we add up
    figures = usage_figures.usage_figures(q=query)
    context = _usage_context(request, form, query) | {
        "figures": figures,
        "charts": usage_charts.usage_charts(figures=figures),
        "notices": usage_figures.usage_notices(q=query),
        "ever_used": not figures.empty or usage.usage_has_any(user=request.user, team=query.team),
    }
    status = 400 if form.errors else 200
    if request.htmx and request.GET.get("partial") == "results":
        context["oob"] = True
        response = render(request, "billing/usage.html#results", context, status=status)
        # The address bar shows the filters (shareable, reloadable), not the fragment's.
        response["HX-Push-Url"] = f"{request.path}?{urlencode(query.as_params())}"
        return response
    return render(request, "billing/usage.html", context, status=status)


def _csv_cell(value):
    """Text must not become a formula in a spreadsheet (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


USAGE_CSV_FIELDS = [
    "provider",
    "model",
    "calls",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "reasoning_tokens",
    "cost_usd",
    "estimated_cost_usd",
    "estimated_calls",
    "unpriced_calls",
    "local_calls",
    "cost",
    "avg_ttft_ms",
    "tokens_per_second",
    "first_day",
    "last_day",
]


@login_required
def usage_export(request):
    """The per-model table as CSV, for the same filters."""
    form, query = _usage_query(request)
    if form.errors:
        raise BadRequest(" ".join(str(e) for errors in form.errors.values() for e in errors))
    services.usage_settle_stale()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(USAGE_CSV_FIELDS)
    for row in usage_figures.usage_by_model(q=query):
        ttft, tps = row.avg_ttft_ms, row.tokens_per_second
        writer.writerow(
            [
                _csv_cell(value)
                for value in (
                    row.provider,
                    row.model,
                    row.calls,
                    row.errors,
                    row.input_tokens,
                    row.output_tokens,
                    row.cache_read_tokens,
                    row.reasoning_tokens,
                    money.decimal_str(row.cost),
                    money.decimal_str(row.estimated_cost),
                    row.estimated_calls,
                    row.unpriced_calls,
                    row.local_calls,
                    row.cost_label,
                    "" if ttft is None else f"{ttft:.1f}",
                    "" if tps is None else f"{tps:.1f}",
                    query.start.isoformat(),
                    query.end.isoformat(),
                )
            ]
        )
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    name = f"usage-{query.start:%Y%m%d}-{query.end:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
def usage_calls(request):
    """The ledger rows behind the figures, newest first, a page at a time (keyset cursor)."""
    form, query = _usage_query(request)
    before = None
    if request.GET.get("before"):
        before = ledger_pages.parse_cursor(request.GET["before"])
        if before is None:
            raise BadRequest("That page link is not valid; start from the first page.")
    services.usage_settle_stale()
    page = ledger_pages.usage_calls(q=query, before=before)
    context = _usage_context(request, form, query) | {"page": page, "first_page": before is None}
    return render(request, "billing/usage_calls.html", context, status=400 if form.errors else 200)
