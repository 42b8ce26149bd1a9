"""The gate (providers.gate): every preset end to end through its real SDK against the fake
provider over HTTP, one usage row per call with the right tokens and cost, timing, parameters on
the wire, access rules and embeddings."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import anthropic  # noqa: F401 - warm SDK imports: a cold import must not count against timeouts
import groq  # noqa: F401
import ollama  # noqa: F401
import openai  # noqa: F401
import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied
from django.db import connections
from django.http import Http404
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price

from billing.models import DailyUsage, UsageRecord
from providers import tokens
from providers.adapters.base import (
    CompletionRequest,
    Finished,
    Message,
    ProviderError,
    TextDelta,
)
from providers.fakeserver import knobs as fake_knobs
from providers.fakeserver import tokenize
from providers.gate import completion_stream, embedding_create
from providers.presets import PRESETS

pytestmark = pytest.mark.django_db(transaction=True)

SYSTEM = "You answer in one short sentence."
QUESTION = "What is the capital of France?"
REPLY = "Paris is the capital of France."

# One real model per preset (for paid ones: a model genai-prices knows, under its provider id).
MODELS = {
    "echo": "echo",
    "ollama": "llama3.2:3b",
    "openai": "gpt-4o-mini",
    "anthropic": "claude-3-5-haiku-latest",
    "groq": "llama-3.1-8b-instant",
    "gemini": "gemini-2.0-flash",
    "cohere": "command-r",
    "mistral": "mistral-small-latest",
    "together": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
    "perplexity": "sonar",
    "deepseek": "deepseek-chat",
    "openrouter": "openai/gpt-4o-mini",
    "openai_compatible": "qwen2.5-7b-instruct",
}
QUANTUM = Decimal("0.000000001")


def make_request(model: str = "gpt-4o-mini", **fields) -> CompletionRequest:
    fields.setdefault("system", SYSTEM)
    fields.setdefault("messages", (Message("user", QUESTION),))
    return CompletionRequest(model=model, **fields)


async def collect(user, credential, request, **kwargs) -> tuple[str, Finished | None, list]:
    """Run one call through the gate; (reply text, the Finished event, every event)."""
    seen = []
    async with contextlib.aclosing(
        completion_stream(user=user, credential_id=credential.pk, request=request, **kwargs)
    ) as events:
        async for event in events:
            seen.append(event)
    text = "".join(e.text for e in seen if type(e) is TextDelta)
    finished = [e for e in seen if type(e) is Finished]
    assert len(finished) <= 1
    return text, (finished[0] if finished else None), seen


async def failure(user, credential, request, **kwargs) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await collect(user, credential, request, **kwargs)
    return info.value


@sync_to_async
def usage_rows() -> list[UsageRecord]:
    return list(UsageRecord.objects.order_by("id"))


@sync_to_async
def daily_rows() -> list[DailyUsage]:
    return list(DailyUsage.objects.all())


def price(provider_id: str, model: str, input_tokens: int, output_tokens: int) -> Decimal:
    total = calc_price(
        PriceUsage(input_tokens=input_tokens, output_tokens=output_tokens),
        model,
        provider_id=provider_id,
    ).total_price
    return Decimal(total).quantize(QUANTUM)


def fake_prompt_tokens(body: dict) -> int:
    """The fake's own count of the prompt it received (whatever the wire format)."""
    return fake_knobs.prompt_tokens(body.get("messages"), body.get("system"))


@pytest.fixture(autouse=True)
async def _close_worker_thread_connection():
    """asgiref runs this module's `sync_to_async` calls in one worker thread; close that thread's
    database connection after each test (the root conftest closes another thread's), else the
    test database can't be dropped at the end of the session (a 5 s wait and a warning)."""
    yield
    await sync_to_async(connections.close_all)()


# --- Every preset ----------------------------------------------------------------------------------


def test_every_preset_has_a_model_in_this_test():
    assert set(MODELS) == set(PRESETS)


