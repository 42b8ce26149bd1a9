from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.models import ApiToken, TokenScope


class TokenScopeAllows(BasePermission):
    """A read-only token may only read. Session requests are not limited here (CSRF guards them)."""

    message = "This token is read-only; create a read-write token to make changes."

    def has_permission(self, request, view):
        token = request.auth
        if isinstance(token, ApiToken) and token.scope == TokenScope.READ:
            return request.method in SAFE_METHODS
        return True


class SessionOnly(BasePermission):
    """For what controls the account itself (its tokens): a person signed in with a browser
    session, never an API token. A token acts for a script, so a leaked token must not be able
    to mint a longer-lived one, list its siblings or revoke the owner's other tokens."""

    message = (
        "API tokens can't create, list or revoke tokens. Use Settings → API tokens in the app "
        "(or the API with a browser session)."
    )

    def has_permission(self, request, view):
        self.message = getattr(view, "session_only_message", self.message)
        return not isinstance(request.auth, ApiToken)
