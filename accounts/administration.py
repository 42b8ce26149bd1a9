"""Running the instance, for superusers, in the app: who may sign up (the `approve` mode), the
user list (approve, disable, enable, force a password reset).

Superusers only; anyone else gets 404 (the pages don't exist for them). These act on accounts,
not on tenant data, so they are not tenant rules (accounts.access) but an instance role."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.urls import reverse

from accounts import services
from accounts.models import User
from workbench import realtime

logger = logging.getLogger(__name__)


def require_superuser(user) -> None:
    if not (user.is_authenticated and user.is_active and user.is_superuser):
        raise Http404


# --- Reads ---------------------------------------------------------------------------------------


def users_for_admin(*, actor, q: str = "", status: str = "") -> QuerySet[User]:
    """Every account, waiting ones first, then by name; `q` matches username or email;
    `status`: waiting | disabled | active."""
    require_superuser(actor)
    users = User.objects.annotate(team_count=Count("memberships"))
    q = (q or "").strip()[:100]
    if q:
        users = users.filter(Q(username__icontains=q) | Q(email__icontains=q))
    if status == "waiting":
        users = users.filter(awaiting_approval=True)
    elif status == "disabled":
        users = users.filter(is_active=False, awaiting_approval=False)
    elif status == "active":
        users = users.filter(is_active=True)
    return users.order_by("-awaiting_approval", "username", "pk")


def user_for_admin(*, actor, pk) -> User:
    require_superuser(actor)
    try:
        return User.objects.get(pk=pk)
    except (User.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


# --- Sign-up in `approve` mode ---------------------------------------------------------------------


def user_hold_for_approval(*, user: User) -> User:
    """A new account that can't log in until a superuser approves it (created so by
    `services.signup_confirm` in `approve` mode). Superusers with an email address are told,
    once the account has committed."""
    if user.is_active or not user.awaiting_approval:
        user.is_active = False
        user.awaiting_approval = True
        user.save(update_fields=["is_active", "awaiting_approval"])
    admins = list(
        User.objects.filter(is_superuser=True, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )

    def tell():
        try:
            send_mail(
                "Workbench: a new account waits for approval",
                f"{user.username} <{user.email}> signed up and confirmed the address. Approve "
                f"or refuse it under Settings → Users: {settings.WORKBENCH_SITE_URL}"
                f"{reverse('accounts:user_list')}?status=waiting",
                None,
                admins,
            )
        except Exception:  # a mail server being down must not lose the sign-up
            logger.exception("Could not tell the superusers about a new account")

    if admins:
        transaction.on_commit(tell)
    return user


# --- The user list's actions -----------------------------------------------------------------------


def _check_not_self(actor: User, user: User) -> None:
    # (The actor is an active superuser, so this also keeps at least one of those.)
    if user.pk == actor.pk:
        raise ValidationError("You can’t do that to your own account here.")


def user_approve(*, actor, user: User) -> User:
    require_superuser(actor)
    if not user.awaiting_approval:
        raise ValidationError(f"{user.username} isn't waiting for approval.")
    user.is_active = True
    user.awaiting_approval = False
    user.save(update_fields=["is_active", "awaiting_approval"])
    return user


@transaction.atomic
def user_disable(*, actor, user: User) -> User:
    """No more logins, sessions or API tokens (each checks `is_active`); open sockets close."""
    require_superuser(actor)
    _check_not_self(actor, user)
    user.is_active = False
    user.awaiting_approval = False
    user.save(update_fields=["is_active", "awaiting_approval"])
    services.tokens_forget(user_id=user.pk)
    realtime.user_signed_out(user.pk)  # after the commit
    return user


def user_enable(*, actor, user: User) -> User:
    require_superuser(actor)
    user.is_active = True
    user.awaiting_approval = False
    user.save(update_fields=["is_active", "awaiting_approval"])
    return user


@transaction.atomic
def user_force_password_reset(*, actor, user: User, request=None) -> bool:
    """The password stops working at once (every session of the user ends with it: Django ties
    sessions to the password hash), open sockets close, and a reset link goes to the user's
    email. Returns whether an email could be sent (no address: the superuser sets a password in
    /admin/ or with `manage.py changepassword`)."""
    require_superuser(actor)
    _check_not_self(actor, user)
    user.set_unusable_password()
    user.save(update_fields=["password"])
    realtime.user_signed_out(user.pk)  # after the commit
    if not user.email:
        return False
    form = PasswordResetForm({"email": user.email})
    if form.is_valid():
        # PasswordResetForm mails only users with a usable password; ours just became
        # unusable, so hand it the user directly.
        form.get_users = lambda email: [user]
        form.save(
            request=request,
            use_https=bool(request and request.is_secure()),
            email_template_name="accounts/password_reset_email.txt",
            subject_template_name="accounts/password_reset_subject.txt",
            # The configured address, never one taken from the request (as the reset page does).
            extra_email_context={"site_url": settings.WORKBENCH_SITE_URL},
        )
    return True
