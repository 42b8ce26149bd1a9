"""Model and user text → safe HTML: the one path (DESIGN §3 "Streaming", §5).

    render_markdown(text)  Markdown → HTML (markdown-it-py) → nh3 allowlist → code-block chrome
    render_plain(text)     escaped text with line breaks (previews, streaming fallbacks)
    pygments_css()         the highlight stylesheet (light + dark) for the classes we emit

Contract and decisions:

- Raw HTML in the text is never passed through: markdown-it runs with ``html=False``, so
  ``<script>`` arrives as the text "<script>". nh3 then sanitizes against the explicit
  allowlists below; it is the safety net, not the first line.
- Links keep only ``http://``, ``https://`` and ``mailto:`` destinations. Any other link —
  ``javascript:``, ``data:``, ``vbscript:``, entity-obfuscated schemes, and *relative* links
  (``/logout``, ``#x``, ``//host``, ``https:/path``) — loses its anchor and keeps its text.
  Relative links are dropped because chat text has no base URL of its own: they would resolve
  against Workbench itself, which only helps phishing and confused-deputy GETs.
  Every surviving link gets ``rel="noopener noreferrer nofollow"`` and ``target="_blank"``.
- Images never load: ``![alt](https://…)`` becomes a link "🖼 alt" to the image URL; an image
  with any other URL (or inside a link) becomes the plain text "🖼 alt". No ``<img>`` ever.
- Headings are demoted (h1→h3, h2→h4, h3→h5, h4–h6→h6) so a reply never outranks the page.
- Table alignment becomes ``class="align-left|center|right"`` (the CSP forbids inline styles);
  ``pygments_css()`` carries those three rules too.
- Fenced (and indented) code is highlighted by Pygments into CSS classes, only for a language
  named in the fence and known to Pygments (no guessing); otherwise plain escaped text. Blocks
  over ``MAX_HIGHLIGHT_CHARS`` stay plain (highlighting cost is per character).
- Math: ``$…$``, ``$$…$$``, ``\\(…\\)`` and ``\\[…\\]`` become MathML on the server
  (latex2mathml; browsers display it natively, no script). The TeX is taken before Markdown
  sees it, so its backslashes and underscores survive; a dollar followed by a digit is money,
  not math. latex2mathml copies ``\\text{…}`` into the output as is, so its MathML goes through
  nh3 like everything else (MathML elements and presentation attributes only: no ``href``).
  TeX that doesn't convert (or is longer than ``MAX_MATH_CHARS``) is shown as code.
- Task lists (``- [x] done``) get disabled checkboxes inside a ``<label>``; nh3 forces every
  ``<input>`` to ``type="checkbox" disabled`` (raw HTML can't produce one anyway).
- The copy button is added after sanitizing, so nh3 never allows ``<button>``. The fence
  renderer marks its ``<pre>`` with a class holding a per-process random nonce; nh3 allows that
  one class on ``<pre>`` and no other, and only ``<pre>``s carrying it are wrapped (the nonce is
  removed in the same step). Model text cannot produce it: raw HTML is escaped, and the nonce is
  unknown to it.
"""

from __future__ import annotations

import functools
import re
import secrets
from xml.etree import ElementTree

import latex2mathml.converter
import nh3
from django.utils.html import escape, linebreaks
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml, unescapeAll
from markdown_it.rules_core import StateCore
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.tasklists import tasklists_plugin
from mdit_py_plugins.texmath import texmath_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_all_lexers, get_lexer_by_name
from pygments.styles import get_style_by_name
from pygments.token import STANDARD_TYPES

from workbench.text import clean

__all__ = [
    "MAX_HIGHLIGHT_CHARS",
    "MAX_MARKDOWN_CHARS",
    "MAX_MATH_CHARS",
    "RENDER_VERSION",
    "block_starts",
    "pygments_css",
    "render_markdown",
    "render_plain",
]

# A code block longer than this is shown plain: Pygments is fast, but not free.
MAX_HIGHLIGHT_CHARS = 100_000
# A formula longer than this is shown as TeX source (conversion cost grows with it).
MAX_MATH_CHARS = 5_000
# A text longer than this is shown as plain text (escaped, line breaks kept): Markdown costs
# ~3 µs a character here (2.4 MB of inline formatting took 7 s), and a reply that long is read,
# if at all, by copying it.
MAX_MARKDOWN_CHARS = 400_000
# Bump when the output changes: stored renderings (Message.content_html) older than this are
# rendered again when shown.
RENDER_VERSION = 3
LIGHT_STYLE = "default"
DARK_STYLE = "github-dark"

# Per-process secret marker for the <pre> elements our fence renderer emits.
_PRE_MARKER = f"wb-code-{secrets.token_hex(12)}"

