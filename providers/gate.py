"""The gate: the only way any feature calls a model (DESIGN §3).

`completion_stream` and `embedding_create`:
1. resolve the credential the caller may `use`, and its adapter from the preset;
2. reserve budget and clamp `max_tokens` (billing.budgets);
3. stream provider-neutral events, retrying 429/5xx/connect errors only before the first token;
4. write exactly one usage row per call — success, error, stop or disconnect — and settle the
   reservation, in `finally`;
5. measure time to first token, tokens/s and our own overhead.

ORM work happens in two hops per call (prepare, finish), never per token; each hands its database
connection back to the pool (`workbench.connections.hop`), so no provider wait holds one. The
prepare hop also takes the call's slot under the user's concurrency cap (providers.concurrency),
the finish hop frees it.
Callers must iterate with `contextlib.aclosing(...)` so a stop closes the stream at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings

from accounts import access
from accounts.access import Action
from billing import budgets, pricing
from billing.models import CallStatus
from billing.services import usage_record
from providers import concurrency, tokens
from providers.adapters import adapter_for
from providers.adapters.base import (
    AdapterConfig,
    CompletionRequest,
    EmbeddingResult,
    Finished,
    ProviderError,
    StopReason,
    TextDelta,
    Timeouts,
    Usage,
)
from providers.keys import KeyUnreadable, readable_key
from providers.models import ProviderCredential
from providers.validation import validate_request
from workbench import connections

logger = logging.getLogger(__name__)

RETRYABLE = {"rate_limited", "unreachable", "provider_error"}
MAX_RETRY_AFTER = 30.0  # seconds; a longer Retry-After fails now and says when to retry


def default_timeouts() -> Timeouts:
    return Timeouts(**getattr(settings, "WORKBENCH_PROVIDER_TIMEOUTS", {}))


def max_attempts() -> int:
    return int(getattr(settings, "WORKBENCH_PROVIDER_MAX_ATTEMPTS", 3))


@dataclass
class _Prepared:
    credential: ProviderCredential | None
    config: AdapterConfig | None
    team_id: int | None
    reservation: budgets.Reservation | None
    request: CompletionRequest | None
    error: ProviderError | None = None
    slot: concurrency.Slot | None = None  # this call's place under the user's concurrency cap


@dataclass
class _Call:
    """What the gate measures about one call."""

    started: float = field(default_factory=time.perf_counter)
    adapter_started: float | None = None
    first_token_at: float | None = None
    parts: list[str] = field(default_factory=list)
    usage: Usage | None = None
    reason: str = "stop"
    attempts: int = 0

    @property
    def text(self) -> str:
        return "".join(self.parts)


# --- Synchronous ends (one hop each) -------------------------------------------------------------


def _billed_team(user, credential: ProviderCredential, team) -> int | None:
    """Whose spend the call is: a team credential's calls are its team's; a personal
    credential's are the caller's own, unless the caller chose a team to bill (`team`) and may
    `use` it (403 otherwise). Never the session's current team by default."""
    if credential.owner_team_id is not None:
        return credential.owner_team_id
    if team is None:
        return None
    access.require(user, team, Action.USE)
    return team.pk


def _prepare(
    user, credential_id, request: CompletionRequest, team, timeouts: Timeouts, egress
) -> _Prepared:
    credential = access.get_for(user, ProviderCredential.objects.all(), credential_id, Action.USE)
    team_id = _billed_team(user, credential, team)
    prepared = _Prepared(credential, None, team_id, None, None)
    try:
        if not credential.is_active:
            raise ProviderError("inactive", f"“{credential.name}” is deactivated.")
        prepared.request = validate_request(request)
        try:
            key = readable_key(credential)
        except KeyUnreadable as exc:
            raise ProviderError("key_unreadable", str(exc)) from None
        try:
            prepared.slot = concurrency.call_slot_acquire(user_id=user.pk)
        except concurrency.TooManyCalls as exc:
            raise ProviderError("too_many_calls", str(exc)) from None
        prepared.config = AdapterConfig(
            preset=credential.preset_row,
            base_url=credential.effective_base_url,
            api_key=key,
            organization=credential.organization,
            timeouts=timeouts,
            egress_allow=egress.get("allow"),
            resolver=egress.get("resolver"),
        )
        try:
            prepared.reservation = budgets.budget_reserve(
                user=user,
                team=team_id,
                credential_id=credential.pk,
                provider_id=credential.preset_row.price_provider or "",
                model=prepared.request.model,
                max_tokens=prepared.request.max_tokens,
            )
        except budgets.BudgetExceeded as exc:
            raise ProviderError("budget_exceeded", str(exc)) from None
    except ProviderError as exc:
        prepared.error = exc
    except BaseException:
        concurrency.call_slot_release(slot=prepared.slot)
        raise
    return prepared


