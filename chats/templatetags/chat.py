from django import template

from billing import money
from chats.rendering import render_markdown

register = template.Library()


@register.filter
def markdown(text: str):
    """Model and user text → HTML → sanitized (chats.rendering): the only way it reaches a page."""
    return render_markdown(text or "")


@register.filter
def usd(amount) -> str:
    """The one money format (billing.money); empty for no amount at all."""
    return "" if amount is None else money.usd(amount)


@register.filter
def ms(value) -> str:
    if value is None:
        return ""
    return f"{value / 1000:.1f} s" if value >= 10_000 else f"{value:.0f} ms"


@register.filter
def snippet(text: str, needle: str):
    """A search hit in context, the match in <mark> (escaped: chats.organisation.snippet)."""
    from chats.organisation import snippet as make

    return make(text or "", (needle or "").strip())
