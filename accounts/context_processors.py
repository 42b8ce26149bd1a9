from accounts import selectors


def workbench(request):
    """What the base layout needs: the team switcher, the count of invitations waiting for an
    answer, and whether sign-up is open."""
    user = getattr(request, "user", None)
    from accounts.services import signup_mode

    context = {"signup_enabled": signup_mode() != "closed"}
    if user is not None and user.is_authenticated:
        context["current_team"] = getattr(request, "team", None)
        context["my_teams"] = list(selectors.teams_for_user(user=user))
        context["pending_invitations"] = selectors.pending_invitation_count(user=user)
    return context
