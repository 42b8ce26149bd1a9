"""Giving freed memory back to the operating system after large work.

glibc's allocator keeps what Python frees inside its heaps unless the very top of a heap is
free: after one large reply (its text, rendered HTML, frames) a Daphne process stayed hundreds
of MiB bigger for good (issue 8: 231 → 866 MB). Measured here: rendering 2.4 MB of Markdown
peaked at 208 MiB of Python objects and left RSS 246 MiB higher after they were freed;
`malloc_trim(0)` gave all of it back. Called after work that big, in a worker thread (it takes
the allocator's lock for a few milliseconds)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

logger = logging.getLogger(__name__)

LARGE = 256 * 1024  # characters of text after which a reply is worth a trim


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        return None


def release_freed_memory() -> None:
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
