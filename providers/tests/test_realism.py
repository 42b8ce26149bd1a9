"""What real providers do on the wire, through the gate and the real SDKs against the fake over
HTTP (issue 8): CRLF, characters split across chunks, keep-alive comments, reasoning deltas,
prompt-cache usage in OpenAI's and Anthropic's shapes, an HTML page or a JSON completion where a
stream was asked for, streams that stop without saying so, upstreams that ignore max_tokens —
and what each costs."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import anthropic  # noqa: F401 - warm SDK imports: a cold import must not count against timeouts
import groq  # noqa: F401
import ollama  # noqa: F401
import openai  # noqa: F401
import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price

from billing.models import UsageRecord
from providers import tokens
from providers.adapters.base import (
    CompletionRequest,
    Finished,
    Message,
    ProviderError,
    ReasoningDelta,
    TextDelta,
    Timeouts,
)
from providers.fakeserver import tokenize
from providers.fakeserver.knobs import lorem
from providers.gate import completion_stream

pytestmark = pytest.mark.django_db(transaction=True)

MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-3-5-haiku-latest",
    "groq": "llama-3.1-8b-instant",
    "ollama": "llama3.2:3b",
}
PRESETS = tuple(MODELS)
FAST = Timeouts(connect=1, read=1.0, total=20)
TRICKY = "Grüße aus Köln — 日本語のテキスト 😀🎉 and naïve café, ok?"
QUANTUM = Decimal("0.000000001")


def make_request(preset="openai", **fields) -> CompletionRequest:
    fields.setdefault("messages", (Message("user", "Think, then answer briefly."),))
    return CompletionRequest(model=MODELS[preset], **fields)


async def run(user, credential, request, **kwargs) -> tuple[str, str, Finished]:
    """(text, reasoning, Finished) of one call through the gate."""
    kwargs.setdefault("timeouts", FAST)
    text, thoughts, finished = [], [], None
    async with contextlib.aclosing(
        completion_stream(user=user, credential_id=credential.pk, request=request, **kwargs)
    ) as events:
        async for event in events:
            if type(event) is TextDelta:
                text.append(event.text)
            elif type(event) is ReasoningDelta:
                thoughts.append(event.text)
            elif type(event) is Finished:
                finished = event
    return "".join(text), "".join(thoughts), finished


async def failure(user, credential, request, **kwargs) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await run(user, credential, request, **kwargs)
    return info.value


@sync_to_async
def the_row() -> UsageRecord:
    [row] = UsageRecord.objects.all()
    return row


def price(model, provider_id, **usage) -> Decimal:
    return Decimal(
        calc_price(PriceUsage(**usage), model, provider_id=provider_id).total_price
    ).quantize(QUANTUM)


@pytest.fixture(autouse=True)
async def _close_worker_thread_connection():
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def credential_for(make_credential, alice):
    return lambda preset: sync_to_async(make_credential)(alice, preset)


# --- Wire quirks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", PRESETS)
async def test_crlf_characters_split_across_chunks_and_keepalive_comments_change_nothing(
    preset, fake_provider, credential_for, alice
):
    fake_provider.configure(
        reply=TRICKY, crlf=True, chunk_bytes=3, keepalive=0.05, ttft=0.2, tokens_per_second=50
    )
    credential = await credential_for(preset)
    text, _, finished = await run(alice, credential, make_request(preset))
    assert text == "".join(tokenize(TRICKY))
    row = await the_row()
    assert row.status == "ok" and finished.reason == "stop"
    assert row.output_tokens == len(tokenize(TRICKY)) and row.tokens_estimated is False


async def test_keepalive_comments_alone_do_not_keep_a_silent_call_alive(
    fake_provider, credential_for, alice, one_attempt
):
    # decisions.md: the gate's idle timer catches streams that only ping.
    fake_provider.configure(ttft=3, keepalive=0.1)
    credential = await credential_for("openai")
    error = await failure(alice, credential, make_request(), timeouts=Timeouts(1, 0.5, 20))
    assert error.code == "timeout" and error.message == "The provider did not answer in time."


# --- Reasoning models ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preset", "field"),
    [
        ("openai", "reasoning_content"),
        ("openai", "reasoning"),
        ("anthropic", None),
        ("groq", None),
        ("ollama", None),
    ],
)
async def test_reasoning_keeps_a_thinking_call_alive_past_the_idle_timeout_and_is_counted(
    preset, field, fake_provider, credential_for, alice
):
    # 1.6 s of thinking at 25 tokens/s, with a 1 s idle timeout: alive because thoughts arrive.
    knobs = {"reasoning_tokens": 40, "tokens_per_second": 25, "reply": "Forty-two."}
    if field:
        knobs["reasoning_field"] = field
    fake_provider.configure(**knobs)
    credential = await credential_for(preset)
    text, thoughts, finished = await run(alice, credential, make_request(preset))
    assert thoughts == lorem(40) and text == "Forty-two."
    row = await the_row()
    assert row.status == "ok" and row.finish_reason == "stop"
    assert row.output_tokens == 41  # the fake reports thinking as output tokens
    if preset in ("openai",):
        assert row.reasoning_tokens == 40  # reported (completion_tokens_details)
    else:
        assert 0 < row.reasoning_tokens <= row.output_tokens  # counted from the thinking text
    assert finished.reasoning_ms == pytest.approx(1600, abs=700)
    assert row.ttft_ms < 800  # the first thought is the first token


async def test_reasoning_is_priced_as_output(fake_provider, credential_for, alice):
    fake_provider.configure(reasoning_tokens=300, reply="Done.")
    credential = await credential_for("openai")
    await run(alice, credential, make_request())
    row = await the_row()
    assert row.cost == price(
        "gpt-4o-mini", "openai", input_tokens=row.input_tokens, output_tokens=301
    )


async def test_a_call_that_only_thought_before_it_broke_is_charged_for_the_thinking(
    fake_provider, credential_for, alice, one_attempt
):
    fake_provider.configure(reasoning_tokens=30, stall_after=10)
    credential = await credential_for("openai")
    error = await failure(alice, credential, make_request(), timeouts=Timeouts(1, 0.5, 20))
    assert error.code == "timeout"
    assert error.partial_reasoning == "".join(tokenize(lorem(30))[:10])
    assert error.message.startswith("The provider stopped sending the reply")
    row = await the_row()
    assert row.output_tokens == row.reasoning_tokens == tokens.count_text(error.partial_reasoning)
    assert row.input_tokens > 0 and row.cost > 0 and row.tokens_estimated


# --- Prompt caching --------------------------------------------------------------------------------


async def test_openai_cached_prompt_tokens_are_recorded_and_priced(
    fake_provider, credential_for, alice
):
    fake_provider.configure(prompt_tokens=1200, cache_read_tokens=1000, reply_tokens=50)
    credential = await credential_for("openai")
    _, _, finished = await run(alice, credential, make_request())
    row = await the_row()
    assert (row.input_tokens, row.cache_read_tokens, row.cache_write_tokens) == (1200, 1000, 0)
    assert row.cost == price(
        "gpt-4o-mini", "openai", input_tokens=1200, cache_read_tokens=1000, output_tokens=50
    )
    assert row.cost < price("gpt-4o-mini", "openai", input_tokens=1200, output_tokens=50)
    assert finished.cache_read_tokens == 1000


async def test_anthropic_cache_reads_and_writes_add_up_to_the_whole_prompt_and_are_priced(
    fake_provider, credential_for, alice
):
    fake_provider.configure(
        prompt_tokens=200, cache_read_tokens=1000, cache_write_tokens=500, reply_tokens=50
    )
    credential = await credential_for("anthropic")
    await run(alice, credential, make_request("anthropic"))
    row = await the_row()
    assert (row.input_tokens, row.cache_read_tokens, row.cache_write_tokens) == (1700, 1000, 500)
    assert row.output_tokens == 50 and row.tokens_estimated is False
    assert row.cost == price(
        "claude-3-5-haiku-latest",
        "anthropic",
        input_tokens=1700,
        cache_read_tokens=1000,
        cache_write_tokens=500,
        output_tokens=50,
    )


# --- Not a stream ----------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", PRESETS)
async def test_an_html_page_with_status_200_is_a_provider_error_never_ok(
    preset, fake_provider, credential_for, alice, one_attempt
):
    fake_provider.configure(html_page=True)
    credential = await credential_for(preset)
    error = await failure(alice, credential, make_request(preset))
    assert error.code == "provider_error"
    row = await the_row()
    assert row.status == "error" and row.cost == 0 and row.output_tokens == 0


@pytest.mark.parametrize("preset", PRESETS)
async def test_a_json_completion_where_a_stream_was_asked_for_is_read_as_the_answer(
    preset, fake_provider, credential_for, alice
):
    fake_provider.configure(ignore_stream=True, reply=TRICKY, reasoning="Let me see.")
    credential = await credential_for(preset)
    text, thoughts, finished = await run(alice, credential, make_request(preset))
    assert text == "".join(tokenize(TRICKY)) and thoughts == "Let me see."
    row = await the_row()
    assert row.status == "ok" and finished.reason == "stop"
    assert row.output_tokens == len(tokenize(TRICKY)) + 3 and not row.tokens_estimated


# --- Streams that stop without saying so -------------------------------------------------------------


@pytest.mark.parametrize("preset", PRESETS)
async def test_a_stream_that_ends_without_a_finish_is_interrupted_with_estimated_tokens(
    preset, fake_provider, credential_for, alice, one_attempt
):
    fake_provider.configure(reply_tokens=20, truncate_after=3, usage=preset != "anthropic")
    credential = await credential_for(preset)
    error = await failure(alice, credential, make_request(preset))
    assert error.code == "stream_interrupted"
    assert error.partial_text == "".join(tokenize(lorem(20))[:3])
    row = await the_row()
    assert row.status == "error" and row.error_code == "stream_interrupted"
    assert row.output_tokens == tokens.count_text(error.partial_text) > 0
    assert row.tokens_estimated and row.input_tokens > 0


async def test_anthropic_cut_after_its_final_delta_but_before_message_stop_is_interrupted(
    fake_provider, credential_for, alice, one_attempt
):
    # Everything but `message_stop`: the reply is not known to be whole.
    fake_provider.configure(reply_tokens=3, truncate_after=3)
    credential = await credential_for("anthropic")
    error = await failure(alice, credential, make_request("anthropic"))
    assert error.code == "stream_interrupted"


async def test_a_broken_anthropic_call_keeps_the_providers_input_count(
    fake_provider, credential_for, alice, one_attempt
):
    # message_start reported 200 input tokens; the stream then failed. Charge those 200, not a
    # local estimate of the prompt (issue 8, item 10).
    fake_provider.configure(prompt_tokens=200, reply_tokens=20, error_event_after=3)
    credential = await credential_for("anthropic")
    error = await failure(alice, credential, make_request("anthropic"))
    assert error.code in ("provider_error", "stream_interrupted")
    row = await the_row()
    assert row.input_tokens == 200
    assert row.output_tokens == tokens.count_text(error.partial_text) > 0
    assert row.cost == price(
        "claude-3-5-haiku-latest", "anthropic", input_tokens=200, output_tokens=row.output_tokens
    )


# --- Limits ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["openai", "anthropic", "ollama"])
async def test_the_gate_stops_an_upstream_that_ignores_max_tokens(
    preset, fake_provider, credential_for, alice
):
    fake_provider.configure(endless=True, tokens_per_chunk=2)
    credential = await credential_for(preset)
    text, _, finished = await run(alice, credential, make_request(preset, max_tokens=50))
    assert finished.reason == "length"
    row = await the_row()
    assert row.status == "ok" and row.finish_reason == "length"
    # Counted per delta as it went: cut just past max_tokens (never before: see the next test).
    assert 50 < row.output_tokens <= 60 and row.output_tokens == tokens.count_text(text)


async def test_an_upstream_that_honours_max_tokens_is_never_cut_short(
    fake_provider, credential_for, alice
):
    fake_provider.configure(reply_tokens=100, tokens_per_chunk=3)
    credential = await credential_for("openai")
    text, _, finished = await run(alice, credential, make_request(max_tokens=40))
    assert text == "".join(tokenize(lorem(100))[:40]) and finished.reason == "length"


async def test_a_reply_past_the_maximum_size_stops_keeping_exactly_that_much(
    fake_provider, credential_for, alice, settings
):
    settings.WORKBENCH_MAX_REPLY_CHARS = 500
    fake_provider.configure(endless=True, tokens_per_chunk=7)
    credential = await credential_for("openai")
    error = await failure(alice, credential, make_request())
    assert error.code == "reply_too_large" and "500" in error.message
    assert len(error.partial_text) == 500
    row = await the_row()
    assert row.status == "error" and row.output_tokens == tokens.count_text(error.partial_text)


async def test_the_total_timeout_says_the_call_took_too_long_not_that_it_went_silent(
    fake_provider, credential_for, alice, one_attempt
):
    fake_provider.configure(endless=True, tokens_per_second=50)
    credential = await credential_for("openai")
    error = await failure(alice, credential, make_request(), timeouts=Timeouts(1, 1, 1.0))
    assert error.code == "timeout"
    assert error.message == "The reply took longer than the 1 s Workbench allows for a whole call."
    assert error.partial_text


async def test_time_to_first_token_leaves_out_the_retry_back_off(
    fake_provider, credential_for, alice
):
    fake_provider.enqueue(status=429, retry_after=1)
    fake_provider.configure(reply_tokens=3)
    credential = await credential_for("openai")
    _, _, finished = await run(alice, credential, make_request())
    row = await the_row()
    assert row.attempts == 2 and row.retry_wait_ms == pytest.approx(1000, abs=1)
    assert row.ttft_ms < 700  # the provider's own latency; the caller waited ~1 s more
    assert finished.retry_wait_ms == row.retry_wait_ms
