"""In-app notifications (the bell): budget alerts today; any app to the right of billing may add
its own through `notification_create`."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from billing.models import Notification


def notification_create(
    *, user, kind: str, title: str, body: str = "", url: str = ""
) -> Notification:
    return Notification.objects.create(
        user=user, kind=kind, title=title[:200], body=body[:1000], url=url[:300]
    )


def notifications_for_user(*, user) -> QuerySet[Notification]:
    return Notification.objects.filter(user_id=user.pk)


def notifications_unread_count(*, user) -> int:
    """One indexed count (a partial index on unread rows), for the bell on every page."""
    if not user.is_authenticated:
        return 0
    return Notification.objects.filter(user_id=user.pk, read_at__isnull=True).count()


def notifications_mark_read(*, user, ids: list[int] | None = None) -> int:
    """Mark the user's unread notifications read (all, or those `ids` among them)."""
    unread = Notification.objects.filter(user_id=user.pk, read_at__isnull=True)
    if ids is not None:
        unread = unread.filter(pk__in=ids)
    return unread.update(read_at=timezone.now())
