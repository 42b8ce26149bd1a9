"""chats.rendering: Markdown → HTML → nh3, code highlighting, and the copy-button chrome."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser

import pytest
from django.utils.safestring import SafeString

from chats import rendering
from chats.rendering import pygments_css, render_markdown, render_plain

SAFE_HREF = re.compile(r"(https?://|mailto:)", re.IGNORECASE)
FORBIDDEN_TAGS = {
    "script", "style", "iframe", "img", "svg", "form", "object", "embed", "maction",
    "link", "meta", "base", "frame", "frameset", "textarea", "select", "video", "audio",
    "source", "template",
}  # fmt: skip


class Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Collector()
    parser.feed(html)
    parser.close()
    return parser.elements


def assert_safe(html: str) -> list[tuple[str, dict[str, str | None]]]:
    """The invariants every rendering must hold, checked on the parsed output."""
    found = elements(html)
    for tag, attrs in found:
        assert tag not in FORBIDDEN_TAGS, (tag, html)
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name, html)
            assert name != "style", (tag, html)
            assert name not in {"src", "srcset", "action", "formaction", "xlink:href"}, html
            if name == "href":
                assert value and SAFE_HREF.match(value), (value, html)
        if tag == "button":
            # Only our copy button, only in our header.
            assert attrs == {"type": "button", "class": "code-copy", "data-copy-code": None}
        if tag == "input":  # only a task list's checkbox, never one that can be used
            assert attrs.get("type") == "checkbox" and attrs.get("disabled") == "disabled", attrs
            assert set(attrs) <= {"type", "disabled", "checked", "class"}, attrs
        if tag in rendering.MATH_TAGS:
            assert set(attrs) <= rendering.MATH_ATTRIBUTES, (tag, attrs)
    assert rendering._PRE_MARKER not in html
    return found


def tags(html: str, name: str) -> list[dict[str, str | None]]:
    return [attrs for tag, attrs in elements(html) if tag == name]


def render(text: str) -> str:
    html = render_markdown(text)
    assert isinstance(html, SafeString)
    assert_safe(html)
    return str(html)


# --- Markdown features ----------------------------------------------------------------------


def test_headings_are_demoted_by_two_levels():
    html = render("# One\n## Two\n### Three\n#### Four\n###### Six")
    assert "<h3>One</h3>" in html
    assert "<h4>Two</h4>" in html
    assert "<h5>Three</h5>" in html
    assert "<h6>Four</h6>" in html
    assert "<h6>Six</h6>" in html
    assert "<h1" not in html and "<h2" not in html


def test_lists_blockquotes_rules_and_emphasis_render():
    html = render("- a\n- *b* **c** ~~d~~ `e<f>`\n\n3. x\n4. y\n\n> quoted\n\n---")
    assert "<ul>" in html and "<li>a</li>" in html
    assert "<em>b</em>" in html and "<strong>c</strong>" in html and "<s>d</s>" in html
    assert "<code>e&lt;f&gt;</code>" in html
    assert '<ol start="3">' in html
    assert "<blockquote>" in html and "<hr>" in html


def test_single_newlines_become_line_breaks():
    assert "<p>one<br>\ntwo</p>" in render("one\ntwo")


def test_tables_render_with_alignment_classes_not_styles():
    html = render("| a | b | c |\n|:--|:-:|--:|\n| 1 | 2 | 3 |")
    assert "<table>" in html and "<thead>" in html and "<tbody>" in html
    assert '<th class="align-left">a</th>' in html
    assert '<td class="align-center">2</td>' in html
    assert '<td class="align-right">3</td>' in html
    assert "style" not in html


def test_empty_text_renders_as_empty_safe_string():
    assert render_markdown("") == ""
    assert isinstance(render_markdown(""), SafeString)


# --- code -----------------------------------------------------------------------------------


def test_a_python_fence_is_highlighted_with_classes_and_gets_the_header_and_copy_button():
    html = render("```python\ndef f(x):\n    return '<b>'\n```")
    assert html.startswith(
        '<div class="code-block"><div class="code-head"><span class="code-lang">python</span>'
        '<button type="button" class="code-copy" data-copy-code>Copy<span class="sr-only"> code</span>'
        '</button></div><pre class="code" tabindex="0"><code class="language-python">'
    )
    assert '<span class="k">def</span>' in html
    assert '<span class="nf">f</span>' in html
    assert "&lt;b&gt;" in html and "<b>" not in html
    assert html.rstrip().endswith("</code></pre></div>")
    assert len(tags(html, "button")) == 1


def test_a_fence_alias_uses_the_canonical_language_class_and_shows_the_written_name():
    html = render("```py\nimport os\n```")
    assert '<span class="code-lang">py</span>' in html
    assert '<code class="language-python">' in html
    assert '<span class="kn">import</span>' in html


def test_an_unknown_language_is_plain_escaped_text_without_guessing():
    html = render("```mermaid\ngraph TD; A-->B; <x>\n```")
    assert '<span class="code-lang">mermaid</span>' in html
    assert (
        '<pre class="code" tabindex="0"><code>graph TD; A--&gt;B; &lt;x&gt;\n</code></pre>' in html
    )
    assert not tags(html, "span")[2:]  # only the language label and the button's "code"


def test_a_fence_without_language_is_plain_and_labelled_text():
    html = render("```\nprint(1)\n```")
    assert '<span class="code-lang">text</span>' in html
    assert "<code>print(1)\n</code>" in html


def test_an_indented_code_block_gets_the_same_chrome():
    html = render("para\n\n    indented <code>\n")
    assert '<pre class="code" tabindex="0"><code>indented &lt;code&gt;\n</code></pre>' in html
    assert len(tags(html, "button")) == 1


def test_markdown_inside_code_stays_literal():
    html = render("```\n# not a heading\n**not bold** [x](https://e.example) <b>\n```\n`*a*`")
    assert "# not a heading" in html
    assert "**not bold** [x](https://e.example) &lt;b&gt;" in html
    assert "<strong>" not in html and "<a " not in html and "<h" not in html.replace("<hr", "")
    assert "<code>*a*</code>" in html


def test_code_that_contains_pre_and_button_markup_cannot_make_a_button_or_unwrap():
    text = (
        '```html\n</pre></div><button data-copy-code>x</button><pre class="code">\n```\n\n'
        '```\n</code></pre><button type="button" class="code-copy" data-copy-code>Copy</button>\n```'
    )
    html = render(text)
    assert len(tags(html, "button")) == 2  # one per fence, ours
    assert len(tags(html, "pre")) == 2
    assert html.count('<div class="code-block">') == 2
    assert "&lt;button data-copy-code&gt;" in html or "data-copy-code</span>" in html


def test_the_marker_class_in_model_text_is_inert_even_if_the_nonce_leaked():
    marker = rendering._PRE_MARKER
    text = (
        f'<pre class="{marker}">raw</pre>\n\n'
        f"```{marker}\nbody {marker}\n```\n\n"
        f'```\n<pre class="{marker}">inside</pre>\n```\n\n'
        f"`{marker}` and [{marker}](https://ok.example)"
    )
    html = render_markdown(text)
    found = elements(html)
    assert sum(1 for tag, _ in found if tag == "button") == 2  # the two fences
    assert sum(1 for tag, _ in found if tag == "pre") == 2
    assert all(attrs.get("class") == "code" for tag, attrs in found if tag == "pre")
    # The raw HTML stayed text, never a <pre>.
    assert "&lt;pre class=" in html


def test_extremely_long_lines_render_and_stay_safe():
    long_word = "a" * 150_000  # the whole text stays under MAX_MARKDOWN_CHARS (rendered)
    html = render(f"{long_word}\n\n```python\nx = '{'b' * 150_000}'\n```\n\n" + "<" * 50_000)
    assert long_word in html
    assert "&lt;" * 100 in html
    assert len(tags(html, "button")) == 1


def test_a_text_beyond_the_markdown_limit_is_shown_as_escaped_plain_text():
    text = "**bold** <script>x</script>\n" + "a" * rendering.MAX_MARKDOWN_CHARS
    html = render(text)
    assert "<strong>" not in html and "<script>" not in html
    assert "**bold** &lt;script&gt;" in html


def test_a_huge_code_block_is_shown_plain_rather_than_highlighted():
    code = "x = 1\n" * (rendering.MAX_HIGHLIGHT_CHARS // 6 + 10)
    html = render(f"```python\n{code}```")
    assert '<code class="language-python">x = 1\n' in html


def test_deep_nesting_is_bounded():
    html = render(">" * 2000 + " deep\n\n" + "- " * 2000 + "x\n\n" + "[" * 5000 + "x" + "]" * 5000)
    assert html.count("<blockquote>") <= 100


# --- links and images -----------------------------------------------------------------------


def test_links_get_rel_and_target_and_keep_safe_urls():
    html = render('[ok](https://ok.example/a?b=1&c=2 "Title") <http://plain.example> <a@b.example>')
    links = tags(html, "a")
    assert [a["href"] for a in links] == [
        "https://ok.example/a?b=1&c=2",
        "http://plain.example",
        "mailto:a@b.example",
    ]
    for a in links:
        assert a["rel"] == "noopener noreferrer nofollow"
        assert a["target"] == "_blank"
    assert links[0]["title"] == "Title"


@pytest.mark.parametrize(
    "text",
    [
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](java&#x09;script:alert(1))",
        "[x](java&#10;script:alert(1))",
        "[x](&#106;avascript:alert(1))",
        "[x]( javascript:alert(1))",
        "[x](<javascript:alert(1)>)",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[x](vbscript:msgbox(1))",
        "[x](file:///etc/passwd)",
        "[x](/accounts/logout/)",
        "[x](//evil.example/)",
        "[x](https:/accounts/logout/)",
        "[x](#top)",
        "[x][r]\n\n[r]: javascript:alert(1)",
    ],
)
def test_unsafe_and_relative_links_lose_the_anchor_but_keep_the_text(text):
    html = render(text)
    assert not tags(html, "a")
    assert html.startswith("<p>x</p>")


def test_an_autolink_with_a_bad_scheme_stays_text():
    html = render("<javascript:alert(1)>")
    assert not tags(html, "a")
    assert "javascript:alert(1)" in html


def test_an_external_image_becomes_a_link_and_never_an_img():
    html = render("![a tracker](https://evil.example/track.png)")
    assert "<img" not in html
    (link,) = tags(html, "a")
    assert link["href"] == "https://evil.example/track.png"
    assert "🖼 a tracker</a>" in html


def test_images_with_other_urls_or_inside_links_become_plain_text():
    html = render(
        "![d](data:image/png;base64,AAAA) ![r](/media/x.png) ![j](javascript:alert(1)) "
        "[![inner](https://img.example/x.png)](https://page.example)"
    )
    assert "<img" not in html
    assert "🖼 d" in html and "🖼 r" in html and "🖼 j" in html
    assert [a["href"] for a in tags(html, "a")] == ["https://page.example"]


# --- raw HTML -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "visible"),
    [
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
        ('<a href="javascript:alert(1)">x</a>', '&lt;a href="javascript:alert(1)"&gt;'),
        ('<a href="http://ok">ok</a>', '&lt;a href="http://ok"&gt;ok&lt;/a&gt;'),
        ('<iframe src="https://evil.example"></iframe>', "&lt;iframe"),
        ("<svg onload=alert(1)><circle/></svg>", "&lt;svg onload=alert(1)&gt;"),
        ("<style>body{display:none}</style>", "&lt;style&gt;"),
        ("<math><mi>x</mi></math>", "&lt;math&gt;"),
        ('<form action="https://evil.example"><input name=a></form>', "&lt;form"),
        ('<p style="color:red" onclick="x()">hi</p>', '&lt;p style="color:red" onclick="x()"&gt;'),
        ("<!-- comment --><b>bold</b>", "&lt;!-- comment --&gt;&lt;b&gt;"),
        ("<div>\n<script>alert(1)</script>\n</div>", "&lt;div&gt;"),
    ],
)
def test_raw_html_is_escaped_never_passed_through(text, visible):
    html = render(text)
    assert visible in html
    assert not tags(html, "a")


def test_entities_do_not_smuggle_markup():
    html = render("&lt;script&gt;alert(1)&lt;/script&gt; &#60;img src=x onerror=alert(1)&#62;")
    assert "&lt;script&gt;" in html and "&lt;img" in html


# --- plain ----------------------------------------------------------------------------------


def test_render_plain_escapes_and_keeps_line_breaks():
    html = render_plain('a <script>"x"</script>\nb\n\nc')
    assert isinstance(html, SafeString)
    assert html == "<p>a &lt;script&gt;&quot;x&quot;&lt;/script&gt;<br>b</p>\n\n<p>c</p>"
    assert render_plain("") == ""


# --- stylesheet -----------------------------------------------------------------------------


def test_pygments_css_covers_light_and_both_dark_switches_without_unscoped_rules():
    css = pygments_css()
    assert ".code .k {" in css
    assert ':root[data-theme="dark"] .code .k {' in css
    assert "@media (prefers-color-scheme: dark)" in css
    assert ':root:not([data-theme="light"]) .code .k {' in css
    assert ".align-right { text-align: right; }" in css
    for line in css.splitlines():
        line = line.strip()
        if line.endswith("{ ") or not line.endswith("}") or line == "}":
            continue
        selector = line.split("{", 1)[0]
        assert ".code" in selector or selector.startswith(".align-"), line


def test_dark_rules_reset_every_light_token_class_so_colours_do_not_bleed():
    css = pygments_css()
    light = set(re.findall(r"^\.code \.([\w-]+) \{", css, re.MULTILINE))
    dark = set(re.findall(r'^:root\[data-theme="dark"\] \.code \.([\w-]+) \{', css, re.MULTILINE))
    assert light and light <= dark


# --- performance ----------------------------------------------------------------------------


CODE_BLOCK = (
    "```python\n"
    + (
        "def handler(event: dict) -> dict:\n"
        '    """Handle one event."""\n'
        '    body = json.loads(event["body"])  # parse the payload\n'
        '    return {"status": 200, "items": [x * 2 for x in body["items"]]}\n\n'
    )
    * 6
    + "```\n\n"
)
PROSE = (
    "## Step {n}\n\n"
    "Here is **some** explanation with `inline code`, a [link](https://docs.example/{n}) and "
    "enough ordinary words to look like an assistant's answer, *emphasis* included.\n"
    "A second line of the same paragraph.\n\n"
    "- first item with *emphasis*\n- second item\n- third ~~item~~\n\n"
    "| key | value |\n|---|--:|\n| a | 1 |\n| b | 2 |\n\n"
    "> A quote to finish the section.\n\n"
)


def _reply_of_about_20_kb(code_blocks: int = 3) -> str:
    """~20 KB of Markdown prose with `code_blocks` Python blocks of ~1.3 KB each."""
    text = CODE_BLOCK * code_blocks
    n = 0
    while len(text) < 20_000:
        n += 1
        text += PROSE.format(n=n)
    return text


def test_a_20_kb_reply_renders_quickly():
    text = _reply_of_about_20_kb()
    render_markdown(text)  # warm the lexer cache
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        html = render_markdown(text)
        runs.append(time.perf_counter() - started)
    best = min(runs) * 1000
    print(f"render_markdown: {len(text)} chars in {best:.1f} ms (best of 5)")
    assert_safe(html)
    assert html.count("data-copy-code") == 3
    assert best < 200


# --- math and task lists (issue 9, bug 15) ----------------------------------------------------


def test_inline_and_display_math_become_mathml_with_their_backslashes_intact():
    html = render(
        "Euler: $e^{i\\pi} + 1 = 0$ and \\(\\alpha_1\\).\n\n"
        "$$\n\\sum_{n=1}^\\infty \\frac{1}{n^2} = \\frac{\\pi^2}{6}\n$$\n\n"
        "\\[ \\{x \\mid x_1 > 0\\} \\]"
    )
    assert html.count("<math") == 4
    assert '<math display="inline"><mrow><msup><mi>e</mi><mrow><mi>i</mi><mi>π</mi>' in html
    assert "<msub><mi>α</mi><mn>1</mn></msub>" in html
    assert (
        '<div class="math-block" tabindex="0"><math display="block"><mrow><munderover><mo>∑</mo>'
        in html
    )
    assert "<mfrac>" in html and "\\frac" not in html and "\\pi" not in html
    # Markdown would have eaten these backslashes and read the underscore as emphasis.
    assert '<mo stretchy="false">{</mo>' in html and "<msub><mi>x</mi><mn>1</mn></msub>" in html
    assert "<em>" not in html


def test_dollar_amounts_are_money_not_math():
    html = render("It costs $5 and $10, or $3.50 each.")
    assert "<math" not in html and "$5 and $10, or $3.50 each." in html


def test_tex_that_does_not_convert_is_shown_as_its_source_in_code():
    html = render("Broken: $\\frac{1}{$ here")
    assert '<code class="math-source">$\\frac{1}{$</code>' in html
    assert "<math" not in html


@pytest.mark.parametrize(
    "tex",
    [
        "\\href{javascript:alert(1)}{click}",
        "\\text{<img src=x onerror=alert(1)>}",
        "\\text{</math><script>alert(1)</script>}",
        "\\text{<a href=javascript:alert(1)>x</a>}",
        "\\color{red}{x} \\style{background:url(https://evil.example)}{y}",
    ],
)
def test_hostile_tex_makes_no_link_no_script_and_no_markup(tex):
    for text in (f"${tex}$", f"$$\n{tex}\n$$"):
        html = render(text)
        assert "javascript" not in html.replace("javascript:alert(1)", "") or "<code" in html
        assert not tags(html, "a") and not tags(html, "script") and not tags(html, "img")
        for tag, attrs in elements(html):
            assert "href" not in attrs and "style" not in attrs, (tag, attrs)


def test_a_huge_formula_is_shown_as_source_not_converted():
    tex = "x+" * (rendering.MAX_MATH_CHARS // 2 + 1)
    html = render(f"${tex}$")
    assert "<math" not in html and 'class="math-source"' in html


def test_task_lists_get_disabled_checkboxes_with_their_text_as_label():
    html = render("- [ ] todo\n- [x] done *now*\n- plain [ ] item")
    boxes = tags(html, "input")
    assert [box.get("checked") for box in boxes] == [None, "checked"]
    assert all(box["type"] == "checkbox" and box["disabled"] == "disabled" for box in boxes)
    assert (
        '<label><input class="task-list-item-checkbox" disabled="disabled" type="checkbox"> todo</label>'
        in html
    )
    assert "<em>now</em>" in html and "plain [ ] item" in html
    assert '<ul class="contains-task-list">' in html


def test_model_text_cannot_make_an_input_of_its_own():
    html = render('<input type="text" autofocus onfocus="x()"> and `<input>`')
    assert not tags(html, "input")
