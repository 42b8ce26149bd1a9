"""Citation links in grounded replies: `[2]` in the text points at source 2 listed under the
reply (chats.grounding stores the sources; the model cites them by number)."""

from __future__ import annotations

import re

from django.utils.safestring import SafeString, mark_safe

# A tag, or a run of text between tags. The HTML is our sanitizer's output: well formed.
_TOKENS = re.compile(r"(<[^>]*>)")
_CITE = re.compile(r"\[(\d{1,3})\]")
_SKIP = {"a", "code", "pre"}


def link_citations(html, message) -> SafeString:
    sources = (getattr(message, "retrieval", None) or {}).get("sources") or []
    numbers = {source.get("n") for source in sources}
    if not numbers:
        return html
    out, skipping = [], 0
    for token in _TOKENS.split(str(html)):
        if token.startswith("<"):
            name = token[1:].lstrip("/").split(None, 1)[0].rstrip(">").lower() if token[1:] else ""
            if name in _SKIP and not token.endswith("/>"):
                skipping += -1 if token.startswith("</") else 1
            out.append(token)
        elif skipping > 0 or "[" not in token:
            out.append(token)
        else:

            def link(match: re.Match) -> str:
                number = int(match.group(1))
                if number not in numbers:
                    return match.group(0)
                return (
                    f'<a class="cite" href="#source-{message.pk}-{number}" '
                    f'aria-label="source {number}">[{number}]</a>'
                )

            out.append(_CITE.sub(link, token))
    return mark_safe("".join(out))  # noqa: S308 - only our own links are added to sanitized HTML
