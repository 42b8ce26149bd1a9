"""Formatting for the playground's numbers and names."""

from django import template

from chats.templatetags.chat import tps
from providers import presets

register = template.Library()
register.filter("tps", tps)  # one formatting for chat and playground


@register.filter
def preset_label(key: str) -> str:
    row = presets.PRESETS.get(key or "")
    return row.label if row else (key or "")


@register.filter
def model_label(key: str) -> str:
    from playground.arena import model_label as label

    return label(key or "")


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


@register.filter
def duration(value) -> str:
    """687 ms, 2.92 s, 41 s."""
    if value is None:
        return ""
    if value < 1000:
        return f"{value:.0f} ms"
    return f"{value / 1000:.2f} s" if value < 10_000 else f"{value / 1000:.1f} s"


# Small stroke icons for the playground's own controls (drawn here; no icon font).
ICONS = {
    "left": '<path d="M15 5l-7 7 7 7"/>',
    "right": '<path d="M9 5l7 7-7 7"/>',
    "duplicate": '<rect x="8" y="8" width="12" height="12" rx="2"/><path d="M16 8V5a1 1 0 0 0-1-1H5a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h3"/>',
    "remove": '<path d="M6 6l12 12M18 6L6 18"/>',
    "trophy": '<path d="M8 4h8v5a4 4 0 0 1-8 0zM8 6H5v1a3 3 0 0 0 3 3M16 6h3v1a3 3 0 0 1-3 3M12 13v4M8 20h8M10 17h4v3h-4z"/>',
    "play": '<path d="M8 5l11 7-11 7z"/>',
}


@register.simple_tag
def pgicon(name: str, size: int = 16):
    from django.utils.html import format_html
    from django.utils.safestring import mark_safe

    return format_html(
        '<svg class="ico" width="{}" height="{}" viewBox="0 0 24 24" fill="none" stroke="currentColor" '
        'stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">{}</svg>',
        size,
        size,
        mark_safe(ICONS[name]),  # noqa: S308 - our own constant markup above
    )