@pytest.mark.parametrize("preset", list(PRESETS))
async def test_each_preset_streams_a_reply_and_records_one_row_with_tokens_and_cost(
    preset, fake_provider, make_credential, alice
):
    row = PRESETS[preset]
    model = MODELS[preset]
    fake_provider.configure(reply=REPLY)
    credential = await sync_to_async(make_credential)(alice, preset)
    request = make_request(model, max_tokens=64, stop=("STOP",))

    text, finished, events = await collect(alice, credential, request)

    [record] = await usage_rows()
    assert finished is not None and events[-1] is finished
    assert record.status == "ok" and record.error_code == ""
    assert record.preset == preset and record.model == model and record.operation == "chat"
    assert record.attempts == 1 and record.user_id == alice.pk
    assert record.credential_id == credential.pk
    assert finished.usage_id == record.pk
    assert (finished.input_tokens, finished.output_tokens) == (
        record.input_tokens,
        record.output_tokens,
    )

    if preset == "echo":
        # No network at all; the reply shows what a model would receive.
        assert fake_provider.requests == []
        assert SYSTEM in text and QUESTION in text
        assert '"max_tokens": 64' in text and '"stop": ["STOP"]' in text
        assert record.tokens_estimated is True
        assert record.input_tokens == tokens.count_messages(request.all_messages())
        assert record.output_tokens == tokens.count_text(text)
    else:
        assert text == REPLY
        [sent] = fake_provider.requests
        assert sent.body["model"] == model
        if "no_stream_options" in row.quirks:
            # The host sends no usage: counted locally, marked estimated.
            assert "stream_options" not in sent.body
            assert record.tokens_estimated is True
            assert record.input_tokens == tokens.count_messages(request.all_messages())
            assert record.output_tokens == tokens.count_text(REPLY)
        else:
            assert record.tokens_estimated is False
            assert record.input_tokens == fake_prompt_tokens(sent.body)
            assert record.input_tokens == len(tokenize(SYSTEM)) + len(tokenize(QUESTION))
            assert record.output_tokens == len(tokenize(REPLY))

    if row.local:
        assert record.cost == 0 and record.cost_source == "local"
    else:
        expected = price(row.price_provider, model, record.input_tokens, record.output_tokens)
        assert expected > 0
        assert record.cost == expected
        assert record.cost_source == (
            "estimated" if "no_stream_options" in row.quirks else "provider"
        )
        assert record.price_snapshot["source"] == "genai-prices"
    assert Decimal(finished.cost) == record.cost
    assert finished.cost_source == record.cost_source
    assert finished.tokens_estimated == record.tokens_estimated


async def test_a_model_with_no_known_price_is_unpriced_never_zero(
    fake_provider, make_credential, alice
):
    credential = await sync_to_async(make_credential)(alice, "together")

    _, finished, _ = await collect(alice, credential, make_request("my-finetune"))

    [record] = await usage_rows()
    assert record.status == "ok" and record.output_tokens > 0
    assert record.cost is None and record.cost_source == "unpriced"
    assert finished.cost is None and finished.cost_source == "unpriced"
    [day] = await daily_rows()
    assert day.unpriced_calls == 1 and day.cost == 0


# --- Events, rollups, timing -----------------------------------------------------------------------


async def test_finished_event_carries_the_numbers_of_the_row(fake_provider, make_credential, alice):
    fake_provider.configure(reply_tokens=12, tokens_per_second=400)
    credential = await sync_to_async(make_credential)(alice, "openai")

    _, finished, _ = await collect(alice, credential, make_request())

    [record] = await usage_rows()
    assert finished.usage_id == record.pk
    assert Decimal(finished.cost) == record.cost
    assert finished.ttft_ms == record.ttft_ms
    assert finished.duration_ms == record.duration_ms
    assert finished.tokens_per_second == record.tokens_per_second
    assert finished.attempts == record.attempts == 1
    assert finished.reason == "stop"


