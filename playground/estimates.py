"""What a run will cost before it runs: per slot, the prompt's tokens plus the most it may write
(`max_tokens`, else an assumed DEFAULT_OUTPUT) at the model's prices — and what the budgets say
about it. A soft limit asks the user to confirm; a hard limit refuses that slot only (the gate
refuses it when it runs, naming the budget), never the whole run."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from billing import pricing
from providers import tokens
from providers.adapters.base import Message

DEFAULT_OUTPUT = 1024  # output tokens assumed when a slot sets no max_tokens


@dataclass(frozen=True)
class BudgetNote:
    level: str  # soft (warn, ask to confirm) | hard (this slot will be refused)
    message: str


@dataclass(frozen=True)
class SlotEstimate:
    position: int
    model: str
    prompt_tokens: int
    output_tokens: int
    output_assumed: bool  # no max_tokens: DEFAULT_OUTPUT is a guess, not a bound
    cost: Decimal | None  # None: unpriced
    source: str  # local | priced | unpriced
    notes: tuple[BudgetNote, ...] = ()

    @property
    def refused(self) -> bool:
        return any(note.level == "hard" for note in self.notes)


@dataclass(frozen=True)
class Estimate:
    slots: list[SlotEstimate]
    total: Decimal
    unpriced: int
    counted_exactly: bool = True
    notes: list[BudgetNote] = field(default_factory=list)

    def _notes(self, level: str) -> list[BudgetNote]:
        # One budget often applies to several slots: say it once.
        seen = {}
        for slot in self.slots:
            for note in slot.notes:
                if note.level == level:
                    seen.setdefault(note.message, note)
        return list(seen.values())

    @property
    def warnings(self) -> list[BudgetNote]:
        return self._notes("soft")

    @property
    def refusals(self) -> list[BudgetNote]:
        return self._notes("hard")

    @property
    def needs_confirmation(self) -> bool:
        return bool(self.warnings)


@dataclass(frozen=True)
class SlotInput:
    """One slot as the estimate sees it (saved or not yet)."""

    position: int
    credential: object  # providers.ProviderCredential
    model: str
    system_prompt: str
    max_tokens: int | None


def prompt_tokens(system: str, turns: list[tuple[str, str]]) -> tuple[int, bool]:
    """Tokens of what a slot sends, counted offline (bounded: exact up to the counter's cap,
    extrapolated beyond); (count, exact?)."""
    messages = ([Message("system", system)] if system else []) + [
        Message(role, content) for role, content in turns
    ]
    size = sum(len(m.content) for m in messages)
    return tokens.count_messages(messages), size <= tokens.EXACT_CAP


def estimate(*, actor, slots: list[SlotInput], turns: list[tuple[str, str]]) -> Estimate:
    rows, total, unpriced, exact, counted = [], Decimal(0), 0, True, {}
    for slot in slots:
        if slot.credential is None or not slot.model:
            continue
        if slot.system_prompt not in counted:
            counted[slot.system_prompt] = prompt_tokens(slot.system_prompt, turns)
        in_tokens, was_exact = counted[slot.system_prompt]
        exact = exact and was_exact
        out_tokens = slot.max_tokens or DEFAULT_OUTPUT
        preset = slot.credential.preset_row
        cost = pricing.cost_for(
            provider_id=preset.price_provider,
            preset=preset.key,
            model=slot.model,
            local=slot.credential.is_local,
            tokens=pricing.Tokens(input=in_tokens, output=out_tokens, estimated=True),
        )
        source = (
            "local"
            if slot.credential.is_local
            else ("unpriced" if cost.amount is None else "priced")
        )
        notes = tuple(budget_notes(actor=actor, slot=slot, amount=cost.amount))
        rows.append(
            SlotEstimate(
                position=slot.position,
                model=slot.model,
                prompt_tokens=in_tokens,
                output_tokens=out_tokens,
                output_assumed=slot.max_tokens is None,
                cost=cost.amount,
                source=source,
                notes=notes,
            )
        )
        if cost.amount is None:
            unpriced += 1
        else:
            total += cost.amount
    return Estimate(rows, total, unpriced, exact)


def budget_notes(*, actor, slot: SlotInput, amount: Decimal | None) -> list[BudgetNote]:
    """What the budgets that apply to this slot's call say about spending `amount`.

    Budgets arrive with the money work (billing.budgets); until they exist nothing applies."""
    return []