_SAFE_URL = re.compile(r"(?:https?://|mailto:)", re.IGNORECASE)
_SAFE_IMAGE_URL = re.compile(r"https?://", re.IGNORECASE)
_ALIGN = re.compile(r"text-align:(left|center|right)")
_LANG_LABEL_MAX = 30

# ---------------------------------------------------------------------------------------------
# Pygments: lexers known by alias (no plugin scan, no guessing), cached instances.

# alias (lower case) → canonical alias (the lexer's first alias), from Pygments' built-in table.
_ALIASES: dict[str, str] = {}
for _name, _aliases, _files, _mimes in get_all_lexers(plugins=False):
    if _aliases:
        for _alias in _aliases:
            _ALIASES.setdefault(_alias.lower(), _aliases[0])

_FORMATTER = HtmlFormatter(nowrap=True)


@functools.lru_cache(maxsize=128)
def _lexer(canonical: str):
    # stripnl=False keeps leading/trailing blank lines the author wrote.
    return get_lexer_by_name(canonical, stripnl=False)


def _highlight(code: str, lang: str, *, plain: bool = False) -> tuple[str, str | None]:
    """(inner HTML, canonical language or None). Unknown language → escaped text."""
    canonical = _ALIASES.get(lang.lower()) if lang else None
    if canonical is None or plain or len(code) > MAX_HIGHLIGHT_CHARS:
        return escapeHtml(code), canonical
    return highlight(code, _lexer(canonical), _FORMATTER), canonical


# ---------------------------------------------------------------------------------------------
# markdown-it: one instance, built once.


def _url_ok(url: str, *, image: bool = False) -> bool:
    return bool((_SAFE_IMAGE_URL if image else _SAFE_URL).match(url))


def _safe_tokens(state: StateCore) -> None:
    """Core rule (after inline parsing): enforce our policy on the token stream."""
    for token in state.tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + 2, 6)}"
        elif token.type in ("th_open", "td_open"):
            style = token.attrs.pop("style", None)
            match = _ALIGN.fullmatch(str(style or ""))
            if match:
                token.attrSet("class", f"align-{match[1]}")
        elif token.type == "inline" and token.children:
            token.children = _safe_inline(token.children)


def _safe_inline(children: list) -> list:
    kept = []
    # One entry per open link: whether its anchor survives (links can't nest in CommonMark,
    # but an image inside a link must not become a second, nested anchor).
    links: list[bool] = []
    for token in children:
        if token.type == "link_open":
            ok = _url_ok(str(token.attrGet("href") or ""))
            links.append(ok)
            if not ok:
                continue
        elif token.type == "link_close":
            if links and not links.pop():
                continue
        elif token.type == "image":
            token.meta["in_link"] = bool(links)
        kept.append(token)
    return kept


def _render_image(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], options, env).strip() or "image"
    label = escapeHtml(f"🖼 {alt}")
    src = str(token.attrGet("src") or "")
    if token.meta.get("in_link") or not _url_ok(src, image=True):
        return label
    return f'<a href="{escapeHtml(src)}">{label}</a>'


def _render_code(code: str, lang: str, env: dict) -> str:
    inner, canonical = _highlight(code, lang, plain=env.get("plain_code", False))
    env.setdefault("code_labels", []).append(lang[:_LANG_LABEL_MAX] or "text")
    code_class = f' class="language-{escapeHtml(canonical)}"' if canonical else ""
    return f'<pre class="{_PRE_MARKER}"><code{code_class}>{inner}</code></pre>\n'


