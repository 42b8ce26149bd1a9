"""From bytes to structured text: sniff what a file really is, then extract blocks (headings,
paragraphs, code, tables) with the page they came from.

Every limit is checked while reading, never after: a DOCX is a ZIP, and its XML is inflated in
bounded pieces whatever the ZIP headers claim (they can lie); a PDF's streams are inflated under
pypdf's output caps, lowered here; text is cut at MAX_CHARS. A file that breaks a limit or can't
be parsed raises `ExtractionError` with a message meant for the user.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser

MAX_CHARS = 5_000_000  # extracted text per document
MAX_PDF_PAGES = 2_000
MAX_ZIP_ENTRIES = 2_000
MAX_XML_BYTES = 64 * 1024 * 1024  # word/document.xml, inflated
MAX_CSV_ROWS = 200_000
MAX_JSON_DEPTH = 64

TYPES = {  # as nouns: "This file is a PNG image, not a PDF."
    "txt": "text file",
    "md": "Markdown file",
    "html": "HTML page",
    "pdf": "PDF",
    "docx": "Word document",
    "csv": "CSV file",
    "json": "JSON file",
}
EXTENSIONS = {
    "txt": "txt",
    "text": "txt",
    "md": "md",
    "markdown": "md",
    "html": "html",
    "htm": "html",
    "pdf": "pdf",
    "docx": "docx",
    "csv": "csv",
    "json": "json",
}
# Magic numbers of things people upload by mistake (or on purpose, lying about the name).
SIGNATURES = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x00\x00\x01\x00", "an icon"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "a program (ELF)"),
    (b"\xd0\xcf\x11\xe0", "an old Office (OLE) file"),
    (b"ID3", "an MP3 file"),
    (b"OggS", "an Ogg media file"),
    (b"fLaC", "a FLAC file"),
]


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


# --- Sniffing ------------------------------------------------------------------------------------


def declared_type(filename: str) -> str | None:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return EXTENSIONS.get(ext)


def sniff(data: bytes, filename: str = "") -> str:
    """The type of `data`, checked against the type its name claims. Raises ExtractionError."""
    claimed = declared_type(filename) if filename else None
    if filename and claimed is None:
        raise ExtractionError(
            f"“{filename}” is not a supported type. Upload {', '.join(sorted(set(EXTENSIONS)))}."
        )
    head = data[:2048]
    noun = TYPES.get(claimed or "", "document")
    what = next((what for magic, what in SIGNATURES if head.startswith(magic)), None)
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        what = "a WebP image"
    elif head.startswith(b"BM") and head[6:10] == b"\x00\x00\x00\x00":
        what = "a BMP image"
    elif head.startswith(b"MZ") and b"\x00" in head[:64]:
        what = "a Windows program"
    if what:
        raise ExtractionError(f"This file is {what}, not a {noun}.")
    if b"%PDF-" in head[:1024]:
        if claimed not in (None, "pdf"):
            raise ExtractionError(f"This file is a PDF, not a {noun}. Rename it to .pdf.")
        return "pdf"
    if claimed == "pdf":
        raise ExtractionError("This file is not a PDF (no PDF header).")
    if head.startswith(b"PK\x03\x04"):
        if claimed not in (None, "docx"):
            raise ExtractionError(f"This file is a ZIP archive, not a {noun}.")
        return "docx"
    if claimed == "docx":
        raise ExtractionError("This file is not a Word document (.docx files are ZIP archives).")
    text = decode_text(data)
    if claimed:
        return claimed
    stripped = text.lstrip()[:200].lower()
    if stripped.startswith(("<!doctype html", "<html")):
        return "html"
    if stripped.startswith(("{", "[")):
        try:
            json.loads(text)
            return "json"
        except ValueError:
            pass
    return "txt"


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


# --- Extraction ----------------------------------------------------------------------------------


def extract(data: bytes, file_type: str) -> Extracted:
    try:
        result = {
            "txt": _plain,
            "md": _markdown,
            "html": _html,
            "pdf": _pdf,
            "docx": _docx,
            "csv": _csv,
            "json": _json,
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


_PARAGRAPHS = re.compile(r"\n\s*\n")


def _paragraphs(text: str, page: int | None = None) -> Iterator[Block]:
    for part in _PARAGRAPHS.split(text):
        if part.strip():
            yield Block("paragraph", part.strip(), page=page)


def _plain(data: bytes) -> Extracted:
    return Extracted("txt", list(_paragraphs(decode_text(data))))


def _markdown(data: bytes) -> Extracted:
    from markdown_it import MarkdownIt

    text = decode_text(data)
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    lines = text.splitlines()
    blocks: list[Block] = []
    title = ""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == "heading_open":
            level = int(token.tag[1])
            content = tokens[i + 1].content
            blocks.append(Block("heading", content, level=level))
            title = title or (content if level == 1 else "")
            i += 3
            continue
        if token.type in {"fence", "code_block"}:
            lang = token.info.strip().split(" ")[0][:40] if token.type == "fence" else ""
            blocks.append(Block("code", token.content.rstrip("\n"), lang=lang))
        elif token.type in {
            "table_open",
            "bullet_list_open",
            "ordered_list_open",
            "blockquote_open",
        }:
            # Keep the source lines of the whole structure: a table stays a table.
            start, end = token.map or (0, 0)
            kind = "table" if token.type == "table_open" else "list"
            blocks.append(Block(kind, "\n".join(lines[start:end])))
            depth, close = 1, token.type.replace("_open", "_close")
            i += 1
            while i < len(tokens) and depth:
                depth += (tokens[i].type == token.type) - (tokens[i].type == close)
                i += 1
            continue
        elif token.type == "paragraph_open":
            blocks.append(Block("paragraph", tokens[i + 1].content))
        elif token.type == "html_block":
            blocks.append(Block("paragraph", token.content))
        i += 1
    return Extracted("md", blocks, title=title)


class _HtmlBlocks(HTMLParser):
    SKIP = {"script", "style", "noscript", "template", "svg", "head", "iframe", "object"}
    BLOCK = {"p", "div", "section", "article", "li", "blockquote", "dd", "dt", "figcaption", "br"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self.buffer: list[str] = []
        self.skip = 0
        self.heading = 0
        self.pre = 0
        self.table: list[list[str]] | None = None
        self.cell: list[str] | None = None
        self.title = ""
        self.in_title = False

    def flush(self, kind: str = "paragraph", level: int = 0):
        text = "".join(self.buffer)
        self.buffer = []
        if kind != "code":
            text = re.sub(r"\s+", " ", text)
        if text.strip():
            self.blocks.append(Block(kind, text.strip("\n") if kind == "code" else text, level))

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self.in_title = True
        if tag in self.SKIP:
            self.skip += 1
            return
        if self.skip:
            return
        if tag in {"h1", "h2", "h3", "h4", "h5", "h6"}:
            self.flush()
            self.heading = int(tag[1])
        elif tag == "pre":
            self.flush()
            self.pre += 1
        elif tag == "table":
            self.flush()
            self.table = []
        elif tag == "tr" and self.table is not None:
            self.table.append([])
        elif tag in {"td", "th"} and self.table is not None:
            self.cell = []
        elif tag in self.BLOCK and self.table is None and not self.pre:
            self.flush()

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
            return
        if self.skip:
            return
        if tag in {"h1", "h2", "h3", "h4", "h5", "h6"} and self.heading:
            self.flush("heading", self.heading)
            self.heading = 0
        elif tag == "pre" and self.pre:
            self.pre -= 1
            self.flush("code")
        elif tag in {"td", "th"} and self.cell is not None and self.table:
            self.table[-1].append(re.sub(r"\s+", " ", "".join(self.cell)).strip())
            self.cell = None
        elif tag == "table" and self.table is not None:
            rows = [" | ".join(row) for row in self.table if any(row)]
            self.table = None
            if rows:
                self.blocks.append(Block("table", "\n".join(rows)))
        elif tag in self.BLOCK and self.table is None and not self.pre:
            self.flush()

    def handle_data(self, data):
        if self.in_title:
            self.title += data
        if self.skip:
            return
        if self.cell is not None:
            self.cell.append(data)
        elif self.table is None:
            self.buffer.append(data)


def _html(data: bytes) -> Extracted:
    parser = _HtmlBlocks()
    parser.feed(decode_text(data))
    parser.close()
    parser.flush()
    return Extracted("html", parser.blocks, title=re.sub(r"\s+", " ", parser.title).strip()[:300])


def _pdf(data: bytes) -> Extracted:
    import logging

    import pypdf
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # malformed files warn per object
    # Lower pypdf's caps on what one stream may inflate to and how much work a file may cause
    # (a PDF bomb stops here), for this extraction only.
    limits = pypdf.apply_configuration(
        maximum_declared_stream_length=32_000_000,
        zlib_maximum_output_length=32_000_000,
        lzw_maximum_output_length=32_000_000,
        run_length_maximum_output_length=32_000_000,
        array_based_stream_maximum_output_length=32_000_000,
        image_maximum_buffer_size=32_000_000,
        page_tree_maximum_page_entries=MAX_PDF_PAGES + 1,
    )
    try:
        with limits:
            return _pdf_pages(pypdf.PdfReader(io.BytesIO(data), strict=False))
    except ExtractionError:
        raise
    except (
        PyPdfError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        OSError,
    ) as exc:
        raise ExtractionError(
            f"This PDF is damaged and can't be read ({type(exc).__name__})."
        ) from None
    except Exception as exc:  # pypdf raises many things on hostile input; none may escape as 500
        raise ExtractionError(f"This PDF can't be read ({type(exc).__name__}).") from None


def _pdf_pages(reader) -> Extracted:
    if reader.is_encrypted:
        try:
            reader.decrypt("")
        except Exception:
            raise ExtractionError("This PDF is password-protected.") from None
    count = len(reader.pages)
    if count > MAX_PDF_PAGES:
        raise ExtractionError(f"This PDF has {count:,} pages; the limit is {MAX_PDF_PAGES:,}.")
    blocks: list[Block] = []
    total = 0
    for number, page in enumerate(reader.pages, start=1):
        text = page.extract_text() or ""
        total += len(text)
        if total > MAX_CHARS:
            raise ExtractionError(
                f"This PDF holds more than {MAX_CHARS:,} characters of text; split it."
            )
        blocks.extend(_paragraphs(text, page=number))
    title = ""
    with contextlib.suppress(Exception):  # a broken info dictionary only loses the title
        title = str((reader.metadata or {}).get("/Title") or "")[:300]
    return Extracted("pdf", blocks, page_count=count, title=title)


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


def _docx(data: bytes) -> Extracted:
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


def _csv(data: bytes) -> Extracted:
    text = decode_text(data)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    blocks, batch, header = [], [], None
    try:
        for number, row in enumerate(reader):
            if number > MAX_CSV_ROWS:
                raise ExtractionError(f"This CSV has more than {MAX_CSV_ROWS:,} rows.")
            line = " | ".join(cell.strip() for cell in row)
            if header is None:
                header = line
                continue
            batch.append(line)
            if len(batch) == 20:  # tables are chunked as header + 20 rows, so a row keeps context
                blocks.append(Block("table", "\n".join([header, *batch])))
                batch = []
    except csv.Error as exc:
        raise ExtractionError(f"This CSV is malformed: {exc}.") from None
    if batch or (header and not blocks):
        blocks.append(Block("table", "\n".join([header or "", *batch])))
    return Extracted("csv", blocks)


def _json(data: bytes) -> Extracted:
    text = decode_text(data)
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ExtractionError(f"This JSON is malformed: {exc}.") from None
    blocks: list[Block] = []

    def walk(node, path: str, depth: int):
        if depth > MAX_JSON_DEPTH:
            raise ExtractionError("This JSON is nested too deeply.")
        if isinstance(node, dict):
            scalars = {k: v for k, v in node.items() if not isinstance(v, dict | list)}
            if scalars:
                lines = [f"{k}: {v}" for k, v in scalars.items()]
                blocks.append(Block("paragraph", "\n".join(lines)))
            for key, child in node.items():
                if isinstance(child, dict | list):
                    blocks.append(
                        Block("heading", f"{path}.{key}".lstrip("."), level=min(6, depth + 1))
                    )
                    walk(child, f"{path}.{key}", depth + 1)
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, f"{path}[{index}]", depth + 1)
        else:
            blocks.append(Block("paragraph", str(node)))

    walk(value, "", 0)
    return Extracted("json", blocks)