def _finish(
    *,
    user,
    prepared: _Prepared,
    request: CompletionRequest,
    call: _Call,
    status: str,
    error: ProviderError | None,
    feature: str,
    context: dict,
    operation: str = "chat",
    embedding_tokens: int | None = None,
):
    concurrency.call_slot_release(slot=prepared.slot)
    credential = prepared.credential
    preset = credential.preset_row
    ended = time.perf_counter()
    # Tokens: the provider's count when it sent one; otherwise counted locally (estimated).
    # A call refused before anything reached the model costs nothing; a stopped or broken one
    # is charged for what was sent and received.
    if operation == "embedding":
        estimated = embedding_tokens is None
        input_tokens = (
            embedding_tokens
            if embedding_tokens is not None
            else sum(tokens.count_text(m.content) for m in request.messages)
        )
        output_tokens = 0
        if status != CallStatus.OK:
            input_tokens = 0
    elif call.usage is not None:
        input_tokens, output_tokens, estimated = (
            call.usage.input_tokens,
            call.usage.output_tokens,
            call.usage.estimated,
        )
    elif call.parts or (status == CallStatus.STOPPED and call.adapter_started is not None):
        input_tokens = tokens.count_messages(request.all_messages())
        output_tokens = tokens.count_text(call.text)
        estimated = True
    else:
        input_tokens = output_tokens = 0
        estimated = False
    local = credential.is_local
    cost = pricing.cost_for(
        provider_id=preset.price_provider,
        preset=preset.key,
        model=request.model,
        local=local,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        estimated=estimated,
    )
    if input_tokens == output_tokens == 0 and cost.amount is not None:
        cost = pricing.Cost(Decimal(0), cost.source, cost.snapshot)  # nothing reached the model
    ttft_ms = (call.first_token_at - call.started) * 1000 if call.first_token_at else None
    generating = ended - call.first_token_at if call.first_token_at else 0
    tps = output_tokens / generating if generating > 0 and output_tokens > 1 else None
    overhead_ms = ((call.adapter_started or ended) - call.started) * 1000
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
        attempts=max(call.attempts, 1),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        tokens_estimated=estimated,
        cost=cost.amount,
        cost_source=cost.source,
        price_snapshot=cost.snapshot,
        ttft_ms=ttft_ms,
        duration_ms=(ended - call.started) * 1000,
        overhead_ms=overhead_ms,
        tokens_per_second=tps,
        context=context,
    )
    if prepared.reservation is not None:
        budgets.budget_settle(prepared.reservation, cost=cost.amount)
    return record


async def _record(*, call: _Call, error: ProviderError | None, **fields):
    """Write the usage row (and settle the reservation). Shielded: a cancelled caller must not
    cancel the ledger write. The error, if any, learns its row and the partial text."""
    record = await asyncio.shield(
        asyncio.ensure_future(connections.hop(_finish)(call=call, error=error, **fields))
    )
    if error is not None:
        error.usage_id = record.pk
        error.partial_text = call.text
    return record


def _keep_slot(prepared: _Prepared) -> asyncio.Task | None:
    """Renew the call's slot while it runs (cancelled in the call's `finally`)."""
    if prepared.slot is None or prepared.error is not None:
        return None
    return asyncio.get_running_loop().create_task(concurrency.call_slot_keep(prepared.slot))


# --- The streaming call ----------------------------------------------------------------------------


