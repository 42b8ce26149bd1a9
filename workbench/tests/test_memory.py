"""Giving freed memory back to the system (workbench.memory)."""

from __future__ import annotations

import gc
import random

from workbench import memory

WORDS = ["lorem", "ipsum", "**dolor**", "sit,", "`amet`", "\n\n- item"]


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def test_memory_kept_after_rendering_a_long_reply_goes_back_to_the_system():
    # What kept Daphne hundreds of MiB bigger after long replies (issue 8): rendering Markdown
    # makes millions of objects; once freed, glibc kept their memory in its heaps.
    from chats.rendering import render_markdown

    rng = random.Random(8)
    text = " ".join(rng.choice(WORDS) for _ in range(45_000))  # ~320,000 characters
    html = render_markdown(text)
    assert "<strong>dolor</strong>" in html
    del html
    gc.collect()
    before = rss_mib()
    memory.release_freed_memory()
    after = rss_mib()
    assert memory._malloc_trim() is not None  # glibc, on our machines
    assert after < before - 8, (before, after)
