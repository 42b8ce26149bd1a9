"""Structure-aware chunking: pieces of about `size` characters that follow the document's shape.

- A heading closes the chunk before it, so a chunk never straddles two sections; each chunk
  keeps its heading path ("Install › Linux") and the page its first block came from.
- Paragraphs are packed together up to `size`; a longer one is split at sentence ends, then at
  spaces; consecutive pieces of one section overlap by about `overlap` characters.
- Code blocks and tables are split only between lines, and each piece of a table repeats its
  header row (and a Markdown table's separator line), so a row is never separated from what its
  columns mean. They get no overlap: half a row repeated helps nobody.
- Code is stored fenced (```python … ```), every piece of it: the model reading the context and
  the person opening a citation both see where code starts and ends and in which language.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.extraction import Block

MIN_SIZE, MAX_SIZE = 200, 8000


@dataclass
class Piece:
    text: str
    heading: str
    page: int | None
    ordinal: int = 0


_SENTENCE_END = re.compile(r"(?<=[.!?。])\s+")


def _split_words(text: str, size: int) -> list[str]:
    parts, current = [], ""
    for word in text.split(" "):
        while len(word) > size:  # a "word" longer than a chunk (base64, URLs): cut it
            if current:
                parts.append(current)
                current = ""
            parts.append(word[:size])
            word = word[size:]
        candidate = f"{current} {word}" if current else word
        if len(candidate) > size and current:
            parts.append(current)
            current = word
        else:
            current = candidate
    if current:
        parts.append(current)
    return parts


def _split_prose(text: str, size: int) -> list[str]:
    parts, current = [], ""
    for sentence in _SENTENCE_END.split(text):
        pieces = [sentence] if len(sentence) <= size else _split_words(sentence, size)
        for piece in pieces:
            candidate = f"{current} {piece}" if current else piece
            if len(candidate) > size and current:
                parts.append(current)
                current = piece
            else:
                current = candidate
    if current:
        parts.append(current)
    return parts


_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")


def _fence(code: str, lang: str) -> str:
    """`code` as a Markdown fence longer than any backtick run inside it (CommonMark's rule)."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{code}\n{fence}"


def _fence_overhead(code: str, lang: str) -> int:
    return len(_fence(code, lang)) - len(code)


def _split_lines(text: str, size: int, *, repeat_header: bool) -> list[str]:
    lines = text.split("\n")
    header = lines[0] if repeat_header and len(lines) > 1 else None
    body = lines[1:] if header is not None else lines
    if header is not None and body and _TABLE_RULE.match(body[0]):
        header, body = f"{header}\n{body[0]}", body[1:]  # a Markdown table needs its rule line
    parts, current = [], [header] if header is not None else []
    base = len(current)
    for line in body:
        for piece in [line] if len(line) <= size else _split_words(line, size):
            if current and len("\n".join([*current, piece])) > size and len(current) > base:
                parts.append("\n".join(current))
                current = [header] if header is not None else []
            current.append(piece)
    if len(current) > base or not parts:
        parts.append("\n".join(current))
    return parts


def _tail(text: str, overlap: int) -> str:
    """The last ~`overlap` characters of `text`, starting at a word."""
    if overlap <= 0 or len(text) <= overlap:
        return "" if overlap <= 0 else text
    tail = text[-overlap:]
    cut = tail.find(" ")
    return tail[cut + 1 :] if 0 <= cut < len(tail) - 1 else tail


def chunk_blocks(blocks: list[Block], *, size: int = 1000, overlap: int = 150) -> list[Piece]:
    size = max(MIN_SIZE, min(MAX_SIZE, size))
    overlap = max(0, min(overlap, size // 2))
    pieces: list[Piece] = []
    headings: list[tuple[int, str]] = []
    current: list[str] = []
    current_page: int | None = None
    previous_prose = ""  # the last prose piece of this section, for the overlap

    def heading_path() -> str:
        return " › ".join(text for _, text in headings)[:500]

    def flush():
        nonlocal current, current_page
        if current:
            pieces.append(Piece("\n\n".join(current), heading_path(), current_page))
        current, current_page = [], None

    for block in blocks:
        if block.kind == "heading":
            flush()
            previous_prose = ""
            level = block.level or 1
            headings = [(lvl, text) for lvl, text in headings if lvl < level]
            headings.append((level, block.text.strip()[:200]))
            continue
        text = _fence(block.text, block.lang) if block.kind == "code" else block.text
        joined = len("\n\n".join([*current, text]))
        if current and joined <= size:
            current.append(text)
            previous_prose = text if block.kind == "paragraph" else ""
            continue
        flush()
        if block.kind == "code" and len(text) > size:
            room = max(MIN_SIZE // 2, size - _fence_overhead(block.text, block.lang))
            for part in _split_lines(block.text, room, repeat_header=False):
                pieces.append(Piece(_fence(part, block.lang), heading_path(), block.page))
            previous_prose = ""
            continue
        if block.kind in {"table", "list"} and len(text) > size:
            for part in _split_lines(text, size, repeat_header=block.kind == "table"):
                pieces.append(Piece(part, heading_path(), block.page))
            previous_prose = ""
            continue
        if len(text) <= size:
            lead = (
                _tail(previous_prose, overlap)
                if previous_prose and block.kind == "paragraph"
                else ""
            )
            if lead and len(lead) + 1 + len(text) <= size:
                text = f"{lead} {text}"
            current, current_page = [text], block.page
            previous_prose = block.text if block.kind == "paragraph" else ""
            continue
        parts = _split_prose(text, max(MIN_SIZE // 2, size - overlap))
        for index, part in enumerate(parts):
            lead = _tail(parts[index - 1], overlap) if index else ""
            pieces.append(Piece(f"{lead} {part}".strip(), heading_path(), block.page))
        previous_prose = parts[-1]
    flush()
    for ordinal, piece in enumerate(pieces):
        piece.ordinal = ordinal
    return pieces
