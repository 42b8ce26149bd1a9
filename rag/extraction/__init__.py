"""From bytes to structured text: sniff what a file really is, then extract blocks (headings,
paragraphs, code, tables) with the page they came from.

Every limit is checked while reading, never after: a DOCX is a ZIP, and its XML is inflated in
bounded pieces whatever the ZIP headers claim (they can lie); a PDF's streams are inflated under
pypdf's output caps, lowered here; text is cut at MAX_CHARS. A file that breaks a limit or can't
be parsed raises `ExtractionError` with a message meant for the user.

`rag.extraction` is the entry point (`sniff`, `extract` and what they return); one module per
format family: text (plain, Markdown), html, pdf, docx, data (CSV, JSON); blocks holds the
shared shapes and text hygiene, sniffing the type checks.
"""

from __future__ import annotations

from rag.extraction.blocks import (
    MAX_CHARS,
    Block,
    Extracted,
    ExtractionError,
    clean_text,
    decode_text,
)
from rag.extraction.data import extract_csv, extract_json
from rag.extraction.docx import extract_docx
from rag.extraction.html import extract_html
from rag.extraction.pdf import extract_pdf
from rag.extraction.sniffing import EXTENSIONS, TYPES, declared_type, sniff
from rag.extraction.text import extract_markdown, extract_text

__all__ = [
    "EXTENSIONS",
    "MAX_CHARS",
    "TYPES",
    "Block",
    "Extracted",
    "ExtractionError",
    "clean_text",
    "declared_type",
    "decode_text",
    "extract",
    "sniff",
]


def extract(data: bytes, file_type: str) -> Extracted:
    try:
        result = {
            "txt": extract_text,
            "md": extract_markdown,
            "html": extract_html,
            "pdf": extract_pdf,
            "docx": extract_docx,
            "csv": extract_csv,
            "json": extract_json,
        }[file_type](data)
    except ExtractionError:
        raise
    except RecursionError:
        raise ExtractionError("This file is nested too deeply to read.") from None
    except MemoryError:
        raise ExtractionError("This file needs too much memory to read.") from None
    total = 0
    for block in result.blocks:
        block.text = clean_text(block.text).strip()
        total += len(block.text)
        if total > MAX_CHARS:
            raise ExtractionError(
                f"This file holds more than {MAX_CHARS:,} characters of text; split it."
            )
    result.blocks = [b for b in result.blocks if b.text]
    if not result.blocks:
        raise ExtractionError("No text found in this file (a scanned PDF needs OCR first).")
    return result
