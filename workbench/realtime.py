"""Account events for open websockets: a session logged out, a user's access changed.

Sockets join `session-<key>` and `user-<id>` groups; services call these after the change is
committed, and the sockets close or re-check their access rule."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def session_group(session_key: str) -> str:
    return f"session-{session_key}"


def user_group(user_id: int) -> str:
    return f"user-{user_id}"


def _send(group: str, event: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, event)
    except Exception:  # a notification must never break the change that caused it
        logger.exception("Could not notify %s", group)


def session_ended(session_key: str) -> None:
    _send(session_group(session_key), {"type": "session.ended"})


def user_signed_out(*user_ids: int) -> None:
    """After the current transaction commits: close every socket of these users, whatever their
    session (password changed or reset, account deactivated). Consumers close with 4401 as on
    logout; a tab whose session is still valid may reconnect, others can't."""

    def send():
        for user_id in user_ids:
            _send(user_group(user_id), {"type": "session.ended"})

    transaction.on_commit(send)


def access_changed(*user_ids: int) -> None:
    """After the current transaction commits: the users' sockets re-check what they may see."""

    def send():
        for user_id in user_ids:
            _send(user_group(user_id), {"type": "access.changed"})

    transaction.on_commit(send)
