"""Settings → Users, for superusers: approve waiting accounts, disable or enable an account,
force a password reset. Anyone else gets 404."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import administration
from accounts.services import signup_mode

PAGE_SIZE = 50


@login_required
def user_list(request):
    administration.require_superuser(request.user)
    q, status = request.GET.get("q", "")[:100], request.GET.get("status", "")
    users = administration.users_for_admin(actor=request.user, q=q, status=status)
    page = Paginator(users, PAGE_SIZE).get_page(request.GET.get("page"))
    waiting = administration.users_for_admin(actor=request.user, status="waiting").count()
    return render(
        request,
        "accounts/user_list.html",
        {
            "page": page,
            "q": q,
            "status": status,
            "waiting_count": waiting,
            "signup_mode": signup_mode(),
            "tab": "users",
        },
    )


def _back(request):
    """To the list as it was (a same-site `next` only)."""
    target = request.POST.get("next") or ""
    if not (target.startswith("/settings/users/") and "//" not in target):
        target = "accounts:user_list"
    return redirect(target)


def _act(request, pk, action, done: str):
    user = administration.user_for_admin(actor=request.user, pk=pk)
    try:
        result = action(actor=request.user, user=user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, done.format(user=user, result=result))
    return _back(request)


@login_required
@require_POST
def user_approve(request, pk):
    return _act(
        request, pk, administration.user_approve, "Approved {user.username}: they can log in now."
    )


@login_required
@require_POST
def user_disable(request, pk):
    return _act(
        request,
        pk,
        administration.user_disable,
        "Disabled {user.username}: their sessions, tokens and open pages stop working.",
    )


@login_required
@require_POST
def user_enable(request, pk):
    return _act(request, pk, administration.user_enable, "Enabled {user.username}.")


@login_required
@require_POST
def user_password_reset(request, pk):
    user = administration.user_for_admin(actor=request.user, pk=pk)
    try:
        mailed = administration.user_force_password_reset(
            actor=request.user, user=user, request=request
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            f"{user.username}'s password no longer works and they are signed out everywhere. "
            + (
                f"A link to choose a new one went to {user.email}."
                if mailed
                else "They have no email address: set a password for them in /admin/."
            ),
        )
    return _back(request)
