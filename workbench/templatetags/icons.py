"""`{% icon "chat" %}`: small inline SVG icons, so the UI needs no icon font, emoji font or CDN."""

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()

# 24×24 stroke paths, drawn for this project.
PATHS = {
    "chat": '<path d="M4 5h16v11H9l-5 4z"/>',
    "playground": '<path d="M12 3v18M5 7h14M5 7l-3 7h6zM19 7l-3 7h6z"/>',
    "prompts": '<path d="M6 3h9l4 4v14H6z"/><path d="M9 11h7M9 15h7M9 7h4"/>',
    "collections": '<path d="M4 5h5v15H4zM10 5h5v15h-5z"/><path d="M16 6l4-1 3 14-4 1z"/>',
    "evals": '<path d="M9 3h6M10 3v6l-5 10a1 1 0 0 0 1 2h12a1 1 0 0 0 1-2l-5-10V3"/><path d="M7 15h10"/>',
    "usage": '<path d="M4 20V10M10 20V4M16 20v-7M22 20H2"/>',
    "settings": '<circle cx="12" cy="12" r="3"/><path d="M12 2v3M12 19v3M2 12h3M19 12h3M4.9 4.9 7 7M17 17l2.1 2.1M4.9 19.1 7 17M17 7l2.1-2.1"/>',
    "admin": '<path d="M12 3l8 3v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6z"/>',
    "api": '<path d="M8 7l-5 5 5 5M16 7l5 5-5 5M14 4l-4 16"/>',
    "team": '<circle cx="9" cy="8" r="3"/><path d="M3 20c0-3.3 2.7-6 6-6s6 2.7 6 6"/><circle cx="17" cy="9" r="2.5"/><path d="M16 14c2.8 0 5 2.2 5 5"/>',
    "user": '<circle cx="12" cy="8" r="4"/><path d="M4 21c0-4.4 3.6-8 8-8s8 3.6 8 8"/>',
    "key": '<circle cx="8" cy="15" r="4"/><path d="M11 12l9-9M17 6l3 3M15 8l2 2"/>',
    "theme": '<circle cx="12" cy="12" r="9"/><path d="M12 3a9 9 0 0 0 0 18z" fill="currentColor"/>',
    "home": '<path d="M3 11l9-8 9 8M5 10v10h14V10"/>',
    "menu": '<path d="M4 6h16M4 12h16M4 18h16"/>',
    "pin": '<path d="M9 3h6l-1 6 4 4H6l4-4zM12 13v8"/>',
    "archive": '<path d="M3 5h18v4H3zM5 9v11h14V9M10 13h4"/>',
    "folder": '<path d="M3 6h6l2 2h10v11H3z"/>',
    "share": '<circle cx="6" cy="12" r="2.5"/><circle cx="18" cy="6" r="2.5"/><circle cx="18" cy="18" r="2.5"/><path d="M8.2 11l7.6-3.8M8.2 13l7.6 3.8"/>',
    "close": '<path d="M6 6l12 12M18 6L6 18"/>',
    "thumbs-up": '<path d="M7 11v9H3v-9zM7 11l4-8c1.5 0 2.5 1 2 3l-1 4h6.5a2 2 0 0 1 2 2.3l-1.2 6A2 2 0 0 1 17.3 20H7"/>',
    "thumbs-down": '<path d="M7 13V4H3v9zM7 13l4 8c1.5 0 2.5-1 2-3l-1-4h6.5a2 2 0 0 0 2-2.3l-1.2-6A2 2 0 0 0 17.3 4H7"/>',
    "check": '<path d="M5 12l5 5 9-10"/>',
    "plug": '<path d="M9 2v6M15 2v6M6 8h12v4a6 6 0 0 1-12 0zM12 18v4"/>',
    "bell": '<path d="M6 16V11a6 6 0 0 1 12 0v5l2 2H4z"/><path d="M10 20a2 2 0 0 0 4 0"/>',
    "paperclip": '<path d="M20 11l-8.5 8.5a5 5 0 0 1-7-7L13 4a3.5 3.5 0 0 1 5 5l-8.5 8.5a2 2 0 0 1-3-3L14 7"/>',
    "file": '<path d="M6 3h8l4 4v14H6z"/><path d="M14 3v4h4"/>',
}


@register.simple_tag
def icon(name: str, size: int = 18, label: str = ""):
    path = PATHS.get(name, PATHS["home"])
    aria = (
        format_html('role="img" aria-label="{}"', label)
        if label
        else mark_safe('aria-hidden="true"')
    )
    return format_html(
        '<svg class="ico" width="{}" height="{}" viewBox="0 0 24 24" fill="none" stroke="currentColor" '
        'stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round" {}>{}</svg>',
        size,
        size,
        aria,
        mark_safe(path),  # noqa: S308 - our own constant markup above
    )
