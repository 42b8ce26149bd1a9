"""`{% load prompt_text %}`: a prompt's text shown with its `{{variables}}` marked, escaped first."""

from django import template
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe

from prompts.variables import PLACEHOLDER

register = template.Library()


@register.filter
def marked(text) -> str:
    """Escape, then wrap each placeholder in <mark class="var"> (the name is an identifier, so
    nothing the regex matches needs escaping beyond what conditional_escape already did)."""
    escaped = str(conditional_escape(text or ""))
    return mark_safe(  # noqa: S308 - built from escaped text and identifier-only matches
        PLACEHOLDER.sub(lambda m: f'<mark class="var">{m.group(0)}</mark>', escaped)
    )


@register.filter
def percent(score) -> str:
    return "—" if score is None else f"{round(score * 100)}%"


@register.simple_tag
def placeholder(name: str) -> str:
    return format_html("<code>{{{{{}}}}}</code>", name)


@register.filter
def dictget(mapping, key):
    return (mapping or {}).get(key, "")
