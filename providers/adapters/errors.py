"""Map SDK exceptions (openai, anthropic, groq share one shape; ollama its own) to ProviderError.

Messages come from us, never from the provider's body: bodies can echo headers (a 401 that
repeats the key back) in forms no pattern catches. Users get our code and a short message; what
the provider said is kept, scrubbed, as `detail` for admins (usage row admin field, log)."""

from __future__ import annotations

import re

from providers.adapters.base import ProviderError

_SECRETISH = re.compile(
    r"(sk|pk|rk|gsk|pplx|key|tok)[-_][A-Za-z0-9_\-]{6,}|Bearer\s+\S+", re.IGNORECASE
)


def scrub(text: str, *secrets: str) -> str:
    """Remove anything key-shaped and the given secrets from a provider message."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    text = _SECRETISH.sub("[redacted]", text)
    return text[:300]


def egress_cause(exc: BaseException):
    from workbench.egress import find_egress_error

    return find_egress_error(exc)


def retry_after(headers) -> float | None:
    if not headers:
        return None
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def from_status(status: int, detail: str, *, retry_after: float | None = None) -> ProviderError:
    """Our error for an HTTP status; `detail` (the provider's scrubbed words) is for admins."""
    if status == 429:
        return ProviderError(
            "rate_limited",
            "The provider is rate-limiting requests"
            + (f" (retry after {retry_after:g}s)." if retry_after is not None else "."),
            retryable=True,
            retry_after=retry_after,
            status=status,
            detail=detail,
        )
    if status in (401, 403):
        return ProviderError(
            "auth_failed",
            f"The provider rejected the API key (HTTP {status}).",
            status=status,
            detail=detail,
        )
    if status == 404:
        return ProviderError(
            "not_found",
            "The provider says the model or endpoint does not exist (HTTP 404).",
            status=status,
            detail=detail,
        )
    if 300 <= status < 400:
        return ProviderError(
            "provider_error",
            f"The provider answered with a redirect (HTTP {status}); Workbench does not follow redirects.",
            status=status,
            detail=detail,
        )
    if 400 <= status < 500:
        return ProviderError(
            "bad_request",
            f"The provider rejected the request (HTTP {status}). An administrator can see "
            "what it said in the usage log.",
            status=status,
            detail=detail,
        )
    return ProviderError(
        "provider_error",
        f"The provider failed (HTTP {status}).",
        retryable=status >= 500,
        status=status,
        detail=detail,
    )


def from_sdk(exc: Exception, *, api_key: str = "") -> ProviderError:
    """openai / anthropic / groq exceptions (same class names in each SDK)."""
    if isinstance(exc, ProviderError):
        return exc
    egress = egress_cause(exc)
    if egress is not None:
        code = {
            "egress_denied": "egress_denied",
            "bad_url": "egress_denied",
            "unresolvable": "unreachable",
            "deadline_exceeded": "timeout",
        }.get(egress.code, "provider_error")
        return ProviderError(code, scrub(str(egress), api_key))
    name = type(exc).__name__
    if name in {"InvalidURL", "UnsupportedProtocol"}:
        return ProviderError("egress_denied", "Invalid base URL: " + scrub(str(exc), api_key))
    status = getattr(exc, "status_code", None)
    if status is None and getattr(exc, "response", None) is not None:
        status = getattr(exc.response, "status_code", None)
    if name in {"APITimeoutError"} or "Timeout" in name:
        return ProviderError("timeout", "The provider did not answer in time.")
    if name in {"RemoteProtocolError", "ReadError"}:
        # The body stopped short: a mid-stream disconnect.
        return ProviderError("stream_interrupted", "The reply stream broke off before it finished.")
    if name in {"APIConnectionError", "ConnectError", "ConnectTimeout"}:
        cause = exc.__cause__ or exc.__context__
        if cause is not None and type(cause).__name__ in {"RemoteProtocolError", "ReadError"}:
            return ProviderError(
                "stream_interrupted", "The reply stream broke off before it finished."
            )
        return ProviderError("unreachable", "Could not connect to the provider.", retryable=True)
    if name == "JSONDecodeError":
        return ProviderError("provider_error", "The provider sent a malformed stream chunk.")
    if status is not None:
        response = getattr(exc, "response", None)
        body = getattr(exc, "body", None)
        if isinstance(body, dict):
            error = body.get("error", body)
            detail = error.get("message", "") if isinstance(error, dict) else str(error)
        else:
            detail = str(body if body is not None else exc)
        return from_status(
            status,
            scrub(str(detail), api_key),
            retry_after=retry_after(getattr(response, "headers", None)),
        )
    detail = scrub(str(exc), api_key)
    if "Stream" in name or "incomplete" in detail.lower() or "peer closed" in detail.lower():
        return ProviderError(
            "stream_interrupted", "The reply stream broke off before it finished.", detail=detail
        )
    return ProviderError("provider_error", "The provider call failed.", detail=detail)