async def test_daily_rollup_adds_up_three_calls(fake_provider, make_credential, alice):
    credential = await sync_to_async(make_credential)(alice, "openai")
    for words in (3, 5, 8):
        fake_provider.enqueue(reply_tokens=words)
        await collect(alice, credential, make_request())

    records = await usage_rows()
    [day] = await daily_rows()
    assert len(records) == 3
    assert [r.output_tokens for r in records] == [3, 5, 8]
    assert day.calls == 3 and day.errors == 0 and day.unpriced_calls == 0
    assert day.user_id == alice.pk and day.credential_id == credential.pk
    assert day.model == "gpt-4o-mini" and day.provider_id == "openai"
    assert day.input_tokens == sum(r.input_tokens for r in records)
    assert day.output_tokens == 16
    assert day.cost == sum(r.cost for r in records) and day.cost > 0


async def test_usage_row_records_ttft_duration_overhead_and_tokens_per_second(
    fake_provider, make_credential, alice
):
    fake_provider.configure(ttft=0.1, tokens_per_second=100, reply_tokens=21)
    credential = await sync_to_async(make_credential)(alice, "openai")

    await collect(alice, credential, make_request())

    [record] = await usage_rows()
    assert record.output_tokens == 21
    assert record.ttft_ms >= 100
    # 21 tokens at 100/s: the first after ~0.1 s, the last ~0.2 s later.
    assert record.duration_ms >= record.ttft_ms + 150
    assert record.overhead_ms >= 0
    assert record.overhead_ms < record.ttft_ms
    assert record.tokens_per_second is not None
    assert 30 < record.tokens_per_second < 300


# --- Parameters on the wire ------------------------------------------------------------------------

PARAMS = {"temperature": 0.5, "top_p": 0.9, "max_tokens": 40, "stop": ("END",), "seed": 42}


async def test_openai_format_sends_the_parameters_as_given(fake_provider, make_credential, alice):
    credential = await sync_to_async(make_credential)(alice, "openai")

    await collect(alice, credential, make_request(**PARAMS))

    body = fake_provider.requests[-1].body
    assert body["temperature"] == 0.5 and body["top_p"] == 0.9
    assert body["max_tokens"] == 40 and body["stop"] == ["END"] and body["seed"] == 42
    assert body["messages"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": QUESTION},
    ]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


async def test_anthropic_gets_system_as_a_top_level_field_and_no_seed(
    fake_provider, make_credential, alice
):
    credential = await sync_to_async(make_credential)(alice, "anthropic")
    request = make_request("claude-3-5-haiku-latest", max_tokens=40, stop=("END",), seed=42)

    await collect(alice, credential, request)

    sent = fake_provider.requests[-1]
    assert sent.path == "/v1/messages"
    body = sent.body
    assert body["system"] == SYSTEM
    assert body["messages"] == [{"role": "user", "content": QUESTION}]
    assert "seed" not in body
    assert body["max_tokens"] == 40 and body["stop_sequences"] == ["END"]
    sent_key = sent.headers.get("x-api-key") or sent.headers.get("authorization", "")
    assert sent_key.removeprefix("Bearer ") == "sk-test-key-0123456789"


async def test_anthropic_gets_temperature_and_top_p(fake_provider, make_credential, alice):
    # BUG: anthropic>=1.0 (2.14 installed) dropped `temperature`/`top_p` from messages.create();
    # the adapter passes them as keywords, so every Anthropic call with a temperature fails with
    # a TypeError before any request is sent. They must travel in `extra_body`.
    credential = await sync_to_async(make_credential)(alice, "anthropic")

    text, _, _ = await collect(
        alice, credential, make_request("claude-3-5-haiku-latest", temperature=0.5, top_p=0.9)
    )

    assert text
    body = fake_provider.requests[-1].body
    assert body["temperature"] == 0.5 and body["top_p"] == 0.9


async def test_groq_gets_stream_options_inside_the_body(fake_provider, make_credential, alice):
    credential = await sync_to_async(make_credential)(alice, "groq")

    await collect(alice, credential, make_request("llama-3.1-8b-instant", **PARAMS))

    sent = fake_provider.requests[-1]
    assert sent.path == "/openai/v1/chat/completions"
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["seed"] == 42 and sent.body["stop"] == ["END"]


