"""Read-only share links: anyone with the link sees the conversation's visible path, as it is
now, with no account. The token is the only key — ids never appear in the shared page or its
URL — and revoking ends the link at once. Costs and credential (key) names are hidden unless
the owner opts in."""

from __future__ import annotations

import secrets

from django.db import transaction
from django.http import Http404
from django.utils import timezone

from accounts import access
from chats.models import Conversation, ShareLink
from chats.organisation import delete_action

TOKEN_BYTES = 24  # 192 bits, 32 URL-safe characters


def share_action(conversation: Conversation):
    """Publishing a conversation outside the team is as weighty as deleting it: its owner, or
    a team admin for a team chat."""
    return delete_action(conversation)


def share_link_active(*, conversation: Conversation) -> ShareLink | None:
    return conversation.shares.filter(revoked_at__isnull=True).first()


@transaction.atomic
def share_link_create(
    *, actor, conversation: Conversation, show_costs: bool = False, show_key_names: bool = False
) -> ShareLink:
    """The conversation's link (one active link at a time: a new one replaces the old, whose
    URL stops working)."""
    access.require(actor, conversation, share_action(conversation))
    Conversation.objects.select_for_update().filter(pk=conversation.pk).first()
    conversation.shares.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
    return ShareLink.objects.create(
        conversation=conversation,
        token=secrets.token_urlsafe(TOKEN_BYTES),
        created_by=actor,
        show_costs=bool(show_costs),
        show_key_names=bool(show_key_names),
    )


def share_link_revoke(*, actor, conversation: Conversation) -> int:
    """Revoke the conversation's active link(s). Returns how many were revoked."""
    access.require(actor, conversation, share_action(conversation))
    return conversation.shares.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


def share_link_for_token(*, token: str) -> ShareLink:
    """The active link with this token, for anyone (no account); 404 for a revoked, unknown or
    malformed token."""
    if not isinstance(token, str) or not 20 <= len(token) <= 64:
        raise Http404
    link = (
        ShareLink.objects.select_related("conversation")
        .filter(token=token, revoked_at__isnull=True)
        .first()
    )
    if link is None:
        raise Http404
    return link
