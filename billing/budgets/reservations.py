"""What admission hands the gate (a `Reservation`: the clamped `max_tokens`, the holds' key and
the budgets it counts against), what a refusal raises (`BudgetExceeded`), and the settings both
read."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings

MTOK = Decimal(1_000_000)


def default_output_tokens() -> int:
    """The output allowance reserved when a call sets no `max_tokens` (and then sent as its
    `max_tokens` when a hard budget applies, so the reply can't outgrow what was reserved)."""
    return int(getattr(settings, "WORKBENCH_BUDGET_DEFAULT_OUTPUT_TOKENS", 4096))


def min_reply_tokens() -> int:
    """Below this many affordable output tokens a call is refused rather than clamped."""
    return int(getattr(settings, "WORKBENCH_BUDGET_MIN_REPLY_TOKENS", 64))


def hold_seconds() -> float:
    """How long a hold outlives its admission: longer than any call can last (every attempt at
    the total timeout, plus the longest retry wait), so only a dead process's holds expire."""
    configured = getattr(settings, "WORKBENCH_BUDGET_HOLD_SECONDS", None)
    if configured:
        return float(configured)
    total = float(getattr(settings, "WORKBENCH_PROVIDER_TIMEOUTS", {}).get("total", 600.0))
    attempts = int(getattr(settings, "WORKBENCH_PROVIDER_MAX_ATTEMPTS", 3))
    return attempts * (total + 30.0) + 60.0


@dataclass(frozen=True)
class Applied:
    """A budget a call counts against, with the window it counts in (a snapshot: settlement
    and alerts use it without reading the budget again)."""

    budget_id: int
    window_id: int
    window_start: datetime
    limit: Decimal
    hard: bool
    thresholds: tuple[int, ...]


@dataclass
class Reservation:
    max_tokens: int | None  # what the caller may ask for after clamping to what budgets afford
    amount: Decimal = Decimal(0)
    key: uuid.UUID | None = None  # the holds' reservation id
    applied: tuple[Applied, ...] = ()
    settled: bool = False

    @property
    def budget_ids(self) -> tuple[int, ...]:
        return tuple(a.budget_id for a in self.applied)


class BudgetExceeded(Exception):
    """A call refused by a budget. `details` is what the REST error body carries as `budget`."""

    code = "budget_exceeded"

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.alert: Callable[[], None] = lambda: None

    def deliver_alert(self) -> None:
        """Tell the budget's managers (once per window). The caller runs this after its own
        transaction ends: the gate reserves inside one that a refusal rolls back, and an alert
        written inside it would be rolled back with it."""
        self.alert()
