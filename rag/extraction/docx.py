"""Word documents (.docx): a ZIP whose word/document.xml is inflated in bounded pieces whatever
the ZIP headers claim (they can lie) and parsed without DTDs or entities."""

from __future__ import annotations

import io
import re
import zipfile

from rag.extraction.blocks import Block, Extracted, ExtractionError

MAX_ZIP_ENTRIES = 2_000
MAX_XML_BYTES = 64 * 1024 * 1024  # word/document.xml, inflated


class _Bounded(io.RawIOBase):
    """Reads an inflating stream and stops at `limit` bytes, whatever the ZIP header said."""

    def __init__(self, stream, limit: int):
        self.stream, self.left = stream, limit

    def readable(self):
        return True

    def readinto(self, buffer):
        size = min(len(buffer), 1 << 16)
        chunk = self.stream.read(size)
        if len(chunk) > self.left:
            raise ExtractionError("This document's text inflates to too much data (a ZIP bomb?).")
        self.left -= len(chunk)
        buffer[: len(chunk)] = chunk
        return len(chunk)


W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def extract_docx(data: bytes) -> Extracted:
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import iterparse

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ExtractionError("This Word document is damaged (not a valid ZIP archive).") from None
    if len(entries) > MAX_ZIP_ENTRIES:
        raise ExtractionError("This Word document has too many parts.")
    names = {entry.filename for entry in entries}
    if "word/document.xml" not in names:
        raise ExtractionError("This ZIP archive is not a Word document (no word/document.xml).")
    info = archive.getinfo("word/document.xml")
    if info.file_size > MAX_XML_BYTES:
        raise ExtractionError("This document's text inflates to too much data (a ZIP bomb?).")
    blocks: list[Block] = []
    table_depth = 0
    rows: list[list[str]] = []
    cell: list[str] = []
    row: list[str] = []
    try:
        with archive.open(info) as raw:
            stream = io.BufferedReader(_Bounded(raw, MAX_XML_BYTES))
            for event, element in iterparse(
                stream, events=("start", "end"), forbid_dtd=True, forbid_entities=True
            ):
                tag = element.tag
                if event == "start":
                    if tag == f"{W}tbl":
                        table_depth += 1
                        if table_depth == 1:
                            rows = []
                    continue
                if tag == f"{W}p":
                    text = "".join(t.text or "" for t in element.iter(f"{W}t"))
                    if table_depth:
                        cell.append(text)
                    else:
                        style = element.find(f"{W}pPr/{W}pStyle")
                        name = (style.get(f"{W}val") or "") if style is not None else ""
                        match = re.match(r"(?i)(heading|title)\s*(\d?)", name)
                        if match:
                            level = int(match.group(2) or 1)
                            blocks.append(Block("heading", text, level=level))
                        else:
                            blocks.append(Block("paragraph", text))
                    element.clear()
                elif tag == f"{W}tc" and table_depth == 1:
                    row.append(" ".join(c for c in cell if c))
                    cell = []
                elif tag == f"{W}tr" and table_depth == 1:
                    rows.append(row)
                    row = []
                elif tag == f"{W}tbl":
                    table_depth -= 1
                    if table_depth == 0:
                        lines = [" | ".join(r) for r in rows if any(r)]
                        if lines:
                            blocks.append(Block("table", "\n".join(lines)))
                        element.clear()
    except ExtractionError:
        raise
    except (DefusedXmlException, SyntaxError, zipfile.BadZipFile, OSError, EOFError):
        raise ExtractionError("This Word document is damaged and can't be read.") from None
    except Exception as exc:  # zlib errors and friends on hostile input
        raise ExtractionError(f"This Word document can't be read ({type(exc).__name__}).") from None
    return Extracted("docx", blocks)
