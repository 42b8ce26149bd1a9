"""chats.progressive: a streaming reply rendered as it grows (issue 9, bug 6). The page applies
the payloads in order; at every point it must show exactly what rendering the text so far in one
go shows, so nothing jumps when the final rendering replaces it."""

from __future__ import annotations

import random

import pytest

from chats.progressive import ProgressiveRender
from chats.rendering import render_markdown

REPLY = """# Plan

Here is the plan, with **bold** and `code` and math $x^2 + y_1$.

1. First step
2. Second step with a [link](https://example.com)
   - nested *item*
   - another

- [x] done
- [ ] to do

| Name | Value |
|:-----|------:|
| a    | 1     |
| b    | 2     |

> A quote
continued lazily

```python
def greet(name):
    return f"Hello {name}!"
```

Setext heading
--------------

    indented code

$$
\\int_0^1 x\\,dx
$$

***

Last paragraph.
"""


def apply(payload: dict, page: dict) -> None:
    """What streams.js does with a payload."""
    if payload["v"] <= page["v"]:
        return
    assert payload["from"] <= len(page["blocks"]), (payload["from"], len(page["blocks"]))
    del page["blocks"][payload["from"] :]
    page["blocks"].extend(payload["blocks"])
    page["tail"] = payload["tail"]
    page["v"] = payload["v"]


def shown(page: dict) -> str:
    return "".join(page["blocks"]) + page["tail"]


def stream(text: str, cuts) -> tuple[ProgressiveRender, dict]:
    renderer = ProgressiveRender()
    page = {"v": 0, "blocks": [], "tail": ""}
    for cut in cuts:
        apply(renderer.update(text[:cut]), page)
    return renderer, page


def test_every_prefix_shows_what_rendering_it_at_once_shows():
    renderer = ProgressiveRender()
    page = {"v": 0, "blocks": [], "tail": ""}
    for cut in range(1, len(REPLY) + 1):
        apply(renderer.update(REPLY[:cut]), page)
        prefix = REPLY[:cut]
        fence_open = prefix.count("```") % 2 == 1
        if not fence_open:  # an open fence is shown unhighlighted on purpose (tested below)
            assert shown(page) == str(render_markdown(prefix)), repr(prefix[-40:])
    assert shown(page) == str(render_markdown(REPLY))


@pytest.mark.parametrize("seed", range(5))
def test_frames_of_any_size_end_in_the_final_rendering(seed):
    chance = random.Random(seed)
    cuts, at = [], 0
    while at < len(REPLY):
        at = min(len(REPLY), at + chance.randint(1, 80))
        cuts.append(at)
    renderer, page = stream(REPLY, cuts)
    assert shown(page) == str(render_markdown(REPLY))
    assert len(renderer.blocks) > 5  # finished blocks were committed, not re-rendered
    assert renderer.state()["from"] == 0
    assert "".join(renderer.state()["blocks"]) + renderer.state()["tail"] == shown(page)


def test_finished_blocks_are_rendered_once_and_the_tail_is_only_the_last_block():
    text = "First paragraph.\n\nSecond paragraph.\n\n- a list\n- still growing"
    renderer = ProgressiveRender()
    first = renderer.update(text)
    assert first["from"] == 0
    assert first["blocks"] == [str(render_markdown("First paragraph.\n\nSecond paragraph.\n\n"))]
    assert first["tail"] == str(render_markdown("- a list\n- still growing"))
    second = renderer.update(text + "\n- third")
    assert second["from"] == 1 and second["blocks"] == []  # nothing re-sent
    assert "third" in second["tail"] and "First" not in second["tail"]
    assert second["v"] > first["v"]


def test_an_open_code_fence_is_plain_until_it_closes_then_highlighted():
    renderer = ProgressiveRender()
    open_fence = renderer.update("Code:\n\n```python\ndef f():\n    return 1\n")
    assert '<span class="k">' not in open_fence["tail"] and "def f():" in open_fence["tail"]
    assert 'class="code-block"' in open_fence["tail"]  # the same box: nothing jumps
    closed = renderer.update("Code:\n\n```python\ndef f():\n    return 1\n```\n")
    assert '<span class="k">def</span>' in closed["tail"]


def test_a_link_reference_definition_stops_committing_and_renders_whole():
    text = "See [the docs][1].\n\nMore text.\n\n[1]: https://example.com/docs\n"
    renderer, page = stream(text, range(1, len(text) + 1))
    assert renderer.frozen
    assert shown(page) == str(render_markdown(text))
    assert 'href="https://example.com/docs"' in shown(page)


def test_windows_line_endings_render_like_the_final_text():
    text = "One\r\n\r\n- a\r\n- b\r\n\r\nTwo\r\n"
    _, page = stream(text, range(1, len(text) + 1))
    assert shown(page) == str(render_markdown(text))
