"""HTML pages: headings, paragraphs, preformatted code and tables; scripts, styles and other
non-text elements skipped; the title kept."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from rag.extraction.blocks import Block, Extracted, decode_text


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


def extract_html(data: bytes) -> Extracted:
    parser = _HtmlBlocks()
    parser.feed(decode_text(data))
    parser.close()
    parser.flush()
    return Extracted("html", parser.blocks, title=re.sub(r"\s+", " ", parser.title).strip()[:300])
