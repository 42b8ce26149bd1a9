"""What extraction produces (blocks of text with their kind and page), its error, and the text
hygiene every format goes through: decoding bytes as text, and cleaning what the database
stores."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

MAX_CHARS = 5_000_000  # extracted text per document


class ExtractionError(ValueError):
    """A file we can't (or won't) read; the message is for the user."""


@dataclass
class Block:
    kind: str  # heading | paragraph | code | table | list
    text: str
    level: int = 0  # heading level
    page: int | None = None
    lang: str = ""  # a code block's language, from a Markdown fence's info string


@dataclass
class Extracted:
    file_type: str
    blocks: list[Block]
    page_count: int | None = None
    title: str = ""


# --- Text hygiene --------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """What may go into the database: no NUL or other control characters, no lone surrogates,
    NFC-normalised."""
    text = _SURROGATE.sub("\ufffd", _CONTROL.sub("", text))
    return unicodedata.normalize("NFC", text)


def decode_text(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise ExtractionError("This file is not readable text (bad UTF-16).") from None
    if b"\x00" in data[:8192]:
        raise ExtractionError("This file is binary, not text.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Old Windows exports are the usual non-UTF-8 text; cp1252 decodes almost any byte, so
        # insist the result still looks like text.
        text = data.decode("cp1252", errors="replace")
        if text.count("\ufffd") > len(text) // 100 + 1:
            raise ExtractionError("This file is not readable text (unknown encoding).") from None
        return text


_PARAGRAPHS = re.compile(r"\n\s*\n")


def paragraphs(text: str, page: int | None = None) -> Iterator[Block]:
    for part in _PARAGRAPHS.split(text):
        if part.strip():
            yield Block("paragraph", part.strip(), page=page)
