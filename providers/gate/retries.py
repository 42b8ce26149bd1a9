"""Which provider errors are retried (only before the first token) and how long to wait."""

from __future__ import annotations

import random

from providers.adapters.base import ProviderError

RETRYABLE = {"rate_limited", "unreachable", "provider_error"}
MAX_RETRY_AFTER = 30.0  # seconds; a longer Retry-After fails now and says when to retry


def backoff(attempt: int, error: ProviderError) -> float | None:
    """Seconds to wait before the next attempt, or None to give up now."""
    if error.retry_after is not None:
        return error.retry_after if error.retry_after <= MAX_RETRY_AFTER else None
    return min(8.0, 0.25 * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)  # noqa: S311 - jitter
