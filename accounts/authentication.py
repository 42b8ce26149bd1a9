"""`Authorization: Bearer <token>` for the REST API, with failed attempts throttled per client."""

from __future__ import annotations

from django.core.cache import cache
from rest_framework import authentication, exceptions
from rest_framework.throttling import BaseThrottle

from accounts import services

FAILED_LIMIT = 10  # failed token attempts per client address per window
FAILED_WINDOW = 60  # seconds


def _client_key(request) -> str:
    # DRF's client identity honours NUM_PROXIES (set when WORKBENCH_BEHIND_PROXY), so clients
    # behind our proxy are told apart rather than sharing the proxy's address.
    return f"failed-token:{BaseThrottle().get_ident(request)}"


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, raw = header.partition(" ")
        if keyword.lower() != self.keyword.lower():
            return None
        key = _client_key(request)
        failures = cache.get(key, 0)
        if failures >= FAILED_LIMIT:
            raise exceptions.Throttled(
                wait=FAILED_WINDOW, detail="Too many failed token attempts; try again later."
            )
        token = services.token_authenticate(raw=raw.strip())
        if token is None:
            # add() creates the window; incr() counts within it.
            if not cache.add(key, 1, FAILED_WINDOW):
                try:
                    cache.incr(key)
                    # The database cache's incr rewrites the expiry; keep the window fixed.
                    cache.touch(key, FAILED_WINDOW)
                except ValueError:
                    cache.set(key, 1, FAILED_WINDOW)
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        return token.user, token

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