def _backoff(attempt: int, error: ProviderError) -> float | None:
    """Seconds to wait before the next attempt, or None to give up now."""
    if error.retry_after is not None:
        return error.retry_after if error.retry_after <= MAX_RETRY_AFTER else None
    return min(8.0, 0.25 * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)  # noqa: S311 - jitter


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
) -> AsyncIterator[TextDelta | Finished]:
    """Stream a completion: TextDelta events, then one Finished (after the usage row is written).

    Raises Http404/PermissionDenied (access), or ProviderError with a stable code — after the
    usage row is written; `error.usage_id` and `error.partial_text` are set.
    `team`: the team to bill a personal credential's call to, when the caller chose one.
    `egress` is for tests: {"allow": [...], "resolver": fn}.
    """
    call = _Call()
    timeouts = timeouts or default_timeouts()
    prepared = await connections.hop(_prepare)(
        user, credential_id, request, team, timeouts, egress or {}
    )
    request = prepared.request or request
    status = None
    error: ProviderError | None = prepared.error
    adapter = None
    keeper = _keep_slot(prepared)
    try:
        if error is not None:
            status = CallStatus.ERROR
            raise error
        if prepared.reservation.max_tokens != request.max_tokens:
            from dataclasses import replace

            request = replace(request, max_tokens=prepared.reservation.max_tokens)
        adapter = adapter_for(prepared.config)
        attempts = max_attempts()
        while True:
            call.attempts += 1
            call.adapter_started = call.adapter_started or time.perf_counter()
            try:
                async for event in _guarded(adapter.stream(request), timeouts, call):
                    if type(event) is TextDelta:
                        if call.first_token_at is None:
                            call.first_token_at = time.perf_counter()
                        call.parts.append(event.text)
                        yield event
                    elif type(event) is Usage:
                        call.usage = event
                    elif type(event) is StopReason:
                        call.reason = event.reason
                break
            except ProviderError as exc:
                if (
                    call.first_token_at is None
                    and exc.retryable
                    and exc.code in RETRYABLE
                    and call.attempts < attempts
                ):
                    wait = _backoff(call.attempts, exc)
                    if wait is not None:
                        logger.info(
                            "Retrying %s after %s (%.2fs)",
                            prepared.credential.preset,
                            exc.code,
                            wait,
                        )
                        await asyncio.sleep(wait)
                        continue
                raise
        status = CallStatus.OK
    except ProviderError as exc:
        status, error = CallStatus.ERROR, exc
        raise
    except (GeneratorExit, asyncio.CancelledError):
        status = CallStatus.STOPPED
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
        if adapter is not None:
            await adapter.aclose()
        if prepared.credential is not None:
            record = await _record(
                user=user,
                prepared=prepared,
                request=request,
                call=call,
                status=status or CallStatus.STOPPED,
                error=error,
                feature=feature,
                context=context or {},
            )
    yield Finished(
        reason=call.reason,
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
    )


async def _guarded(events: AsyncIterator, timeouts: Timeouts, call: _Call) -> AsyncIterator:
    """Idle and total deadlines while waiting for the adapter — not while the caller handles an
    event (a slow websocket must not look like a stalled provider). A timer per event, no task."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeouts.total
    iterator = aiter(events)
    try:
        while True:
            try:
                async with asyncio.timeout_at(min(deadline, loop.time() + timeouts.read)):
                    event = await anext(iterator)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise ProviderError(
                    "timeout",
                    "The provider stopped sending the reply."
                    if call.first_token_at
                    else "The provider did not answer in time.",
                ) from None
            yield event
    finally:
        await events.aclose()


# --- Embeddings ------------------------------------------------------------------------------------


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

    call = _Call()
    timeouts = timeouts or default_timeouts()
    pseudo = CompletionRequest(
        model=model, messages=tuple(Message("user", text) for text in inputs)
    )
    prepared = await connections.hop(_prepare)(
        user, credential_id, pseudo, team, timeouts, egress or {}
    )
    status, error, result = CallStatus.ERROR, prepared.error, None
    adapter = None
    keeper = _keep_slot(prepared)
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
                    wait = _backoff(call.attempts, exc)
                    if wait is not None:
                        await asyncio.sleep(wait)
                        continue
                raise
            except TimeoutError:
                raise ProviderError("timeout") from None
        status = CallStatus.OK
    except ProviderError as exc:
        error = exc
        raise
    except asyncio.CancelledError:
        status = CallStatus.STOPPED
        raise
    finally:
        if keeper is not None:
            keeper.cancel()
        if adapter is not None:
            await adapter.aclose()
        if prepared.credential is not None:
            record = await _record(
                user=user,
                prepared=prepared,
                request=pseudo,
                call=call,
                status=status,
                error=error,
                feature=feature,
                context=context or {},
                operation="embedding",
                embedding_tokens=result.input_tokens if result else None,
            )
    return result, record.pk