def _render_fence(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    info = unescapeAll(token.info).strip()
    lang = info.split(maxsplit=1)[0] if info else ""
    return _render_code(token.content, lang, env)


def _render_code_block(self, tokens, idx, options, env) -> str:
    return _render_code(tokens[idx].content, "", env)


def _math(tex: str, *, display: bool) -> str:
    """TeX → MathML (sanitized with the rest of the page), or the TeX as code if it won't go."""
    source = tex.strip()
    if source and len(source) <= MAX_MATH_CHARS:
        try:
            mathml = latex2mathml.converter.convert(
                source, display="block" if display else "inline"
            )
        except Exception:  # any TeX the converter can't take is shown as code
            mathml = None
        if mathml is not None and _is_plain_mathml(mathml):
            return mathml
    delimiter = "$$" if display else "$"
    code = f'<code class="math-source">{escapeHtml(delimiter + source + delimiter)}</code>'
    return f"<p>{code}</p>\n" if display else code


def _is_plain_mathml(mathml: str) -> bool:
    """Whether the converter's output is well-formed MathML made of MathML elements only.
    `\\text{<b>…}` comes out as raw markup; rather than let the sanitizer tidy a half-parsed
    formula into something else, such a formula is shown as its TeX."""
    if "<!" in mathml or "<?" in mathml:  # no doctype, entity declarations or instructions
        return False
    try:
        root = ElementTree.fromstring(mathml)  # noqa: S314 - no DTD (checked above), our own output
    except ElementTree.ParseError:
        return False
    return all(element.tag.rpartition("}")[2] in MATH_TAGS for element in root.iter())


def _render_math_inline(self, tokens, idx, options, env) -> str:
    return _math(tokens[idx].content, display=False)


def _render_math_block(self, tokens, idx, options, env) -> str:
    return f'<div class="math-block">{_math(tokens[idx].content, display=True)}</div>\n'


def _build_markdown() -> MarkdownIt:
    md = MarkdownIt(
        "commonmark",
        {"html": False, "linkify": False, "breaks": True, "typographer": False},
    ).enable(["table", "strikethrough"])
    # Math first, so TeX reaches the converter untouched by Markdown's escapes and emphasis.
    # `$5 and $10` is money: a dollar followed by a digit never opens math.
    md.use(dollarmath_plugin, allow_space=True, allow_digits=False, double_inline=True)
    md.use(texmath_plugin, delimiters="brackets")
    md.use(tasklists_plugin, enabled=False, label=True)
    for rule in ("math_inline", "math_inline_double", "math_single"):
        md.add_render_rule(rule, _render_math_inline)
    for rule in ("math_block", "math_block_label", "math_block_eqno"):
        md.add_render_rule(rule, _render_math_block)
    # markdown-it's own check refuses some schemes and leaves "[x](javascript:…)" as literal
    # source text; we parse every link and let _safe_inline decide, so the text survives
    # without its anchor. nh3 checks again below.
    md.validateLink = lambda url: True
    md.core.ruler.push("workbench_safe", _safe_tokens)
    md.add_render_rule("image", _render_image)
    md.add_render_rule("fence", _render_fence)
    md.add_render_rule("code_block", _render_code_block)
    return md


_MD = _build_markdown()

# ---------------------------------------------------------------------------------------------
# nh3: explicit allowlists, built once.

# MathML as latex2mathml writes it: presentation elements and attributes, nothing that links,
# loads or runs (no href, no maction, no annotation-xml).
MATH_TAGS = frozenset(
    {
        "math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "mfrac", "msqrt", "mroot",
        "msub", "msup", "msubsup", "munder", "mover", "munderover", "mtable", "mtr", "mtd",
        "mstyle", "mpadded", "mphantom", "menclose",
    }
)  # fmt: skip
MATH_ATTRIBUTES = frozenset(
    {
        "display", "mathvariant", "mathcolor", "mathbackground", "mathsize", "stretchy",
        "fence", "separator", "form", "lspace", "rspace", "largeop", "movablelimits", "minsize",
        "maxsize", "symmetric", "accent", "accentunder", "columnalign", "columnlines",
        "columnspacing", "rowalign", "rowlines", "rowspacing", "linethickness", "notation",
        "width", "height", "depth", "voffset", "displaystyle", "scriptlevel",
    }
)  # fmt: skip
ALLOWED_TAGS = frozenset(
    {
        "p", "br", "hr", "blockquote", "div",
        "h3", "h4", "h5", "h6",
        "strong", "em", "s", "code", "pre", "span", "a",
        "ul", "ol", "li", "label", "input",
        "table", "thead", "tbody", "tr", "th", "td",
    }
    | MATH_TAGS
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "ol": {"start"},
    "input": {"type", "checked", "disabled"},
    **{tag: set(MATH_ATTRIBUTES) for tag in MATH_TAGS},
}
ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto"})
_PYGMENTS_CLASSES = frozenset(c for c in STANDARD_TYPES.values() if c)
_ALIGN_CLASSES = frozenset({"align-left", "align-center", "align-right"})
ALLOWED_CLASSES = {
    "pre": {_PRE_MARKER},
    "code": {f"language-{canonical}" for canonical in set(_ALIASES.values())} | {"math-source"},
    "div": {"math-block"},
    "ul": {"contains-task-list"},
    "ol": {"contains-task-list"},
    "li": {"task-list-item"},
    "input": {"task-list-item-checkbox"},
    "span": set(_PYGMENTS_CLASSES),
    "th": set(_ALIGN_CLASSES),
    "td": set(_ALIGN_CLASSES),
}

_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    clean_content_tags={"script", "style", "iframe", "svg", "template", "noscript"},
    attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
    allowed_classes=ALLOWED_CLASSES,
    url_schemes=set(ALLOWED_URL_SCHEMES),
    url_relative="deny",
    link_rel="noopener noreferrer nofollow",
    set_tag_attribute_values={
        "a": {"target": "_blank"},
        "input": {"type": "checkbox", "disabled": "disabled"},
        "div": {"tabindex": "0"},  # only `.math-block` (wide formulas scroll: keyboard too)
    },
    strip_comments=True,
)

