from decimal import Decimal

from django import template

from chats.rendering import render_markdown

register = template.Library()


@register.filter
def markdown(text: str):
    """Model and user text → HTML → sanitized (chats.rendering): the only way it reaches a page."""
    return render_markdown(text or "")


@register.filter
def usd(amount) -> str:
    """$0.0123 with sensible precision: cents for big sums, more digits for tiny ones."""
    if amount is None:
        return ""
    amount = Decimal(amount)
    if amount == 0:
        return "$0"
    if amount >= 1:
        return f"${amount:,.2f}"
    if amount >= Decimal("0.01"):
        return f"${amount:.4f}"
    return f"${amount:.6f}".rstrip("0")


@register.filter
def ms(value) -> str:
    if value is None:
        return ""
    return f"{value / 1000:.1f} s" if value >= 10_000 else f"{value:.0f} ms"
