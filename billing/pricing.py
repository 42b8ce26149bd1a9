"""Prices: admin overrides first, then the offline `genai-prices` snapshot. Never a hand-kept table.

`cost_for` returns the cost of one call and a snapshot of the price used (stored on the usage row,
so old rows keep their price when prices change). genai-prices computes the actual cost from the
actual token counts, so tiered prices and per-request fees come out right."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from billing.models import CostSource, PriceOverride

MTOK = Decimal(1_000_000)
QUANTUM = Decimal("0.000000001")


@dataclass(frozen=True)
class Tokens:
    """The token counts of one call, as genai-prices' Usage counts them: `input` is the whole
    prompt (cache reads and writes are parts of it), `output` includes `reasoning`."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0
    estimated: bool = False  # some of the numbers were counted locally

    @property
    def total(self) -> int:
        return self.input + self.output

    def usage_kwargs(self) -> dict[str, int]:
        """For genai_prices.Usage: only the kinds present (so models without cache prices are
        priced as before)."""
        kwargs = {"input_tokens": self.input, "output_tokens": self.output}
        for key, value in (
            ("cache_read_tokens", self.cache_read),
            ("cache_write_tokens", self.cache_write),
            ("output_reasoning_tokens", self.reasoning),
        ):
            if value:
                kwargs[key] = value
        return kwargs


@dataclass(frozen=True)
class Price:
    """Display price per million tokens (the lowest tier) plus any fixed fee per request."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    source: str  # "genai-prices" | "override"
    per_request: Decimal = Decimal(0)
    context_window: int | None = None
    model_ref: str = ""
    # Prompt-cache prices per million tokens (None: not priced apart, i.e. like input).
    cache_read_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None

    def snapshot(self) -> dict:
        snapshot = {
            "source": self.source,
            "model_ref": self.model_ref,
            "input_per_mtok": str(self.input_per_mtok),
            "output_per_mtok": str(self.output_per_mtok),
            "per_request": str(self.per_request),
        }
        if self.cache_read_per_mtok is not None:
            snapshot["cache_read_per_mtok"] = str(self.cache_read_per_mtok)
        if self.cache_write_per_mtok is not None:
            snapshot["cache_write_per_mtok"] = str(self.cache_write_per_mtok)
        return snapshot


def _calc(provider_id: str, model: str, tokens: Tokens):
    from genai_prices import Usage, calc_price

    return calc_price(Usage(**tokens.usage_kwargs()), model, provider_id=provider_id)


@lru_cache(maxsize=4096)
def _genai_price(provider_id: str, model: str) -> Price | None:
    try:
        # 1,000 of each token kind: small enough to stay in the first price tier.
        result = _calc(provider_id, model, Tokens(input=1000, output=1000))
    except LookupError:
        return None
    fee = result.total_price - result.input_price - result.output_price
    # What 1,000 cached prompt tokens cost instead (the input price when not priced apart).
    cache_read = _calc(provider_id, model, Tokens(input=1000, cache_read=1000)).input_price
    cache_write = _calc(provider_id, model, Tokens(input=1000, cache_write=1000)).input_price
    return Price(
        input_per_mtok=result.input_price * 1000,
        output_per_mtok=result.output_price * 1000,
        per_request=fee,
        source="genai-prices",
        context_window=getattr(result.model, "context_window", None),
        model_ref=result.model.id,
        cache_read_per_mtok=cache_read * 1000,
        cache_write_per_mtok=cache_write * 1000,
    )


OVERRIDES_TTL = 30.0  # seconds another process may keep using an old override
_overrides_cache: tuple[float, dict[tuple[str, str], PriceOverride]] | None = None


def _overrides() -> dict[tuple[str, str], PriceOverride]:
    """Every override, read at most every OVERRIDES_TTL seconds: there are few, they change
    rarely, and every model call looks them up."""
    global _overrides_cache
    now = time.monotonic()
    if _overrides_cache is None or now - _overrides_cache[0] > OVERRIDES_TTL:
        _overrides_cache = (now, {(o.provider_id, o.model): o for o in PriceOverride.objects.all()})
    return _overrides_cache[1]


def overrides_changed() -> None:
    """Forget the cached overrides (this process; others within OVERRIDES_TTL)."""
    global _overrides_cache
    _overrides_cache = None


def _override(provider_id: str | None, preset: str, model: str) -> PriceOverride | None:
    overrides = _overrides()
    for key in (provider_id, preset):
        if key and (key, model) in overrides:
            return overrides[(key, model)]
    return None


def price_for(provider_id: str | None, model: str, *, preset: str = "") -> Price | None:
    """The price per million tokens for a model, or None when unknown (unpriced)."""
    override = _override(provider_id, preset, model)
    if override:
        return Price(override.input_per_mtok, override.output_per_mtok, "override", model_ref=model)
    if not provider_id:
        return None
    return _genai_price(provider_id, model)


@dataclass(frozen=True)
class Cost:
    amount: Decimal | None  # USD; None = unpriced
    source: str  # a CostSource value
    snapshot: dict


def cost_for(
    *, provider_id: str | None, preset: str, model: str, local: bool, tokens: Tokens
) -> Cost:
    """The cost of a call with these tokens. genai-prices prices cache reads and writes and
    reasoning by their own rates where the model has them; an admin override is linear on
    input (cache included) and output."""
    if local:
        return Cost(Decimal(0), CostSource.LOCAL, {"source": "local"})
    source = CostSource.ESTIMATED if tokens.estimated else CostSource.PROVIDER
    override = _override(provider_id, preset, model)
    if override:
        amount = (
            override.input_per_mtok * tokens.input + override.output_per_mtok * tokens.output
        ) / MTOK
        price = Price(
            override.input_per_mtok, override.output_per_mtok, "override", model_ref=model
        )
        return Cost(amount.quantize(QUANTUM), source, price.snapshot())
    price = _genai_price(provider_id, model) if provider_id else None
    if price is None:
        return Cost(None, CostSource.UNPRICED, {"source": "unpriced"})
    if tokens.total == 0:
        return Cost(Decimal(0), source, price.snapshot())  # nothing reached the model
    amount = _calc(provider_id, model, tokens).total_price
    return Cost(Decimal(amount).quantize(QUANTUM), source, price.snapshot())


def context_window_for(provider_id: str | None, model: str) -> int | None:
    """The model's context window per genai-prices, when it knows it."""
    price = _genai_price(provider_id, model) if provider_id else None
    return price.context_window if price else None
