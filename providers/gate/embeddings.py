"""`embedding_create`: one embedding call through the gate, under the same rules as completions
(access, admission, retries before any answer, one usage row settled in `finally`)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from billing.models import CallStatus
from providers import tokens
from providers.adapters import adapter_for
from providers.adapters.base import CompletionRequest, EmbeddingResult, ProviderError, Timeouts
from providers.gate.calls import Call, default_timeouts, max_attempts
from providers.gate.lifecycle import cancelled_status
from providers.gate.preparation import call_prepare, slot_keep
from providers.gate.retries import RETRYABLE, backoff
from providers.gate.settlement import call_settle
from workbench import connections


async def embedding_create(
    *,
    user,
    credential_id,
    model: str,
    inputs: list[str],
    feature: str = "api",
    context: dict | None = None,
    team=None,
    timeouts: Timeouts | None = None,
    egress: dict | None = None,
) -> tuple[EmbeddingResult, int]:
    """Embed `inputs`; returns the vectors and the usage row id. Same rules as completions."""
    from providers.adapters.base import Message

    call = Call()
    timeouts = timeouts or default_timeouts()
    pseudo = CompletionRequest(
        model=model, messages=tuple(Message("user", text) for text in inputs)
    )
    prepared = await connections.hop(call_prepare)(
        user, credential_id, pseudo, team, timeouts, egress or {}, feature, context, "embedding"
    )
    status, error, result = CallStatus.ERROR, prepared.error, None
    adapter = None
    keeper = slot_keep(prepared)
    try:
        if error is not None:
            raise error
        if not inputs or any(not isinstance(text, str) for text in inputs):
            raise ProviderError("bad_request", "Give at least one text to embed.")
        adapter = adapter_for(prepared.config)
        if not adapter.supports_embeddings:
            raise ProviderError(
                "bad_request", f"{prepared.config.preset.label} does not offer embeddings."
            )
        attempts = max_attempts()
        while True:
            call.attempts += 1
            call.adapter_started = call.adapter_started or time.perf_counter()
            try:
                async with asyncio.timeout(timeouts.total):
                    result = await adapter.embed(model, list(inputs))
                break
            except ProviderError as exc:
                if exc.retryable and exc.code in RETRYABLE and call.attempts < attempts:
                    wait = backoff(call.attempts, exc)
                    if wait is not None:
                        await asyncio.sleep(wait)
                        call.retry_wait += wait
                        continue
                raise
            except TimeoutError:
                raise ProviderError("timeout") from None
        status = CallStatus.OK
        call.reached = True
        call.reason = "stop"
        input_tokens = result.input_tokens
        if input_tokens is None:  # counted locally, off the loop; no per-message framing
            input_tokens = sum(await tokens.acount_texts(list(inputs)))
            call.counted_locally = True
            result = replace(result, input_tokens=input_tokens)
        call.reported = {"input_tokens": input_tokens, "output_tokens": 0}
    except ProviderError as exc:
        error = exc
        raise
    except asyncio.CancelledError as exc:
        status = cancelled_status(exc, None)
        raise
    finally:
        if keeper is not None:
            keeper.cancel()
        if adapter is not None:
            await adapter.aclose()
        if prepared.credential is not None:
            record = await call_settle(
                user=user,
                prepared=prepared,
                request=pseudo,
                call=call,
                status=status,
                error=error,
                feature=feature,
                context=context or {},
                operation="embedding",
            )
    return result, record.pk
