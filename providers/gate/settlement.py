"""A call's usage row after admission: checkpointed about once a second while the call runs,
then counted (provider-reported where reported, the rest locally, off the loop) and settled
with the reservation and the slot — in `finally`, shielded from the caller's cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from billing import budgets
from billing.models import CallStatus
from billing.pricing import Tokens
from billing.services import usage_checkpoint, usage_record, usage_settle
from providers import concurrency, tokens
from providers.adapters.base import CompletionRequest, ProviderError
from providers.gate.calls import Call, Prepared
from workbench import connections, memory

logger = logging.getLogger(__name__)

CHECKPOINT_INTERVAL = 1.0  # seconds between checkpoints of a streaming call's usage row


def _checkpoint(pk: int, progress: Tokens, extra: Callable[[], object] | None) -> None:
    usage_checkpoint(pk=pk, tokens=progress)
    if extra is not None:
        extra()


def _finish(
    *,
    user,
    prepared: Prepared,
    request: CompletionRequest,
    call: Call,
    status: str,
    error: ProviderError | None,
    feature: str,
    context: dict,
    counted: Tokens,
    operation: str = "chat",
):
    credential = prepared.credential
    preset = credential.preset_row
    ended = time.perf_counter()
    try:
        if prepared.record is None:  # (and no slot: a refusal takes none, or frees it)
            # Refused by our own checks: nothing reached a provider, nothing to charge.
            record = usage_record(
                user=user,
                team_id=prepared.team_id,
                credential=credential,
                credential_name=credential.name,
                preset=preset.key,
                provider_id=preset.price_provider or "",
                model=request.model,
                operation=operation,
                feature=feature,
                status=status,
                error_code=error.code if error else "",
                error_message=(error.message[:500] if error else ""),
                cost=0,
                cost_source="local" if credential.is_local else "provider",
                duration_ms=(ended - call.started) * 1000,
                overhead_ms=(ended - call.started) * 1000,
                context=context,
            )
        else:
            ttft_ms = (
                max(0.0, (call.first_token_at - call.started - call.retry_wait) * 1000)
                if call.first_token_at
                else None
            )
            generating = ended - call.first_token_at if call.first_token_at else 0
            tps = counted.output / generating if generating > 0 and counted.output > 1 else None
            record, _ = usage_settle(
                record=prepared.record,
                status=status,
                tokens=counted,
                local=credential.is_local,
                preset=preset.key,
                error_code=error.code if error else "",
                error_message=error.message if error else "",
                provider_detail=error.detail if error else "",
                finish_reason=(call.reason or "") if status == CallStatus.OK else "",
                attempts=call.attempts,
                ttft_ms=ttft_ms,
                retry_wait_ms=call.retry_wait * 1000,
                duration_ms=(ended - call.started) * 1000,
                overhead_ms=((call.adapter_started or ended) - call.started) * 1000,
                tokens_per_second=tps,
                # The slot is freed in the same statement (one round trip after the call).
                also=concurrency.call_slot_release_statement(slot=prepared.slot)
                if prepared.slot is not None
                else None,
            )
    except BaseException:
        # The ledger write failed: neither the slot nor the hold may outlive the call (nothing
        # known to charge).
        with contextlib.suppress(Exception):
            concurrency.call_slot_release(slot=prepared.slot)
        if prepared.reservation is not None:
            budgets.budget_settle(prepared.reservation, cost=None)
        raise
    if prepared.reservation is not None:
        budgets.budget_settle(prepared.reservation, cost=record.cost)
    if error is not None and error.detail:
        logger.warning(
            "%s call %s failed with %s; the provider said: %s",
            preset.key,
            record.pk,
            error.code,
            error.detail[:500],
        )
    return record


async def _count(request: CompletionRequest, call: Call, status: str) -> Tokens:
    """The call's tokens: provider-reported whenever reported, the rest counted locally (in the
    counting thread, bounded) — charging what was sent and received (decisions.md). A call the
    provider never answered (refused, unreachable, no reply) costs nothing."""
    sent = call.reached or (
        status in (CallStatus.STOPPED, CallStatus.DISCONNECTED, CallStatus.INTERRUPTED)
        and call.adapter_started is not None
    )
    if not sent:
        return Tokens()
    reported = call.reported
    count_input = "input_tokens" not in reported
    count_output = "output_tokens" not in reported
    count_reasoning = "reasoning_tokens" not in reported and call.reasoning_parts
    messages = request.all_messages()
    input_count, text_count, reasoning_count = await tokens.acount_texts(
        [
            "\n".join(m.content for m in messages) if count_input else "",
            call.text + "".join(call.tool_parts) if count_output else "",
            call.reasoning if count_reasoning or count_output else "",
        ]
    )
    overhead = tokens.PER_MESSAGE * len(messages) + tokens.PER_REPLY
    output = reported["output_tokens"] if not count_output else text_count + reasoning_count
    reasoning = reported.get("reasoning_tokens", reasoning_count)
    return Tokens(
        input=reported["input_tokens"] if not count_input else input_count + overhead,
        output=output,
        cache_read=reported.get("cache_read_tokens", 0),
        cache_write=reported.get("cache_write_tokens", 0),
        reasoning=min(reasoning, output),
        estimated=count_input or count_output or call.counted_locally,
    )


async def call_settle(
    *, call: Call, error: ProviderError | None, request, status, live=None, **fields
):
    """Count (off the loop, bounded) and settle the usage row (and the reservation). Shielded:
    a cancelled caller must not cancel the ledger write — and the call counts as live (for a
    graceful shutdown to wait on) until the write is done, even if its caller was cancelled
    again meanwhile. The error, if any, learns its row and the partial text."""

    async def settle():
        counted = await _count(request, call, status)
        return await connections.hop(_finish)(
            call=call, error=error, request=request, status=status, counted=counted, **fields
        )

    settling = asyncio.ensure_future(settle())
    if live is not None:
        settling.add_done_callback(lambda _: live.done())
    record = await asyncio.shield(settling)
    if error is not None:
        error.usage_id = record.pk
        error.partial_text = call.text
        error.partial_reasoning = call.reasoning
    if call.chars > memory.LARGE:  # what the allocator kept of a huge reply goes back
        await asyncio.to_thread(memory.release_freed_memory)
    return record


async def call_checkpoints(
    pk: int, call: Call, input_estimate: int, hook: Callable[[], Callable | None] | None
) -> None:
    """About once a second: the row's tokens so far and heartbeat, plus the caller's own
    checkpoint (chat's partial text) in the same hop."""
    save = connections.hop(_checkpoint)
    while True:
        await asyncio.sleep(CHECKPOINT_INTERVAL)
        try:
            await save(pk, call.progress(input_estimate), hook() if hook is not None else None)
        except Exception:
            logger.exception("Checkpoint of usage row %s failed", pk)
