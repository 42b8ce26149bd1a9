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
