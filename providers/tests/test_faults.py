"""Faults through the gate: every fault knob of the fake provider ends in a clear error code and
exactly one usage row; retries happen only before the first token; stop and cancel are recorded."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import anthropic  # noqa: F401 - imported here so a cold SDK import never counts against FAST
import groq  # noqa: F401
import ollama  # noqa: F401
import openai  # noqa: F401
import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from billing.models import UsageRecord
from providers import tokens
from providers.adapters.base import (
    CompletionRequest,
    Finished,
    Message,
    ProviderError,
    TextDelta,
    Timeouts,
)
from providers.fakeserver import FakeProvider
from providers.gate import completion_stream

pytestmark = pytest.mark.django_db(transaction=True)

FAST = Timeouts(connect=1, read=0.5, total=5)
REPLY = "one two three four five six seven eight"
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-latest", "ollama": "llama3.2:3b"}


def make_request(preset: str = "openai") -> CompletionRequest:
    return CompletionRequest(model=MODELS[preset], messages=(Message("user", "Count to eight"),))


async def collect(user, credential, request, **kwargs):
    kwargs.setdefault("timeouts", FAST)
    parts, finished = [], None
    async with contextlib.aclosing(
        completion_stream(user=user, credential_id=credential.pk, request=request, **kwargs)
    ) as events:
        async for event in events:
            if type(event) is TextDelta:
                parts.append(event.text)
            elif type(event) is Finished:
                finished = event
    return "".join(parts), finished


async def failure(user, credential, request, **kwargs) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await collect(user, credential, request, **kwargs)
    return info.value


@sync_to_async
def usage_rows() -> list[UsageRecord]:
    return list(UsageRecord.objects.order_by("id"))


async def the_row(error: ProviderError | None = None) -> UsageRecord:
    [record] = await usage_rows()
    if error is not None:
        assert error.usage_id == record.pk
        assert record.status == "error" and record.error_code == error.code
        assert record.error_message == error.message[:500]
    return record


def chat_requests(fake: FakeProvider) -> list:
    return [r for r in fake.requests if r.method == "POST"]


@pytest.fixture(autouse=True)
async def _close_worker_thread_connection():
    """asgiref runs this module's `sync_to_async` calls in one worker thread; close that thread's
    database connection after each test (the root conftest closes another thread's), else the
    test database can't be dropped at the end of the session (a 5 s wait and a warning)."""
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def internal_server():
    """A second fake standing in for an internal service that must never be contacted."""
    with FakeProvider() as server:
        yield server


@pytest.fixture
def closed_port(settings):
    """A loopback port nobody listens on, allowlisted (so only the connection itself fails)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.WORKBENCH_EGRESS_ALLOW = [*settings.WORKBENCH_EGRESS_ALLOW, f"127.0.0.1:{port}"]
    return port


# --- Request-level faults --------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["openai", "anthropic", "ollama"])
async def test_a_429_with_a_long_retry_after_fails_at_once_with_rate_limited(
    preset, fake_provider, make_credential, alice
):
    fake_provider.configure(status=429, retry_after=100)
    credential = await sync_to_async(make_credential)(alice, preset)

    error = await failure(alice, credential, make_request(preset))

    assert error.code == "rate_limited"
    assert error.retry_after == 100
    assert len(chat_requests(fake_provider)) == 1  # no retry: the wait is too long
    record = await the_row(error)
    assert record.attempts == 1
    assert record.input_tokens == record.output_tokens == 0 and record.cost == 0


async def test_a_500_fails_with_provider_error_after_max_attempts(
    fake_provider, make_credential, alice
):
    fake_provider.configure(status=500)
    credential = await sync_to_async(make_credential)(alice, "openai")

    error = await failure(alice, credential, make_request())

    assert error.code == "provider_error"
    assert len(chat_requests(fake_provider)) == 3
    record = await the_row(error)
    assert record.attempts == 3


async def test_a_401_fails_with_auth_failed_without_retrying(fake_provider, make_credential, alice):
    fake_provider.configure(echo_auth=True)
    credential = await sync_to_async(make_credential)(alice, "openai")

    error = await failure(alice, credential, make_request())

    assert error.code == "auth_failed"
    assert len(chat_requests(fake_provider)) == 1
    await the_row(error)


async def test_a_redirect_is_an_error_and_its_target_is_never_contacted(
    fake_provider, make_credential, alice, internal_server, settings
):
    # Even an allowlisted target must not be reached through a redirect.
    settings.WORKBENCH_EGRESS_ALLOW = [
        *settings.WORKBENCH_EGRESS_ALLOW,
        f"127.0.0.1:{internal_server.port}",
    ]
    fake_provider.configure(redirect_to=f"{internal_server.url}/v1/chat/completions")
    credential = await sync_to_async(make_credential)(alice, "openai")

    error = await failure(alice, credential, make_request())

    assert error.code == "provider_error"
    assert "redirect" in error.message.lower()
    assert internal_server.requests == []
    assert len(chat_requests(fake_provider)) == 1
    await the_row(error)


# --- Stream-level faults ---------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["openai", "anthropic", "ollama"])
async def test_a_stall_mid_stream_times_out_keeping_and_charging_the_partial_text(
    preset, fake_provider, make_credential, alice
):
    fake_provider.configure(reply=REPLY, stall_after=3)
    credential = await sync_to_async(make_credential)(alice, preset)

    error = await failure(alice, credential, make_request(preset))

    assert error.code == "timeout"
    assert error.partial_text == "one two three "
    assert len(chat_requests(fake_provider)) == 1  # never retried after the first token
    record = await the_row(error)
    assert record.output_tokens == tokens.count_text("one two three ") > 0
    assert record.input_tokens > 0
    assert record.tokens_estimated is True
    if preset == "ollama":
        assert record.cost == 0 and record.cost_source == "local"
    else:
        assert record.cost > 0 and record.cost_source == "estimated"
    assert record.ttft_ms is not None


@pytest.mark.parametrize("preset", ["openai", "anthropic", "ollama"])
async def test_a_disconnect_mid_stream_is_stream_interrupted_with_the_partial_text(
    preset, fake_provider, make_credential, alice
):
    fake_provider.configure(reply=REPLY, disconnect_after=2)
    credential = await sync_to_async(make_credential)(alice, preset)

    error = await failure(alice, credential, make_request(preset))

    assert error.code == "stream_interrupted"
    assert error.partial_text == "one two "
    assert len(chat_requests(fake_provider)) == 1
    record = await the_row(error)
    assert record.output_tokens == tokens.count_text("one two ") > 0
    assert record.tokens_estimated is True


@pytest.mark.parametrize("knob", ["malformed_after", "error_event_after"])
@pytest.mark.parametrize("preset", ["openai", "anthropic", "ollama"])
async def test_a_broken_chunk_or_an_in_band_error_is_a_provider_error(
    preset, knob, fake_provider, make_credential, alice
):
    fake_provider.configure(reply=REPLY, **{knob: 2})
    credential = await sync_to_async(make_credential)(alice, preset)

    error = await failure(alice, credential, make_request(preset))

    assert error.code == "provider_error"
    assert error.partial_text == "one two "
    assert len(chat_requests(fake_provider)) == 1
    record = await the_row(error)
    assert record.output_tokens == tokens.count_text("one two ") > 0
    assert record.tokens_estimated is True


# --- Retries ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["openai", "anthropic"])
async def test_a_429_then_200_succeeds_after_one_retry(
    preset, fake_provider, make_credential, alice
):
    fake_provider.configure(reply=REPLY)
    fake_provider.enqueue(status=429, retry_after=0)
    credential = await sync_to_async(make_credential)(alice, preset)

    text, finished = await collect(alice, credential, make_request(preset), timeouts=None)

    assert text == REPLY
    assert len(chat_requests(fake_provider)) == 2
    record = await the_row()
    assert record.status == "ok" and record.attempts == 2 and finished.attempts == 2
    assert record.output_tokens == 8 and record.tokens_estimated is False


async def test_no_retry_after_the_first_token(fake_provider, make_credential, alice):
    fake_provider.configure(reply=REPLY)
    fake_provider.enqueue(disconnect_after=2)  # the next request would succeed
    credential = await sync_to_async(make_credential)(alice, "openai")

    error = await failure(alice, credential, make_request())

    assert error.code == "stream_interrupted"
    assert error.partial_text == "one two "
    assert len(chat_requests(fake_provider)) == 1
    record = await the_row(error)
    assert record.attempts == 1


@pytest.mark.parametrize("preset", ["openai", "ollama"])
async def test_a_connect_error_is_unreachable_after_retries(
    preset, fake_provider, make_credential, alice, closed_port
):
    credential = await sync_to_async(make_credential)(
        alice, preset, base_url=f"http://127.0.0.1:{closed_port}"
    )

    error = await failure(alice, credential, make_request(preset))

    assert error.code == "unreachable"
    record = await the_row(error)
    assert record.attempts == 3
    assert record.input_tokens == record.output_tokens == 0 and record.cost == 0
    assert record.ttft_ms is None


# --- Stop and cancel -------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["openai", "anthropic", "ollama"])
async def test_stopping_mid_stream_writes_one_stopped_row_charging_the_partial(
    preset, fake_provider, make_credential, alice
):
    fake_provider.configure(reply_tokens=200, tokens_per_second=40)
    credential = await sync_to_async(make_credential)(alice, preset)
    parts = []

    async with contextlib.aclosing(
        completion_stream(
            user=alice, credential_id=credential.pk, request=make_request(preset), timeouts=FAST
        )
    ) as events:
        async for event in events:
            parts.append(event.text)
            if len(parts) == 2:
                break

    record = await the_row()
    assert record.status == "stopped" and record.error_code == ""
    assert record.output_tokens == tokens.count_text("".join(parts)) > 0
    assert record.tokens_estimated is True and record.input_tokens > 0
    if preset != "ollama":
        assert record.cost > 0 and record.cost_source == "estimated"
    # The provider saw us leave; the stream was not read to its end.
    for _ in range(40):
        if fake_provider.disconnects:
            break
        await asyncio.sleep(0.05)
    assert fake_provider.disconnects == 1


async def test_cancelling_the_task_that_iterates_settles_exactly_one_disconnected_row(
    fake_provider, make_credential, alice
):
    fake_provider.configure(reply_tokens=200, tokens_per_second=40)
    credential = await sync_to_async(make_credential)(alice, "openai")
    two_deltas = asyncio.Event()
    parts = []

    async def consume():
        async with contextlib.aclosing(
            completion_stream(
                user=alice, credential_id=credential.pk, request=make_request(), timeouts=FAST
            )
        ) as events:
            async for event in events:
                parts.append(event.text)
                if len(parts) == 2:
                    two_deltas.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(two_deltas.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    # The ledger write is shielded from the cancellation; give it a moment if it still runs.
    for _ in range(50):
        rows = await usage_rows()
        if rows and rows[0].status != "running":
            break
        await asyncio.sleep(0.05)
    record = await the_row()
    # A task cancelled from outside is a caller that went away (a Stop button says so itself).
    assert record.status == "disconnected"
    assert record.output_tokens >= 2 and record.tokens_estimated is True
    assert record.cost > 0
