"""A reply's Markdown rendered while it streams, through the one renderer (chats.rendering).

Re-rendering the whole reply on every frame would cost O(n²) over a long reply, so the text is
split into *committed* blocks and a *tail*:

- A top-level block that has another block after it is finished: appending text can't change
  it (CommonMark closes a block for good once a later one starts). Such blocks are rendered
  once, sent once, and kept.
- The tail — the last top-level block, which may still grow — is rendered again on each frame.

Rendering blocks one by one gives the same HTML as rendering the whole text, except when a
reference-style link definition (`[x]: https://…`) appears: it can change earlier blocks, so
once the text has one, nothing more is committed (the whole rest is the tail). An unclosed code
fence is shown unhighlighted (highlighting per frame costs the most; the colours arrive when the
fence closes). Whatever the streaming rendering showed, the final frame's HTML is authoritative.

`update(text)` returns a payload: ``{"v": 812, "from": 3, "blocks": ["<p>…</p>"], "tail": "<ul>…"}``
— keep the first `from` committed blocks, append `blocks`, replace the tail. `v` is the length of
the text rendered, so a page applies only renderings newer than what it shows, whichever process
(or database checkpoint) they came from; `state()` is the whole rendering (`from` 0), which also
repairs a page that missed blocks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from chats.rendering import block_starts, render_markdown

# A line that defines a link reference: it changes how earlier blocks render.
_REFERENCE = re.compile(r"^ {0,3}\[[^\]\n]+\]:", re.MULTILINE)
_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.MULTILINE)


def _normalize(text: str) -> str:
    # What markdown-it does to its input first; offsets below are into this text.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _line_offsets(text: str) -> list[int]:
    offsets = [0]
    offsets.extend(match.end() for match in re.finditer("\n", text))
    return offsets


def _open_fence(text: str) -> bool:
    """Whether `text` (one block) is a fenced code block that hasn't been closed yet."""
    match = _FENCE_OPEN.match(text.lstrip("\n"))
    if match is None:
        return False
    marker = match.group(1)
    closing = re.compile(rf"^ {{0,3}}{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$", re.MULTILINE)
    rest = text.lstrip("\n")[match.end() :]
    first_newline = rest.find("\n")
    return first_newline < 0 or closing.search(rest, first_newline + 1) is None


@dataclass
class ProgressiveRender:
    committed: int = 0  # characters of the (normalized) text rendered into `blocks`
    blocks: list[str] = field(default_factory=list)
    tail: str = ""
    version: int = 0
    frozen: bool = False  # a link reference definition was seen: commit nothing more

    def update(self, text: str) -> dict:
        """Render `text` (the whole reply so far); return what changed since the last update."""
        text = _normalize(text)
        start = len(self.blocks)
        if not self.frozen and _REFERENCE.search(text):
            # Earlier blocks may render differently now: start again, and keep everything in
            # the tail from here on.
            self.frozen, self.committed, self.blocks, start = True, 0, [], 0
        rest = text[self.committed :]
        if not self.frozen:
            cut = self._last_block_start(rest)
            if cut > 0:
                self.blocks.append(str(render_markdown(rest[:cut])))
                self.committed += cut
                rest = rest[cut:]
        self.tail = str(render_markdown(rest, highlight=not _open_fence(rest)))
        self.version = len(text)
        return {"v": self.version, "from": start, "blocks": self.blocks[start:], "tail": self.tail}

    def state(self) -> dict:
        """Everything rendered so far (for a watcher that connects mid-reply)."""
        return {"v": self.version, "from": 0, "blocks": list(self.blocks), "tail": self.tail}

    @staticmethod
    def _last_block_start(text: str) -> int:
        """The offset where the last top-level block of `text` starts (0: only one block)."""
        starts = block_starts(text)
        if len(starts) < 2:
            return 0
        return _line_offsets(text)[starts[-1]]
