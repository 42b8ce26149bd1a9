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
class Price:
    """Display price per million tokens (the lowest tier) plus any fixed fee per request."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    source: str  # "genai-prices" | "override"
    per_request: Decimal = Decimal(0)
    context_window: int | None = None
    model_ref: str = ""

    def snapshot(self) -> dict:
        return {
            "source": self.source,
            "model_ref": self.model_ref,
            "input_per_mtok": str(self.input_per_mtok),
            "output_per_mtok": str(self.output_per_mtok),
            "per_request": str(self.per_request),
        }


def _calc(provider_id: str, model: str, input_tokens: int, output_tokens: int):
    from genai_prices import Usage, calc_price

    return calc_price(
        Usage(input_tokens=input_tokens, output_tokens=output_tokens),
        model,
        provider_id=provider_id,
    )


@lru_cache(maxsize=4096)
def _genai_price(provider_id: str, model: str) -> Price | None:
    try:
        # 1,000 of each token kind: small enough to stay in the first price tier.
        result = _calc(provider_id, model, 1000, 1000)
    except LookupError:
        return None
    fee = result.total_price - result.input_price - result.output_price
    return Price(
        input_per_mtok=result.input_price * 1000,
        output_per_mtok=result.output_price * 1000,
        per_request=fee,
        source="genai-prices",
        context_window=getattr(result.model, "context_window", None),
        model_ref=result.model.id,
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
    *,
    provider_id: str | None,
    preset: str,
    model: str,
    local: bool,
    input_tokens: int,
    output_tokens: int,
    estimated: bool,
) -> Cost:
    if local:
        return Cost(Decimal(0), CostSource.LOCAL, {"source": "local"})
    source = CostSource.ESTIMATED if estimated else CostSource.PROVIDER
    override = _override(provider_id, preset, model)
    if override:
        amount = (
            override.input_per_mtok * input_tokens + override.output_per_mtok * output_tokens
        ) / MTOK
        price = Price(
            override.input_per_mtok, override.output_per_mtok, "override", model_ref=model
        )
        return Cost(amount.quantize(QUANTUM), source, price.snapshot())
    price = _genai_price(provider_id, model) if provider_id else None
    if price is None:
        return Cost(None, CostSource.UNPRICED, {"source": "unpriced"})
    amount = _calc(provider_id, model, input_tokens, output_tokens).total_price
    return Cost(Decimal(amount).quantize(QUANTUM), source, price.snapshot())


def context_window_for(provider_id: str | None, model: str) -> int | None:
    """The model's context window per genai-prices, when it knows it."""
    price = _genai_price(provider_id, model) if provider_id else None
    return price.context_window if price else None
