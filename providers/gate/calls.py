"""What one model call is while it runs: the caller's controls, the prepared call (credential,
adapter config, reservation, opened row, slot) and what the gate measures and receives."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.conf import settings

from billing import budgets
from billing.models import UsageRecord
from billing.pricing import Tokens
from providers import concurrency, tokens
from providers.adapters.base import (
    AdapterConfig,
    CompletionRequest,
    ProviderError,
    ReasoningDelta,
    TextDelta,
    Timeouts,
)
from providers.models import ProviderCredential


def default_timeouts() -> Timeouts:
    return Timeouts(**getattr(settings, "WORKBENCH_PROVIDER_TIMEOUTS", {}))


def max_attempts() -> int:
    return int(getattr(settings, "WORKBENCH_PROVIDER_MAX_ATTEMPTS", 3))


def max_reply_chars() -> int:
    return int(getattr(settings, "WORKBENCH_MAX_REPLY_CHARS", 4_000_000))


@dataclass
class CallControl:
    """Handed in by callers that stop calls on purpose (chat's Stop button): set
    `stop_requested` before cancelling the task, and the row says `stopped`. Any other
    cancellation is the caller going away (`disconnected`), or the server stopping
    (`interrupted`)."""

    stop_requested: bool = False


@dataclass
class Prepared:
    """What the prepare hop hands the call: everything resolved and admitted, or the refusal
    (`error`) that settlement records without calling a provider."""

    credential: ProviderCredential | None
    config: AdapterConfig | None
    team_id: int | None
    reservation: budgets.Reservation | None
    request: CompletionRequest | None
    error: ProviderError | None = None
    record: UsageRecord | None = None  # the opened row (None: refused before any provider call)
    input_estimate: int = 0
    slot: concurrency.Slot | None = None  # this call's place under the user's concurrency cap


@dataclass
class Call:
    """What the gate measures about one call."""

    started: float = field(default_factory=time.perf_counter)
    adapter_started: float | None = None
    first_token_at: float | None = None  # text or reasoning
    first_text_at: float | None = None
    first_reasoning_at: float | None = None
    parts: list[str] = field(default_factory=list)
    reasoning_parts: list[str] = field(default_factory=list)
    tool_parts: list[str] = field(default_factory=list)  # tool calls' names and arguments
    chars: int = 0  # text + reasoning characters
    counted: int = 0  # output tokens counted per delta (only when max_tokens is set)
    reported: dict[str, int] = field(default_factory=dict)  # provider-reported Usage fields
    reason: str | None = None  # the provider's finish reason; None = it never said
    reached: bool = False  # the provider answered this call with something
    counted_locally: bool = False  # a "reported" number was in fact counted here
    attempts: int = 0
    retry_wait: float = 0.0  # seconds slept in retry back-off
    # Estimated output tokens of parts checkpointed so far (the estimate is incremental).
    _estimated: list[int] = field(
        default_factory=lambda: [0, 0, 0, 0]
    )  # text n, tokens, reasoning n, tokens

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def add(self, delta: TextDelta | ReasoningDelta, now: float) -> None:
        if self.first_token_at is None:
            self.first_token_at = now
        if type(delta) is TextDelta:
            self.first_text_at = self.first_text_at or now
            self.parts.append(delta.text)
        else:
            self.first_reasoning_at = self.first_reasoning_at or now
            self.reasoning_parts.append(delta.text)
        self.chars += len(delta.text)

    @property
    def reasoning(self) -> str:
        return "".join(self.reasoning_parts)

    def progress(self, input_estimate: int) -> Tokens:
        """Tokens so far for a checkpoint: provider-reported where reported, else estimated
        from the text (incrementally: only parts new since the last checkpoint are looked at)."""
        done = self._estimated
        if len(self.parts) > done[0]:
            done[1] += tokens.estimate_text("".join(self.parts[done[0] :]))
            done[0] = len(self.parts)
        if len(self.reasoning_parts) > done[2]:
            done[3] += tokens.estimate_text("".join(self.reasoning_parts[done[2] :]))
            done[2] = len(self.reasoning_parts)
        reported = self.reported
        reasoning = reported.get("reasoning_tokens", done[3])
        return Tokens(
            input=reported.get("input_tokens", input_estimate),
            output=reported.get("output_tokens", done[1] + done[3]),
            cache_read=reported.get("cache_read_tokens", 0),
            cache_write=reported.get("cache_write_tokens", 0),
            reasoning=reasoning,
            estimated=not {"input_tokens", "output_tokens"} <= reported.keys(),
        )
