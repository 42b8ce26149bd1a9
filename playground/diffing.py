"""A word-level diff between two answers (difflib over words, whitespace kept), for the page to
show what one model said that the other did not. Bounded: very long answers are compared on
their first MAX_WORDS words and the page says so."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

MAX_WORDS = 4000
_WORDS = re.compile(r"\s+|[^\s]+")


@dataclass(frozen=True)
class Segment:
    op: str  # equal | delete (only in A) | insert (only in B)
    text: str


@dataclass(frozen=True)
class WordDiff:
    segments: list[Segment]
    similarity: float  # 0..1 over words
    only_a: int  # words only in A
    only_b: int
    truncated: bool


def _words(text: str) -> tuple[list[str], bool]:
    tokens = _WORDS.findall(text or "")
    words = 0
    for index, token in enumerate(tokens):
        if not token.isspace():
            words += 1
            if words > MAX_WORDS:
                return tokens[:index], True
    return tokens, False


def word_diff(a: str, b: str) -> WordDiff:
    a_tokens, a_cut = _words(a)
    b_tokens, b_cut = _words(b)
    # Compare words, not whitespace: re-flowed text is not a difference worth showing.
    a_words = [t for t in a_tokens if not t.isspace()]
    b_words = [t for t in b_tokens if not t.isspace()]
    matcher = difflib.SequenceMatcher(None, a_words, b_words, autojunk=False)
    # Map word indexes back to token indexes so whitespace is shown as it was.
    a_at = [i for i, t in enumerate(a_tokens) if not t.isspace()]
    b_at = [i for i, t in enumerate(b_tokens) if not t.isspace()]

    def span(tokens, at, start, end) -> str:
        if start == end:
            return ""
        last = at[end] if end < len(at) else len(tokens)
        return "".join(tokens[at[start] : last])

    segments: list[Segment] = []
    only_a = only_b = 0
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            segments.append(Segment("equal", span(b_tokens, b_at, b1, b2)))
            continue
        if a2 > a1:
            segments.append(Segment("delete", span(a_tokens, a_at, a1, a2)))
            only_a += a2 - a1
        if b2 > b1:
            segments.append(Segment("insert", span(b_tokens, b_at, b1, b2)))
            only_b += b2 - b1
    total = len(a_words) + len(b_words)
    similarity = (2 * sum(m.size for m in matcher.get_matching_blocks()) / total) if total else 1.0
    return WordDiff(segments, similarity, only_a, only_b, a_cut or b_cut)
