"""What a file really is, checked against what its name claims."""

from __future__ import annotations

import json

from rag.extraction.blocks import ExtractionError, decode_text

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
