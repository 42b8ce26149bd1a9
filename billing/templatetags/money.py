"""Template side of `billing.money`: `{% load money %}` then `{{ amount|usd }}`,
`{{ amount|cost:source }}` (one call, honest about provenance) and
`{% cost_total amount unpriced=3 estimated=1 %}` (a sum and what it leaves out)."""

from django import template
from django.utils.html import format_html

from billing import money

register = template.Library()

_TITLES = {
    "local": "A local model: calls cost nothing.",
    "unpriced": "No price is known for this model; its cost is not counted.",
    "estimated": "Priced on tokens counted locally (the provider reported none).",
}


@register.filter
def usd(amount) -> str:
    return money.usd(amount)


@register.filter
def plain(amount) -> str:
    """A plain decimal for attributes (`<meter value>`), never `1E+1`."""
    return money.decimal_str(amount) or ""


@register.filter
def cost(amount, source=None):
    """One call's cost with its provenance; the title explains local / unpriced / estimated."""
    label = money.cost_label(amount, source)
    if source == "local":
        return format_html('<span class="cost" title="{}">{}</span>', _TITLES["local"], label)
    if label == "unpriced":
        return format_html(
            '<span class="cost unpriced" title="{}">unpriced</span>', _TITLES["unpriced"]
        )
    if source == "estimated":
        return format_html(
            '<span class="cost">{} <abbr title="{}">est.</abbr></span>',
            money.usd(amount),
            _TITLES["estimated"],
        )
    return format_html('<span class="cost">{}</span>', label)


@register.simple_tag
def cost_total(amount, unpriced=0, estimated=0):
    return money.total_label(amount, unpriced=unpriced or 0, estimated=estimated or 0)
