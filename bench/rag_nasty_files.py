"""Memory and CPU of the worker's reading steps (sniff → extract → chunk) on hostile files, each
in a fresh process: peak RSS (VmHWM) above that process's baseline (Python, the extraction
modules and the file's bytes already loaded), CPU seconds, and the outcome the user sees. What a worker adds
on top is the embedding of the chunks (bounded by the batch size, see P10).

    .venv/bin/python bench/rag_nasty_files.py              # every file, at the 20 MB upload limit
    .venv/bin/python bench/rag_nasty_files.py --mb 5       # smaller files, a quick check

The files, all built here (nothing downloaded): a malformed PDF, a PDF of 2,000 pages (the most
we read) and one of 3,000, a DOCX bomb (200 MB of XML in a small ZIP), a PNG named .pdf and .txt,
a CSV and a JSON at the limit, a JSON nested 100,000 deep, an HTML page that is mostly scripts.
An oversize file never reaches these steps: the upload handler stops reading at the limit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: F401 - puts the project on sys.path


def _files(mb: float) -> dict[str, bytes]:
    from rag.tests.documents import docx_bomb, pdf, png

    size = int(mb * 1024 * 1024)
    row = b"42,alpha beta gamma,2026-11-30,some free text in a cell,3.14\n"
    record = b'{"id": 42, "name": "alpha beta", "note": "some free text in a value"},'
    script = b"<script>window.__x = '" + b"x" * 4000 + b"';</script>"
    return {
        "malformed.pdf": b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >>\n" + b"\x00" * 4096,
        "pages-2000.pdf": pdf([f"page {n} text" for n in range(2000)]),
        "pages-3000.pdf": pdf([f"page {n} text" for n in range(3000)]),
        "bomb.docx": docx_bomb(),
        "image-lying.pdf": png(64, 64),
        "image-lying.txt": png(64, 64),
        "huge.csv": b"id,words,date,note,value\n" + row * (size // len(row)),
        "huge.json": b"[" + record * (size // len(record) - 1) + b"{}]",
        "deep.json": b"[" * 100_000 + b"]" * 100_000,
        "scripts.html": b"<html><body><h1>Title</h1>"
        + (script + b"<p>visible words</p>") * (size // (len(script) + 20))
        + b"</body></html>",
    }


def _status_kb(field: str) -> int:
    """VmRSS (now) or VmHWM (the peak since the last reset) of this process, in kB. Not
    ru_maxrss: a child inherits its parent's, which holds every file built here."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    """VmHWM starts again from the current RSS (Linux: "5" to clear_refs)."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def _child(path: str, name: str) -> None:
    """Runs in the fresh process: read the file as the worker would, report figures as JSON."""
    from rag import chunking, extraction

    with open(path, "rb") as handle:
        data = handle.read()
    base = _status_kb("VmRSS")
    _reset_peak()
    started = time.process_time()
    try:
        file_type = extraction.sniff(data, name)
        extracted = extraction.extract(data, file_type)
        pieces = chunking.chunk_blocks(extracted.blocks, size=1000, overlap=150)
        outcome = f"read: {len(pieces):,} chunks"
    except extraction.ExtractionError as exc:
        outcome = f"refused: {exc}"
    cpu = time.process_time() - started
    peak = _status_kb("VmHWM")
    print(
        json.dumps(
            {
                "baseline_mb": base / 1024,
                "peak_mb": peak / 1024,
                "cpu_s": cpu,
                "outcome": outcome[:110],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=20.0, help="size of the big text files")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    print(f"load: {os.getloadavg()[0]:.2f} (1-min), files at {args.mb:g} MB")
    print(
        f"{'file':<16} {'size':>9} {'base MB':>8} {'peak MB':>8} {'+MB':>7} {'CPU s':>6}  outcome"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in _files(args.mb).items():
            path = os.path.join(tmp, name)
            with open(path, "wb") as handle:
                handle.write(data)
            done = subprocess.run(
                [sys.executable, __file__, "--child", path, name],
                capture_output=True,
                text=True,
                check=True,
            )
            row = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"{name:<16} {len(data) / 1048576:>7.2f}MB {row['baseline_mb']:>8.1f} "
                f"{row['peak_mb']:>8.1f} {row['peak_mb'] - row['baseline_mb']:>7.1f} "
                f"{row['cpu_s']:>6.2f}  {row['outcome']}"
            )


if __name__ == "__main__":
    main()
