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
def seconds(value) -> str:
    """Milliseconds as a person says a short wait: "0.8 s", "34 s", "2 min 5 s"."""
    if value is None:
        return ""
    total = value / 1000
    if total < 10:
        return f"{total:.1f} s"
    whole = round(total)
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


@register.filter
def ms(value) -> str:
    if value is None:
        return ""
    return f"{value / 1000:.1f} s" if value >= 10_000 else f"{value:.0f} ms"


@register.filter
def tps(value) -> str:
    """Tokens per second as people read them: 13,520 rather than 13519.6; one decimal when small."""
    if not value:
        return ""
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


@register.filter
def snippet(text: str, needle: str):
    """A search hit in context, the match in <mark> (escaped: chats.organisation.snippet)."""
    from chats.organisation import snippet as make

    return make(text or "", (needle or "").strip())


def tokens_short(count: int) -> str:
    """128000 → "128k", 131072 → "128k", 1048576 → "1M", 200000 → "200k". Round thousands
    stay decimal (128000 is also 125 × 1024); binary sizes are counted in 1024s."""

    def scaled(base: int, binary: int) -> float:
        return count / (binary if count % binary == 0 and count % base else base)

    if count >= 1_000_000:
        value, unit = scaled(1_000_000, 1_048_576), "M"
    elif count >= 1000:
        value, unit = scaled(1000, 1024), "k"
    else:
        return str(count)
    text = f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
    return f"{text}{unit}"


@register.filter
def model_detail(choice) -> str:
    """A picker's second line for a model (providers.selectors.ModelChoice): where it runs,
    its context window and its price per million tokens, in the one money format."""
    parts = [choice.credential.display_label]
    if choice.context_window:
        parts.append(f"{tokens_short(choice.context_window)} context")
    if choice.local:
        parts.append("local, free")
    elif choice.price is None:
        parts.append("unpriced")
    else:
        parts.append(
            f"{money.usd(choice.price.input_per_mtok)} in / "
            f"{money.usd(choice.price.output_per_mtok)} out per 1M tokens"
        )
    return " · ".join(parts)


@register.filter
def citations(html, message):
    """`[n]` in a grounded reply's sanitized HTML → a link to source n under it. Only in text
    (never inside a tag, a link, code or a pre block), only numbers the reply has sources for;
    the rest of the HTML is passed through as it is."""
    from chats.citations import link_citations

    return link_citations(html, message)
