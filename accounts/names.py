"""Names people see and type: usernames, display names, team names.

- Bidirectional control characters (RLO, LRI, …) are removed from every name: they make
  "alice‮txt.exe" render as something else, in the app and in emails.
- A username is NFKC-normalised (full-width "ａｌｉｃｅ" is "alice"), must use one script (or one of
  Unicode's usual combinations for Chinese, Japanese and Korean), and is unique by its
  *skeleton*: every character replaced by the look-alike Unicode's confusables data picks
  (Cyrillic "а" → "a", "l" and "I" → "1"), once after case folding and once as written. So
  "Alice", "аlice" (Cyrillic а), "a1ice", "aIice" and "ALICE" are all the same name, and the
  second person to pick one is refused.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from importlib import resources

BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")

# Scripts that may share one username (Unicode TR39 "highly restrictive"); any single script is
# fine too. COMMON (digits, "_", ".", "-") and INHERITED go with anything.
SCRIPT_MIXES = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)


def name_clean(text: str) -> str:
    """A display name or team name: no bidi controls, no surrounding whitespace."""
    return BIDI_CONTROLS.sub("", text or "").strip()


def username_normalize(raw: str) -> str:
    return unicodedata.normalize("NFKC", name_clean(raw))


def username_mixes_scripts(username: str) -> bool:
    from confusable_homoglyphs import categories

    scripts = categories.unique_aliases(username) - {"COMMON", "INHERITED"}
    return len(scripts) > 1 and not any(scripts <= allowed for allowed in SCRIPT_MIXES)


@functools.cache
def _prototypes() -> dict[str, str]:
    """Each confusable character → the one we write for its whole group of look-alikes (the data
    lists pairs, not always both ways: "l" lists "I" but "I" doesn't list "l", so groups are the
    connected pairs). The representative is ASCII when the group has an ASCII character, else
    the lowest code point. Single characters only."""
    data = json.loads(
        resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text()
    )
    parent: dict[str, str] = {}

    def find(char: str) -> str:
        parent.setdefault(char, char)
        while parent[char] != char:
            parent[char] = parent[parent[char]]
            char = parent[char]
        return char

    def rank(char: str) -> tuple[bool, int]:
        return (not char.isascii(), ord(char))

    for char, homoglyphs in data.items():
        if len(char) != 1:
            continue
        for other in (h["c"] for h in homoglyphs if len(h["c"]) == 1):
            a, b = find(char), find(other)
            if a != b:
                parent[max(a, b, key=rank)] = min(a, b, key=rank)
    return {char: find(char) for char in parent}


def _skeleton(text: str) -> str:
    table = _prototypes()
    return "".join(table.get(char, char) for char in text)


def username_key(username: str) -> str:
    """The skeleton of the case-folded name: "ALICE", "аlice" and "a1ice" share "alice"'s."""
    return _skeleton(unicodedata.normalize("NFKC", username).casefold())


def username_shape(username: str) -> str:
    """The skeleton of the name as written, before case folding: catches a capital "I" standing
    in for a small "l" ("aIice"), which folding would turn into an "i"."""
    return _skeleton(unicodedata.normalize("NFKC", username))
