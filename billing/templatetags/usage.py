"""Filters for the Usage dashboard's links and numbers."""

from __future__ import annotations

from urllib.parse import urlencode

from django import template

register = template.Library()


@register.filter
def query_string(params: dict, row=None) -> str:
    """The dashboard's filters as a query string; with a per-model row, narrowed to its model."""
    params = dict(params)
    if row is not None:
        params |= {"provider": row.preset, "model": row.model}
    return urlencode(params)


@register.filter
def thousands(value) -> str:
    """12345 → 12,345 (no humanize app needed for one format)."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return ""
