"""Data files: CSV as tables (a header and 20 rows a block, so every row keeps its context) and
JSON as headings (the path) over paragraphs (the scalars)."""

from __future__ import annotations

import csv
import io
import json

from rag.extraction.blocks import Block, Extracted, ExtractionError, decode_text

MAX_CSV_ROWS = 200_000
MAX_JSON_DEPTH = 64


def extract_csv(data: bytes) -> Extracted:
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


def extract_json(data: bytes) -> Extracted:
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
