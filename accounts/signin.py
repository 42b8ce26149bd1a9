"""Throttles on guessing passwords and on password-reset requests (accounts.throttles counters).

Sign-in: every attempt counts for its (account, address) pair and for its address, before the
password is checked; a success takes both back. Over either limit nothing is checked and the
person is told when to try again.

- Per account AND address (5 per 15 minutes): what stops guessing one account. Keyed by the pair
  so that nobody can lock a known username out from elsewhere — the owner, on their own network,
  is unaffected.
- Per address (30 per 15 minutes, any accounts): what stops one address spraying many accounts.
  A shared address (an office NAT) shares it; successful sign-ins don't use it up.

Guessing one account from many addresses is bounded by the number of addresses times 5 per
15 minutes; we accept that rather than a per-account lock anyone could trigger (see
docs/decisions.md). The same pair counter guards the "current password" of a password or email
change, so a stolen session can't guess its way to the password.

Password reset: 5 requests an hour per address and 3 per typed email address (keyed on what was
typed, so the answer says nothing about whether the account exists), so the form can't be used to
flood someone's mailbox.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from accounts import throttles
from workbench.proxies import address_key, client_address

ACCOUNT_AND_ADDRESS = throttles.Limit("signin-pair", limit=5, window=15 * 60)
ADDRESS = throttles.Limit("signin-address", limit=30, window=15 * 60)
RESET_ADDRESS = throttles.Limit("reset-address", limit=5, window=60 * 60)
RESET_EMAIL = throttles.Limit("reset-email", limit=3, window=60 * 60)
SIGNUP_ADDRESS = throttles.Limit("signup-address", limit=5, window=60 * 60)
SIGNUP_EMAIL = throttles.Limit("signup-email", limit=3, window=60 * 60)


def _minutes(seconds: int) -> str:
    minutes = max(1, -(-seconds // 60))
    return "a minute" if minutes == 1 else f"{minutes} minutes"


class TooManyAttempts(ValidationError):
    """A ValidationError (forms show it where errors go) that knows how long to wait."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message, code="throttled")
        self.retry_after = retry_after


def _account(username: str) -> str:
    # Case and compatibility forms don't make a new account to guess (usernames are matched
    # that way too).
    return unicodedata.normalize("NFKC", username).strip().casefold()


@dataclass
class Attempt:
    pair: str
    address: str

    def succeeded(self) -> None:
        throttles.reset(ACCOUNT_AND_ADDRESS, self.pair)
        throttles.release(ADDRESS, self.address)


def attempt(*, request, username: str) -> Attempt:
    """Count one password attempt for `username` from this request's address; raise
    TooManyAttempts (and check nothing) when over a limit. Call `.succeeded()` when the password
    was right."""
    address = address_key(client_address(request))
    pair = f"{_account(username)}\0{address}"
    by_pair = throttles.hit(ACCOUNT_AND_ADDRESS, pair)
    by_address = throttles.hit(ADDRESS, address)
    if by_pair.over(ACCOUNT_AND_ADDRESS):
        raise TooManyAttempts(
            "Too many failed sign-in attempts for this account from your network. "
            f"Try again in {_minutes(by_pair.retry_after)}, or reset your password.",
            by_pair.retry_after,
        )
    if by_address.over(ADDRESS):
        raise TooManyAttempts(
            "Too many failed sign-in attempts from your network. "
            f"Try again in {_minutes(by_address.retry_after)}.",
            by_address.retry_after,
        )
    return Attempt(pair=pair, address=address)


def reset_requested(*, request, email: str) -> None:
    """Count a password-reset request; TooManyAttempts when over a limit."""
    address = address_key(client_address(request))
    by_address = throttles.hit(RESET_ADDRESS, address)
    by_email = throttles.hit(RESET_EMAIL, email.strip().casefold())
    if by_address.over(RESET_ADDRESS):
        raise TooManyAttempts(
            "Too many password-reset requests from your network. "
            f"Try again in {_minutes(by_address.retry_after)}.",
            by_address.retry_after,
        )
    if by_email.over(RESET_EMAIL):
        raise TooManyAttempts(
            "We already sent several reset emails to this address in the last hour. Check its "
            f"inbox (and spam folder), or try again in {_minutes(by_email.retry_after)}.",
            by_email.retry_after,
        )


def signup_requested(*, request, email: str) -> None:
    """Count a sign-up request (each sends an email); TooManyAttempts when over a limit."""
    address = address_key(client_address(request))
    by_address = throttles.hit(SIGNUP_ADDRESS, address)
    by_email = throttles.hit(SIGNUP_EMAIL, email.strip().casefold())
    if by_address.over(SIGNUP_ADDRESS):
        raise TooManyAttempts(
            "Too many sign-ups from your network. "
            f"Try again in {_minutes(by_address.retry_after)}.",
            by_address.retry_after,
        )
    if by_email.over(SIGNUP_EMAIL):
        raise TooManyAttempts(
            "We already sent several emails to this address in the last hour. Check its inbox "
            f"(and spam folder), or try again in {_minutes(by_email.retry_after)}.",
            by_email.retry_after,
        )
