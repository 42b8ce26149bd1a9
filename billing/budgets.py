"""The budget reservation hook every model call goes through (DESIGN §3, "Money").

reserve → stream → settle (in `finally`). Until budgets exist (the money issue) a reservation
admits everything and leaves `max_tokens` as asked; the gate already calls both ends, so
enforcement lands here without touching any caller."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass
class Reservation:
    max_tokens: int | None  # what the caller may ask for after clamping to what budgets afford
    amount: Decimal = Decimal(0)
    budget_ids: tuple[int, ...] = ()
    settled: bool = False


def budget_reserve(
    *,
    user,
    team,
    credential_id: int | None,
    provider_id: str,
    model: str,
    max_tokens: int | None,
    input_tokens: int = 0,
) -> Reservation:
    """Admit the call (or raise `BudgetExceeded` naming the budget, once budgets exist) and return
    the reservation with `max_tokens` clamped to what the applicable budgets can afford.
    `input_tokens` is the prompt's instant estimate (providers.tokens.estimate_messages: UTF-8
    bytes / 4 — no tokenizer on the database thread)."""
    return Reservation(max_tokens=max_tokens)


def budget_settle(reservation: Reservation, *, cost: Decimal | None) -> None:
    """Replace the reservation by the actual cost. Idempotent."""
    reservation.settled = True


class BudgetExceeded(Exception):
    code = "budget_exceeded"
