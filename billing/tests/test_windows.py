"""Budget windows are derived from the time in the budget's zone: an instant lies in exactly one
day, week and month, across midnight, week starts, month starts and DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing.windows import window_for

PARIS = "Europe/Paris"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "before", "after", "boundary"),
    [
        # Midnight in Paris (UTC+1 in winter) is 23:00 UTC the day before.
        ("day", utc(2026, 1, 14, 22, 59, 59), utc(2026, 1, 14, 23, 0, 0), utc(2026, 1, 14, 23)),
        # Monday 2026-01-19 00:00 Paris.
        ("week", utc(2026, 1, 18, 22, 59, 59), utc(2026, 1, 18, 23, 0, 0), utc(2026, 1, 18, 23)),
        # 1 February 00:00 Paris.
        ("month", utc(2026, 1, 31, 22, 59, 59), utc(2026, 1, 31, 23, 0, 0), utc(2026, 1, 31, 23)),
        # 1 July 00:00 Paris is 22:00 UTC (summer time).
        ("month", utc(2026, 6, 30, 21, 59, 59), utc(2026, 6, 30, 22, 0, 0), utc(2026, 6, 30, 22)),
    ],
)
def test_calls_on_either_side_of_a_boundary_fall_in_adjacent_windows(
    period, before, after, boundary
):
    first = window_for(period, PARIS, before)
    second = window_for(period, PARIS, after)
    assert first[1] == second[0] == boundary
    assert first[0] <= before < first[1]
    assert second[0] <= after < second[1]


def test_a_utc_day_straddling_paris_midnight_splits_into_two_paris_days():
    # 23:30 UTC on the 14th is 00:30 on the 15th in Paris, not the 14th.
    assert window_for("day", PARIS, utc(2026, 1, 14, 23, 30))[0] == utc(2026, 1, 14, 23)
    assert window_for("day", "UTC", utc(2026, 1, 14, 23, 30))[0] == utc(2026, 1, 14)


def test_windows_tile_time_with_no_gap_or_overlap_across_dst_changes():
    for zone in (PARIS, "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"):
        for period in ("day", "week", "month"):
            at = utc(2026, 1, 1)
            start, end = window_for(period, zone, at)
            for _ in range(30 if period == "day" else 14):
                next_start, next_end = window_for(period, zone, end)
                assert next_start == end, (zone, period, end)
                assert window_for(period, zone, end - timedelta(microseconds=1)) == (start, end)
                start, end = next_start, next_end


def test_the_dst_day_is_23_or_25_hours_long():
    spring = window_for("day", PARIS, utc(2026, 3, 29, 12))
    autumn = window_for("day", PARIS, utc(2026, 10, 25, 12))
    assert spring[1] - spring[0] == timedelta(hours=23)
    assert autumn[1] - autumn[0] == timedelta(hours=25)


def test_weeks_start_on_monday_and_months_on_the_first():
    start, end = window_for("week", "UTC", utc(2026, 1, 22, 15))  # a Thursday
    assert (start, end) == (utc(2026, 1, 19), utc(2026, 1, 26))
    start, end = window_for("month", "UTC", utc(2026, 2, 14))
    assert (start, end) == (utc(2026, 2, 1), utc(2026, 3, 1))
    assert window_for("month", "UTC", utc(2026, 12, 31, 23))[1] == utc(2027, 1, 1)
