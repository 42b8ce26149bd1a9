"""Budget periods as windows of time, derived from the time itself (no reset job): the day,
week (from Monday) or month that contains an instant, in the budget's time zone.

Windows are built from local calendar dates at local midnight and converted to UTC instants, so
consecutive windows share their boundary exactly (DST changes included): every instant lies in
exactly one window."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from django.utils import timezone as django_timezone

UTC = ZoneInfo("UTC")


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=1)
def zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def is_zone(name: str) -> bool:
    return name in zone_names()


def _first_day(period: str, day: date) -> date:
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    raise ValueError(f"Unknown budget period: {period}")


def _next_first_day(period: str, first: date) -> date:
    if period == "day":
        return first + timedelta(days=1)
    if period == "week":
        return first + timedelta(days=7)
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def window_for(
    period: str, time_zone: str, at: datetime | None = None
) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the `period` containing `at` in `time_zone`."""
    tz = zone(time_zone)
    at = at or django_timezone.now()
    first = _first_day(period, at.astimezone(tz).date())
    return _midnight(first, tz), _midnight(_next_first_day(period, first), tz)
