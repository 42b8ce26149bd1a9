"""Prices: admin overrides first, then the offline `genai-prices` snapshot. Never a hand-kept table.

`cost_for` returns the cost of one call and a snapshot of the price used (stored on the usage row,
so old rows keep their price when prices change). genai-prices computes the actual cost from the
actual token counts, so tiered prices and per-request fees come out right."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache

from django.utils import timezone

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


OVERRIDES_TTL = 30.0  # seconds another process may keep using its copy of the overrides

# Every version of every override, newest first per (key, model), with when it was read.
_overrides_cache: tuple[float, dict[tuple[str, str], list[PriceOverride]]] | None = None


def _clock() -> float:
    return time.monotonic()


def _overrides() -> dict[tuple[str, str], list[PriceOverride]]:
    """Every override version, read at most every OVERRIDES_TTL seconds: there are few, they
    change rarely, and every model call looks them up. Versions scheduled for later are in the
    copy too, so a change scheduled ahead applies at its exact time in every process; a change
    made "now" reaches other processes within the TTL (this one at once: `overrides_changed`)."""
    global _overrides_cache
    now = _clock()
    if _overrides_cache is None or now - _overrides_cache[0] > OVERRIDES_TTL:
        versions: dict[tuple[str, str], list[PriceOverride]] = {}
        for version in PriceOverride.objects.order_by("-effective_from"):
            versions.setdefault((version.provider_id, version.model), []).append(version)
        _overrides_cache = (now, versions)
    return _overrides_cache[1]


def overrides_changed() -> None:
    """Forget the cached overrides (this process; others within OVERRIDES_TTL)."""
    global _overrides_cache
    _overrides_cache = None


def _override(
    provider_id: str | None, preset: str, model: str, at: datetime | None = None
) -> PriceOverride | None:
    """The override version in effect at `at` (default now) — by price provider first, then by
    preset — or None (genai-prices decides) when none is, or the one in effect ended it."""
    overrides = _overrides()
    at = at or timezone.now()
    for key in (provider_id, preset):
        if not key:
            continue
        for version in overrides.get((key, model), ()):
            if version.effective_from <= at:
                if not version.ends:
                    return version
                break
    return None


def _override_price(override: PriceOverride, model: str) -> Price:
    return Price(
        override.input_per_mtok,
        override.output_per_mtok,
        "override",
        model_ref=model,
        cache_read_per_mtok=override.cached_input_per_mtok,
        cache_write_per_mtok=override.cache_write_per_mtok,
    )


def price_for(
    provider_id: str | None, model: str, *, preset: str = "", at: datetime | None = None
) -> Price | None:
    """The price per million tokens for a model at `at` (default now), or None when unknown
    (unpriced)."""
    override = _override(provider_id, preset, model, at)
    if override:
        return _override_price(override, model)
    if not provider_id:
        return None
    return _genai_price(provider_id, model)


@dataclass(frozen=True)
class Cost:
    amount: Decimal | None  # USD; None = unpriced
    source: str  # a CostSource value
    snapshot: dict


def _override_amount(override: PriceOverride, tokens: Tokens) -> Decimal:
    """Linear: uncached prompt tokens at the input price, cache reads and writes at theirs
    (the input price when the override sets none), output (reasoning included) at the output
    price."""
    cache_read_price = override.cached_input_per_mtok
    cache_write_price = override.cache_write_per_mtok
    if cache_read_price is None:
        cache_read_price = override.input_per_mtok
    if cache_write_price is None:
        cache_write_price = override.input_per_mtok
    uncached = max(0, tokens.input - tokens.cache_read - tokens.cache_write)
    return (
        override.input_per_mtok * uncached
        + cache_read_price * tokens.cache_read
        + cache_write_price * tokens.cache_write
        + override.output_per_mtok * tokens.output
    ) / MTOK


def cost_for(
    *,
    provider_id: str | None,
    preset: str,
    model: str,
    local: bool,
    tokens: Tokens,
    at: datetime | None = None,
) -> Cost:
    """The cost of a call with these tokens, at the prices in effect at `at` — the call's start
    (default now). genai-prices prices cache reads and writes and reasoning by their own rates
    where the model has them; an admin override by its cache prices when it sets them."""
    if local:
        return Cost(Decimal(0), CostSource.LOCAL, {"source": "local"})
    source = CostSource.ESTIMATED if tokens.estimated else CostSource.PROVIDER
    override = _override(provider_id, preset, model, at)
    if override:
        snapshot = _override_price(override, model).snapshot()
        snapshot["override_id"] = override.pk
        snapshot["effective_from"] = override.effective_from.isoformat()
        return Cost(_override_amount(override, tokens).quantize(QUANTUM), source, snapshot)
    price = _genai_price(provider_id, model) if provider_id else None
    if price is None:
        return Cost(None, CostSource.UNPRICED, {"source": "unpriced"})
    if tokens.total == 0:
        return Cost(Decimal(0), source, price.snapshot())  # nothing reached the model
    amount = _calc(provider_id, model, tokens).total_price
    return Cost(Decimal(amount).quantize(QUANTUM), source, price.snapshot())


# --- Admin's writes -------------------------------------------------------------------------------


def price_override_end(*, provider_id: str, model: str, actor=None, at: datetime | None = None):
    """End the override of a model from `at` (default now): a version with no prices, so the
    history keeps what was charged before. None when no price override is in effect then."""
    at = at or timezone.now()
    current = (
        PriceOverride.objects.filter(provider_id=provider_id, model=model, effective_from__lte=at)
        .order_by("-effective_from")
        .first()
    )
    if current is None or current.ends:
        return None
    return PriceOverride.objects.create(
        provider_id=provider_id,
        model=model,
        effective_from=at,
        ends=True,
        note="Ended",
        created_by=actor,
    )


def context_window_for(provider_id: str | None, model: str) -> int | None:
    """The model's context window per genai-prices, when it knows it."""
    price = _genai_price(provider_id, model) if provider_id else None
    return price.context_window if price else None
