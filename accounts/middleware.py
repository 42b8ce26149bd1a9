import zoneinfo
from functools import lru_cache
from urllib.parse import unquote

from django.utils import timezone

from accounts import selectors

SESSION_KEY = "current_team_id"


class CurrentTeamMiddleware:
    """`request.team`: the team picked in the switcher (None = personal), checked against the
    user's memberships on every request so a removed member drops back to personal at once.
    Costs one query, and only when a team is picked."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        team_id = request.session.get(SESSION_KEY)
        request.team = None
        if team_id:
            request.team = selectors.current_team(user=request.user, team_id=team_id)
            if request.team is None:
                request.session.pop(SESSION_KEY, None)
        return self.get_response(request)


TIME_ZONE_COOKIE = "wb_tz"


@lru_cache(maxsize=1)
def time_zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def zone_named(name: str | None) -> zoneinfo.ZoneInfo | None:
    """The zone with this IANA name, or None for anything else (a cookie is user input)."""
    if not name or name not in time_zone_names():
        return None
    return zoneinfo.ZoneInfo(name)


class TimeZoneMiddleware:
    """Activate the viewer's time zone for the request: the one in their profile, else the
    browser's (a cookie theme.js sets), else the server's TIME_ZONE. Templates, forms
    (datetime inputs are read in it) and `|local` then agree."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        chosen = user.time_zone if user is not None and user.is_authenticated else ""
        browser = unquote(request.COOKIES.get(TIME_ZONE_COOKIE, ""))
        zone = zone_named(chosen) or zone_named(browser)
        request.browser_time_zone = browser if zone_named(browser) else ""
        if zone is not None:
            timezone.activate(zone)
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
