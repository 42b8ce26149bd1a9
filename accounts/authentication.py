"""`Authorization: Bearer <token>` for the REST API, with failed attempts throttled per client."""

from __future__ import annotations

from rest_framework import authentication, exceptions

from accounts import services, throttles
from workbench.proxies import address_key, client_address

# Failed token attempts per client address per window. A valid token is never refused because
# of failures: tokens carry 256 random bits, so the throttle is not what keeps them secret; it
# makes a misbehaving script or a scanner back off (429 + Retry-After) instead of hammering us.
FAILED_TOKENS = throttles.Limit("failed-token", limit=10, window=60)
FAILED_LIMIT = FAILED_TOKENS.limit
FAILED_WINDOW = FAILED_TOKENS.window


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, raw = header.partition(" ")
        if keyword.lower() != self.keyword.lower():
            return None
        token = services.token_authenticate(raw=raw.strip())
        if token is not None:
            return token.user, token
        # Keyed by the socket address (or what our own trusted proxies say): a client cannot
        # rotate X-Forwarded-For to escape the count, nor spoof someone else into it.
        counted = throttles.hit(FAILED_TOKENS, address_key(client_address(request)))
        if counted.over(FAILED_TOKENS):
            raise exceptions.Throttled(
                wait=counted.retry_after, detail="Too many failed token attempts; try again later."
            )
        raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")

    def authenticate_header(self, request):
        return self.keyword


try:  # Describe the scheme in the OpenAPI schema (Swagger's "Authorize" button).
    from drf_spectacular.extensions import OpenApiAuthenticationExtension

    class BearerTokenScheme(OpenApiAuthenticationExtension):
        target_class = "accounts.authentication.BearerTokenAuthentication"
        name = "bearerAuth"

        def get_security_definition(self, auto_schema):
            return {
                "type": "http",
                "scheme": "bearer",
                "description": "An API token from Settings → API tokens (`wb_…`).",
            }
except ImportError:  # pragma: no cover - drf-spectacular is a hard dependency
    pass
