"""Formatting for the playground's numbers and names."""

from django import template

from providers import presets

register = template.Library()


@register.filter
def preset_label(key: str) -> str:
    row = presets.PRESETS.get(key or "")
    return row.label if row else (key or "")


@register.filter
def model_label(key: str) -> str:
    from playground.arena import model_label as label

    return label(key or "")


@register.filter
def tps(value) -> str:
    if not value:
        return ""
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


@register.filter
def pct(value) -> str:
    if value is None:
        return ""
    return f"{value * 100:.0f} %"


@register.filter
def thousands(value) -> str:
    if value is None:
        return ""
    return f"{value:,}"


@register.filter
def elo(value) -> str:
    return "" if value is None else f"{value:.0f}"
