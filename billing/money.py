"""Money as people read it: the one formatter every page, frame, export and API label uses.

Rules (the same in `billing/static/billing/money.js`, which a browser test holds to this file):
- $1 and more: cents with thousands separators — `$10.00`, `$1,234.57`;
- under $1: two significant digits and at least two decimals — `$0.50`, `$0.015`, `$0.00042`;
- exactly zero: `$0.00`; negative amounts (a budget overspent): `-$0.12`;
- never scientific notation (`Decimal("1E+1")` is `$10.00`), rounding half up, from the exact
  decimal (the ledger keeps nine decimals; floats never enter).

Honesty about where a number comes from is part of the format: a local model costs `$0.00 local`,
a model with no known price is `unpriced` (never a silent $0), a cost priced on locally counted
tokens is `$0.0042 est.`, and a total says what it leaves out: `$4.12 + 3 unpriced calls`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
SIGNIFICANT = 2  # digits kept under $1


def to_decimal(amount) -> Decimal | None:
    """Decimal from a Decimal, int, str or float (through its repr); None for None/garbage."""
    if amount is None or amount == "":
        return None
    if isinstance(amount, Decimal):
        value = amount
    else:
        try:
            value = Decimal(str(amount))
        except (InvalidOperation, ValueError):
            return None
    return value if value.is_finite() else None


def decimal_str(amount) -> str | None:
    """A plain decimal string for APIs and exports (`"10"`, `"0.00042"`), never `"1E+1"`."""
    value = to_decimal(amount)
    if value is None:
        return None
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def usd(amount) -> str:
    """`$10.00`, `$0.00042`, `-$0.12`. None (no price known) is `unpriced`."""
    value = to_decimal(amount)
    if value is None:
        return "unpriced"
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value == 0:
        return "$0.00"
    if value < 1:
        # Round to SIGNIFICANT digits; keep at least cents.
        exponent = value.adjusted() - SIGNIFICANT + 1  # power of ten of the last kept digit
        quantum = Decimal(1).scaleb(min(exponent, -2))
        rounded = value.quantize(quantum, rounding=ROUND_HALF_UP)
        if rounded < 1:
            text = format(rounded, "f")
            whole, _, decimals = text.partition(".")
            decimals = decimals.rstrip("0").ljust(2, "0")
            return f"{sign}${whole}.{decimals}"
        value = rounded  # 0.996 → 1.00: fall through to cents
    return f"{sign}${value.quantize(CENT, rounding=ROUND_HALF_UP):,.2f}"


def chart_usd(value: float) -> str:
    """A chart's float (an axis tick, a bar's end) in the same format."""
    return usd(Decimal(repr(float(value))))


def per_mtok(amount) -> str:
    """A price per million tokens: the same format (`$0.15`, `$10.00`, `$0.075`)."""
    return usd(amount)


def cost_label(amount, source: str | None = None) -> str:
    """One call's cost, honest about its provenance (plain text)."""
    if source == "local":
        return "$0.00 local"
    if source == "unpriced" or to_decimal(amount) is None:
        return "unpriced"
    text = usd(amount)
    return f"{text} est." if source == "estimated" else text


def total_label(amount, *, unpriced: int = 0, estimated: int = 0) -> str:
    """A sum of calls and what it leaves out: `$4.12 + 3 unpriced calls`. Estimated calls are in
    the sum (priced on locally counted tokens); `estimated` only adds `(2 estimated)`."""
    text = usd(to_decimal(amount) or Decimal(0))
    if estimated:
        text += f" ({estimated} estimated)"
    if unpriced:
        text += f" + {unpriced} unpriced call{'s' if unpriced != 1 else ''}"
    return text
