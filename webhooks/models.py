"""Events for outgoing webhooks. Any app emits one through `webhooks.services.event_emit`; the
delivery side (endpoints, signed deliveries, Slack format) reads this outbox later.

webhooks knows only accounts (DESIGN §3): an event has a type, an owner and a small payload."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.ownership import Owned


class Event(Owned):
    type = models.CharField(max_length=60)  # e.g. budget.threshold_crossed, budget.exceeded
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta(Owned.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner_team", "-created_at"]),
            models.Index(fields=["owner_user", "-created_at"]),
        ]

    def __str__(self) -> str:
        return self.type