# ---------------------------------------------------------------------------------------------
# After sanitizing: wrap our marked <pre>s (and only those) with the header and copy button.
# Inside a sanitized <pre> every "<" of the code is escaped, so its first "</pre>" is its own.
_MARKED_PRE = re.compile(rf'<pre class="{_PRE_MARKER}">(.*?)</pre>', re.DOTALL)


def _add_code_chrome(html: str, labels: list[str]) -> str:
    labels_left = iter(labels)

    def wrap(match: re.Match) -> str:
        label = escape(next(labels_left, "text"))
        return (
            '<div class="code-block"><div class="code-head">'
            f'<span class="code-lang">{label}</span>'
            # Focusable: a long line scrolls sideways, and keyboard users must reach it.
            '<button type="button" class="code-copy" data-copy-code>'
            'Copy<span class="sr-only"> code</span></button>'
            f'</div><pre class="code" tabindex="0">{match[1]}</pre></div>'
        )

    html = _MARKED_PRE.sub(wrap, html)
    # Belt and braces: no marker may ever leave this module.
    return html.replace(_PRE_MARKER, "code") if _PRE_MARKER in html else html


def render_markdown(text: str, *, highlight: bool = True) -> SafeString:
    """Markdown (model or user text) → sanitized HTML, safe to put in a page as is.
    `highlight=False` leaves code plain (a reply's unfinished code block while it streams).
    Beyond MAX_MARKDOWN_CHARS: plain text."""
    if not text:
        return SafeString("")
    if len(text) > MAX_MARKDOWN_CHARS:
        return render_plain(text)
    env: dict = {} if highlight else {"plain_code": True}
    html = _MD.render(clean(text), env)  # the sanitizer can't take lone surrogates
    html = _CLEANER.clean(html)
    html = _add_code_chrome(html, env.get("code_labels", []))
    return mark_safe(html)  # noqa: S308 - markdown-it (html=False) → nh3 allowlist → our own markup


def block_starts(text: str) -> list[int]:
    """The line numbers where the top-level blocks of `text` start (block parsing only)."""
    tokens: list = []
    _MD.block.parse(text, _MD, {}, tokens)
    return [
        token.map[0]
        for token in tokens
        if token.level == 0 and token.nesting >= 0 and token.map is not None
    ]


def render_plain(text: str) -> SafeString:
    """Escaped text, paragraphs and line breaks kept: previews and streaming fallbacks."""
    if not text:
        return SafeString("")
    return mark_safe(linebreaks(text, autoescape=True))  # noqa: S308 - escaped by linebreaks


# ---------------------------------------------------------------------------------------------
# Stylesheet.

_RESET = (
    "color: inherit; background-color: transparent; font-weight: inherit; "
    "font-style: inherit; text-decoration: inherit; border: 0"
)


def _style_rules(style_name: str, scope: str, *, reset: frozenset[str] = frozenset()) -> list[str]:
    """CSS rules for one Pygments style under `scope`. Classes in `reset` that the style does
    not set fully are reset first, so one theme's token colours never bleed into the other."""
    style = get_style_by_name(style_name)
    formatter = HtmlFormatter(style=style_name)
    base = formatter.class2style.get("", ("",))[0]
    rules = [
        f"{scope} {{ background-color: {style.background_color}; {base or 'color: inherit'} }}"
    ]
    for cls in sorted(reset | (set(formatter.class2style) - {""})):
        decl = formatter.class2style.get(cls, ("",))[0]
        if reset:
            decl = f"{_RESET}; {decl}" if decl else _RESET
        rules.append(f"{scope} .{cls} {{ {decl} }}")
    return rules


@functools.cache
def pygments_css() -> str:
    """The stylesheet for rendered Markdown: Pygments token classes under `.code` (light),
    `:root[data-theme="dark"] .code` and the system dark preference (unless the page is set to
    light) — matching app.css — plus table alignment classes. Serve it as a static file."""
    light_classes = frozenset(set(HtmlFormatter(style=LIGHT_STYLE).class2style) - {""})
    light = _style_rules(LIGHT_STYLE, ".code")
    dark_explicit = _style_rules(DARK_STYLE, ':root[data-theme="dark"] .code', reset=light_classes)
    dark_system = _style_rules(
        DARK_STYLE, ':root:not([data-theme="light"]) .code', reset=light_classes
    )
    lines = [
        f"/* Code highlighting (Pygments {LIGHT_STYLE} / {DARK_STYLE}) and Markdown tables. */",
        ".code code { background: transparent; padding: 0; color: inherit; }",
        ".align-left { text-align: left; }",
        ".align-center { text-align: center; }",
        ".align-right { text-align: right; }",
        *light,
        *dark_explicit,
        "@media (prefers-color-scheme: dark) {",
        *(f"  {rule}" for rule in dark_system),
        "}",
    ]
    return "\n".join(lines) + "\n"
