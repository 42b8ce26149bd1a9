"""Times as people read them (issue 9, bug 21: "Listed 0 minutes ago")."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from workbench.templatetags.timefmt import ago, local


def test_under_a_minute_is_just_now_never_zero_minutes():
    now = timezone.now()
    assert ago(now) == "just now"
    assert ago(now - timedelta(seconds=59)) == "just now"
    assert ago(now - timedelta(minutes=3, seconds=5)) == "3\xa0minutes ago"
    assert ago(now + timedelta(days=2, hours=1)) == "in 2\xa0days"
    assert ago(None) == ""


def test_local_names_the_viewers_zone():
    import zoneinfo

    moment = timezone.now().replace(year=2031, month=12, day=1, hour=8, minute=30)
    with timezone.override(zoneinfo.ZoneInfo("Europe/Paris")):
        assert local(moment) == "2031-12-01 09:30 CET"
