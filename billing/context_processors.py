from billing.notifications import notifications_unread_count


def bell(request):
    """The bell's unread count on every page (one indexed count for a signed-in user)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"unread_notifications": notifications_unread_count(user=user)}
