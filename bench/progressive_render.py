"""What rendering a streaming reply as it grows costs (issue 9, bug 6): the renderer's CPU time
for a whole reply streamed in frames, against rendering it once at the end and against the naive
way (the whole text again on every frame).

    .venv/bin/python bench/progressive_render.py [--chars 20000] [--frame-chars 40]

A frame holds what arrives in ~40 ms (40 characters ≈ 10 tokens at 250 tokens/s). Prints one
line per reply shape: prose with lists and tables, and one long code block (the worst case: the
growing block is the whole reply)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings_test")

import django

django.setup()

from chats.progressive import ProgressiveRender  # noqa: E402
from chats.rendering import render_markdown  # noqa: E402

PROSE = (
    "A paragraph with **bold**, `code`, math $x^2$ and a [link](https://example.com).\n\n"
    "1. first step\n2. second step\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
    "```python\nprint('hello')\n```\n\n"
)
CODE_LINE = "    total = sum(value * weight for value, weight in zip(values, weights))\n"


def shapes(chars: int) -> dict[str, str]:
    prose = (PROSE * (chars // len(PROSE) + 1))[:chars]
    code = "```python\n" + (CODE_LINE * (chars // len(CODE_LINE) + 1))[:chars] + "```\n"
    return {"prose, lists, tables": prose, "one long code block": code}


def measure(text: str, frame: int) -> tuple[float, float, float, int]:
    cuts = [*range(frame, len(text), frame), len(text)]
    renderer = ProgressiveRender()
    started = time.process_time()
    for cut in cuts:
        renderer.update(text[:cut])
    progressive = time.process_time() - started
    started = time.process_time()
    render_markdown(text)
    once = time.process_time() - started
    naive_cuts = cuts[:: max(1, len(cuts) // 50)]  # sample: the naive way is O(n²)
    started = time.process_time()
    for cut in naive_cuts:
        render_markdown(text[:cut])
    naive = (time.process_time() - started) * len(cuts) / len(naive_cuts)
    return progressive, once, naive, len(cuts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chars", type=int, default=20_000)
    parser.add_argument("--frame-chars", type=int, default=40)
    args = parser.parse_args()
    print(
        f"load average {os.getloadavg()[0]:.2f}; {args.chars} characters, {args.frame_chars} per frame"
    )
    for name, text in shapes(args.chars).items():
        progressive, once, naive, frames = measure(text, args.frame_chars)
        print(
            f"{name:22s} frames {frames:5d}  progressive {progressive * 1000:8.0f} ms "
            f"({progressive / frames * 1000:.2f} ms/frame, {progressive / once:5.1f}× one render)  "
            f"one render {once * 1000:6.0f} ms  naive (whole text per frame) ≈ {naive * 1000:9.0f} ms"
        )


if __name__ == "__main__":
    main()
