"""Times as people read them: `{{ when|ago }}` ("just now", "3 minutes ago") and
`{{ when|local }}` (the viewer's time zone, named). Times are shown in the time zone the request
activated (accounts.middleware.TimeZoneMiddleware), so every page agrees with the profile."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.timesince import timesince, timeuntil

register = template.Library()


@register.filter
def ago(value: datetime | None) -> str:
    """'just now' under a minute (never "0 minutes ago"), else '3 minutes ago' / 'in 2 days'."""
    if not value:
        return ""
    delta = (timezone.now() - value).total_seconds()
    if abs(delta) < 60:
        return "just now"
    if delta < 0:
        return f"in {timeuntil(value)}"
    return f"{timesince(value)} ago"


@register.filter
def local(value: datetime | None, fmt: str = "Y-m-d H:i") -> str:
    """The time in the viewer's zone, with the zone's abbreviation: '2026-12-01 09:30 CET'."""
    if not value:
        return ""
    value = timezone.localtime(value)
    return f"{date_format(value, fmt)} {value.tzname()}"
