"""Pages of billing: Settings → Budgets, the notifications (the bell). Thin: validate, call one
service or selector, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts import access
from accounts.access import Action
from accounts.views import _form_errors
from billing import notifications, selectors, services, windows
from billing.forms import BudgetForm


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
