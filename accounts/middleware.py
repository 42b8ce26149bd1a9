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
