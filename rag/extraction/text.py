"""Plain text (paragraphs) and Markdown (headings, code, tables and lists kept whole)."""

from __future__ import annotations

from rag.extraction.blocks import Block, Extracted, decode_text, paragraphs


def extract_text(data: bytes) -> Extracted:
    return Extracted("txt", list(paragraphs(decode_text(data))))


def extract_markdown(data: bytes) -> Extracted:
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
