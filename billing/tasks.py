"""Background work for billing (django.tasks on the database backend, `manage.py db_worker`)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.tasks import task

from billing.models import Notification


@task
def alert_email_send(*, notification_id: int) -> None:
    """Email one budget alert to its recipient (the email backend from settings)."""
    notification = Notification.objects.select_related("user").filter(pk=notification_id).first()
    if notification is None or not notification.user.email:
        return
    link = notification.url
    base = settings.WORKBENCH_SITE_URL.rstrip("/")
    send_mail(
        f"[Workbench] {notification.title}",
        f"{notification.body}\n\nBudgets: {base}{link}\n",
        None,
        [notification.user.email],
    )