async def test_ollama_gets_the_parameters_as_options(fake_provider, make_credential, alice):
    credential = await sync_to_async(make_credential)(alice, "ollama")

    await collect(alice, credential, make_request("llama3.2:3b", **PARAMS))

    sent = fake_provider.requests[-1]
    assert sent.path == "/api/chat"
    assert sent.body["options"] == {
        "temperature": 0.5,
        "top_p": 0.9,
        "num_predict": 40,
        "stop": ["END"],
        "seed": 42,
    }


# --- Access ----------------------------------------------------------------------------------------


async def test_an_outsider_gets_404_and_no_usage_row(
    fake_provider, make_credential, alice, charlie_outsider
):
    credential = await sync_to_async(make_credential)(alice, "openai")

    with pytest.raises(Http404):
        await collect(charlie_outsider, credential, make_request())

    assert await usage_rows() == []
    assert fake_provider.requests == []


async def test_a_viewer_may_not_use_a_team_credential(
    fake_provider, make_credential, team, vera_viewer
):
    credential = await sync_to_async(make_credential)(team, "openai")

    with pytest.raises(PermissionDenied):
        await collect(vera_viewer, credential, make_request())

    assert await usage_rows() == []
    assert fake_provider.requests == []


async def test_a_member_uses_a_team_credential_and_the_row_belongs_to_the_team(
    fake_provider, make_credential, team, bob_teammate
):
    credential = await sync_to_async(make_credential)(team, "openai")

    text, _, _ = await collect(bob_teammate, credential, make_request())

    [record] = await usage_rows()
    assert text and record.status == "ok"
    assert record.user_id == bob_teammate.pk and record.team_id == team.pk


async def test_an_inactive_credential_fails_with_inactive_and_a_row(
    fake_provider, make_credential, alice
):
    credential = await sync_to_async(make_credential)(alice, "openai", is_active=False)

    error = await failure(alice, credential, make_request())

    assert error.code == "inactive"
    [record] = await usage_rows()
    assert error.usage_id == record.pk
    assert record.status == "error" and record.error_code == "inactive"
    assert record.input_tokens == record.output_tokens == 0 and record.cost == 0
    assert fake_provider.requests == []


async def test_a_bad_request_fails_with_bad_request_before_reaching_the_provider(
    fake_provider, make_credential, alice
):
    credential = await sync_to_async(make_credential)(alice, "openai")

    error = await failure(alice, credential, make_request(temperature=5))

    assert error.code == "bad_request" and "temperature" in error.message
    [record] = await usage_rows()
    assert record.status == "error" and record.error_code == "bad_request"
    assert fake_provider.requests == []


# --- Embeddings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "preset, model", [("openai", "text-embedding-3-small"), ("ollama", "nomic-embed-text:latest")]
)
async def test_embeddings_return_vectors_and_write_one_embedding_row(
    preset, model, fake_provider, make_credential, alice
):
    fake_provider.configure(embedding_dim=24)
    credential = await sync_to_async(make_credential)(alice, preset)
    inputs = ["the first text", "a second one here"]

    result, usage_id = await embedding_create(
        user=alice, credential_id=credential.pk, model=model, inputs=inputs
    )

    assert len(result.vectors) == 2
    assert all(len(vector) == 24 for vector in result.vectors)
    assert result.vectors[0] != result.vectors[1]
    [record] = await usage_rows()
    assert record.pk == usage_id
    assert record.operation == "embedding" and record.status == "ok"
    assert record.model == model
    assert record.input_tokens == 7  # the fake's count: words of both texts
    assert record.output_tokens == 0
    if preset == "ollama":
        assert record.cost == 0 and record.cost_source == "local"
    else:
        assert record.cost == price("openai", model, 7, 0)
        assert record.cost_source == "provider"


async def test_embeddings_on_a_preset_without_them_are_a_bad_request(
    fake_provider, make_credential, alice
):
    credential = await sync_to_async(make_credential)(alice, "anthropic")

    with pytest.raises(ProviderError) as info:
        await embedding_create(
            user=alice, credential_id=credential.pk, model="claude-3-5-haiku-latest", inputs=["x"]
        )

    assert info.value.code == "bad_request"
    [record] = await usage_rows()
    assert record.operation == "embedding" and record.status == "error"
    assert record.error_code == "bad_request"
    assert fake_provider.requests == []
