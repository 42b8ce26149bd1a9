"""`completion_stream`: one streamed completion through the gate (DESIGN §3).

The stream is what the caller receives: deltas cleaned of what PostgreSQL cannot store, cut at
the maximum reply size and (for upstreams that ignore it) past `max_tokens`; retried only
before the first token; always ending in one `Finished` after the usage row is settled, or in a
`ProviderError` with a stable code."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from billing.models import CallStatus
from providers import tokens
from providers.adapters import adapter_for
from providers.adapters.base import (
    CompletionRequest,
    Finished,
    ProviderError,
    ReasoningDelta,
    StopReason,
    TextDelta,
    Timeouts,
    ToolCallDelta,
    Usage,
)
from providers.gate.calls import (
    Call,
    CallControl,
    default_timeouts,
    max_attempts,
    max_reply_chars,
)
from providers.gate.deadlines import guarded
from providers.gate.lifecycle import cancelled_status, live_add
from providers.gate.preparation import call_prepare, slot_keep
from providers.gate.retries import RETRYABLE, backoff
from providers.gate.settlement import call_checkpoints, call_settle
from workbench import connections
from workbench.text import clean

logger = logging.getLogger(__name__)


def _over_max_tokens(counted: int, max_tokens: int) -> bool:
    """An upstream that ignores max_tokens is cut once it is clearly past it. The count is per
    delta (tokens.count_delta: up to ~8 % high when deltas split words), and a provider that
    honours max_tokens must not be cut before its own finish and usage arrive: hence 10 % + 2."""
    return counted > max_tokens * 1.1 + 2


async def completion_stream(
    *,
    user,
    credential_id,
    request: CompletionRequest,
    feature: str = "api",
    context: dict | None = None,
    team=None,
    timeouts: Timeouts | None = None,
    egress: dict | None = None,
    control: CallControl | None = None,
    checkpoint: Callable[[], Callable | None] | None = None,
) -> AsyncIterator[TextDelta | ReasoningDelta | Finished]:
    """Stream a completion: TextDelta and ReasoningDelta events (and ToolCallDelta when the
    request has tools), then one Finished (after the usage row is settled).

    Raises Http404/PermissionDenied (access), or ProviderError with a stable code — after the
    usage row is settled; `error.usage_id`, `error.partial_text` and `error.partial_reasoning`
    are set. `checkpoint`, called on the event loop about once a second while the call runs,
    may return sync work for the same database hop as the ledger's checkpoint.
    `team`: the team to bill a personal credential's call to, when the caller chose one.
    `credential_id` may instead be a callable returning (credential, model id), run in the
    prepare hop (the gateway resolves model names so); it must fetch through the access rules.
    Or the credential itself, fetched through the access rules by the caller in the same
    request (chat's plan): access is checked again on it.
    `egress` is for tests: {"allow": [...], "resolver": fn}.
    """
    call = Call()
    timeouts = timeouts or default_timeouts()
    prepared = await connections.hop(call_prepare)(
        user, credential_id, request, team, timeouts, egress or {}, feature, context or {}
    )
    request = prepared.request or request
    status = None
    error: ProviderError | None = prepared.error
    adapter = checkpointer = live = None
    keeper = slot_keep(prepared)
    try:
        if error is not None:
            status = CallStatus.ERROR
            raise error
        live = live_add(call, asyncio.current_task(), prepared.record.pk)
        checkpointer = asyncio.create_task(
            call_checkpoints(prepared.record.pk, call, prepared.input_estimate, checkpoint)
        )
        if prepared.reservation.max_tokens != request.max_tokens:
            request = replace(request, max_tokens=prepared.reservation.max_tokens)
        adapter = adapter_for(prepared.config)
        max_tokens, max_chars = request.max_tokens, max_reply_chars()
        attempts = max_attempts()
        while True:
            call.attempts += 1
            call.adapter_started = call.adapter_started or time.perf_counter()
            try:
                async with contextlib.aclosing(
                    guarded(adapter.stream(request), timeouts, call)
                ) as events:
                    async for event in events:
                        call.reached = True
                        kind = type(event)
                        if kind is TextDelta or kind is ReasoningDelta:
                            if not event.text:
                                continue
                            if (text := clean(event.text)) is not event.text:
                                event = kind(text)  # what is streamed is what gets stored
                            over = call.chars + len(event.text) - max_chars
                            if over > 0:
                                event = kind(event.text[:-over])
                            if event.text:
                                call.add(event, time.perf_counter())
                                yield event
                            if over > 0:
                                raise ProviderError(
                                    "reply_too_large",
                                    "The reply passed Workbench's maximum reply size "
                                    f"({max_chars:,} characters); the text so far is kept.",
                                )
                            if max_tokens is not None:
                                call.counted += tokens.count_delta(event.text)
                                if _over_max_tokens(call.counted, max_tokens):
                                    call.reason = call.reason or "length"
                                    break
                        elif kind is Usage:
                            call.reported.update(
                                (name, value)
                                for name, value in vars(event).items()
                                if value is not None
                            )
                        elif kind is StopReason:
                            call.reason = event.reason
                        elif kind is ToolCallDelta:  # adapters with supports_tools only
                            call.first_token_at = call.first_token_at or time.perf_counter()
                            call.tool_parts.append(event.name + event.arguments)
                            call.chars += len(event.name) + len(event.arguments)
                            if call.chars > max_chars:
                                raise ProviderError(
                                    "reply_too_large",
                                    "The reply passed Workbench's maximum reply size "
                                    f"({max_chars:,} characters).",
                                )
                            yield event
                if call.reason is None:
                    raise ProviderError(
                        "stream_interrupted",
                        "The reply stream ended before the provider said it had finished.",
                    )
                break
            except ProviderError as exc:
                if (
                    call.first_token_at is None
                    and exc.retryable
                    and exc.code in RETRYABLE
                    and call.attempts < attempts
                ):
                    wait = backoff(call.attempts, exc)
                    if wait is not None:
                        logger.info(
                            "Retrying %s after %s (%.2fs)",
                            prepared.credential.preset,
                            exc.code,
                            wait,
                        )
                        call.reported.clear()
                        call.reached = False
                        await asyncio.sleep(wait)
                        call.retry_wait += wait
                        continue
                raise
        status = CallStatus.OK
    except ProviderError as exc:
        status, error = CallStatus.ERROR, exc
        raise
    except (GeneratorExit, asyncio.CancelledError) as exc:
        status = cancelled_status(exc, control)
        raise
    except Exception as exc:
        logger.exception(
            "Unexpected error from the %s adapter",
            prepared.credential.preset if prepared.credential else "?",
        )
        status, error = (
            CallStatus.ERROR,
            ProviderError("provider_error", "Unexpected error talking to the provider."),
        )
        raise error from exc
    finally:
        if keeper is not None:
            keeper.cancel()
        if checkpointer is not None:
            checkpointer.cancel()
        if adapter is not None:
            await adapter.aclose()
        if prepared.credential is not None:
            record = await call_settle(
                user=user,
                prepared=prepared,
                request=request,
                call=call,
                status=status or CallStatus.STOPPED,
                error=error,
                feature=feature,
                context=context or {},
                live=live,
            )
    reasoning_ms = None
    if call.first_reasoning_at is not None:
        until = call.first_text_at if call.first_text_at is not None else time.perf_counter()
        reasoning_ms = max(0.0, (until - call.first_reasoning_at) * 1000)
    yield Finished(
        reason=call.reason or "stop",
        usage_id=record.pk,
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        tokens_estimated=record.tokens_estimated,
        cost=str(record.cost) if record.cost is not None else None,
        cost_source=record.cost_source,
        ttft_ms=record.ttft_ms,
        duration_ms=record.duration_ms,
        tokens_per_second=record.tokens_per_second,
        attempts=record.attempts,
        cache_read_tokens=record.cache_read_tokens,
        cache_write_tokens=record.cache_write_tokens,
        reasoning_tokens=record.reasoning_tokens,
        retry_wait_ms=record.retry_wait_ms,
        reasoning_ms=reasoning_ms,
    )
