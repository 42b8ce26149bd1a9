"""Emails about accounts: notices to people, built from WORKBENCH_SITE_URL (never from a
request's Host) and sent after the change that caused them has committed. A mail server that
is down is logged, never an error for the person making the change."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)


def _send_after_commit(*, to: str, template: str, context: dict) -> None:
    context = {"site_url": settings.WORKBENCH_SITE_URL, **context}
    subject = render_to_string(f"accounts/emails/{template}_subject.txt", context)
    body = render_to_string(f"accounts/emails/{template}.txt", context)

    def send():
        try:
            send_mail(" ".join(subject.split()), body, None, [to])
        except Exception:  # the change stands; the operator sees why the notice didn't go
            logger.exception("Could not send the %s email", template)

    transaction.on_commit(send)


def email_changed_notice(*, user, old_email: str, new_email: str) -> None:
    """Tell the OLD address that the account's email changed: if someone else did it, this is
    how the owner finds out while they can still act."""
    if old_email:
        _send_after_commit(
            to=old_email,
            template="email_changed",
            context={"user": user, "old_email": old_email, "new_email": new_email},
        )


def invitation_notice(*, invitation) -> None:
    """Tell an invitee with an email address that an invitation waits for them in the app. The
    inviter never learns whether this was sent."""
    invitee = invitation.invitee
    if invitee is not None and invitee.email:
        _send_after_commit(
            to=invitee.email,
            template="invitation",
            context={"invitation": invitation, "invitee": invitee},
        )


def signup_confirm_link(*, to: str, username: str, token: str, approval: bool = False) -> None:
    """The confirmation link; with `approval` (sign-up mode `approve`) the email says that an
    administrator approves the account after that."""
    _send_after_commit(
        to=to,
        template="signup_confirm",
        context={"username": username, "token": token, "approval": approval},
    )


def signup_existing_account(*, to: str, user) -> None:
    """Someone signed up with an address that already has an account: tell its owner (and only
    them) instead of telling the person on the sign-up page."""
    _send_after_commit(to=to, template="signup_existing", context={"user": user})


def signup_username_taken(*, to: str, username: str) -> None:
    _send_after_commit(to=to, template="signup_taken", context={"username": username})
