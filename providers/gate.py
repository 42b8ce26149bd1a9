"""The gate: the only way any feature calls a model (DESIGN §3).

`completion_stream` and `embedding_create`:
1. resolve the credential the caller may `use`, and its adapter from the preset;
2. reserve budget and clamp `max_tokens` (billing.budgets);
3. stream provider-neutral events, retrying 429/5xx/connect errors only before the first token;
   enforce `max_tokens` (counted cheaply as it goes) and the maximum reply size; a stream that
   ends without the provider saying it finished is `stream_interrupted`;
4. keep exactly one usage row per call, crash-proof: opened (`running`) before the provider is
   called, checkpointed about once a second, settled in `finally` — success, error, stop,
   disconnect and graceful shutdown alike; a process that dies leaves a row the ledger's sweep
   settles from its checkpoint (billing.services);
5. measure time to first token (without retry back-off), tokens/s and its own overhead.

ORM work happens in a few hops per call (prepare + open, a checkpoint a second, settle), never
per token; each hands its database connection back to the pool (`workbench.connections.hop`), so
no provider wait holds one. The prepare hop also takes the call's slot under the user's
concurrency cap (providers.concurrency), the settle hop frees it. Local token counting runs in
its own thread, bounded (tokens.py).
Callers must iterate with `contextlib.aclosing(...)` so a stop closes the stream at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace

from django.conf import settings
from django.db import transaction

from accounts import access
from accounts.access import Action
from billing import budgets
from billing.models import CallStatus, UsageRecord
from billing.pricing import Tokens
from billing.services import usage_checkpoint, usage_open, usage_record, usage_settle
from providers import admission, concurrency, tokens
from providers.adapters import adapter_for
from providers.adapters.base import (
    AdapterConfig,
    CompletionRequest,
    EmbeddingResult,
    Finished,
    ProviderError,
    ReasoningDelta,
    StopReason,
    TextDelta,
    Timeouts,
    ToolCallDelta,
    Usage,
)
from providers.keys import KeyUnreadable, readable_key
from providers.models import ProviderCredential
from providers.validation import validate_request
from workbench import connections, memory
from workbench import egress as egress_guard
from workbench.text import clean

logger = logging.getLogger(__name__)

RETRYABLE = {"rate_limited", "unreachable", "provider_error"}
MAX_RETRY_AFTER = 30.0  # seconds; a longer Retry-After fails now and says when to retry
CHECKPOINT_INTERVAL = 1.0  # seconds between checkpoints of a streaming call's usage row


def _over_max_tokens(counted: int, max_tokens: int) -> bool:
    """An upstream that ignores max_tokens is cut once it is clearly past it. The count is per
    delta (tokens.count_delta: up to ~8 % high when deltas split words), and a provider that
    honours max_tokens must not be cut before its own finish and usage arrive: hence 10 % + 2."""
    return counted > max_tokens * 1.1 + 2


def default_timeouts() -> Timeouts:
    return Timeouts(**getattr(settings, "WORKBENCH_PROVIDER_TIMEOUTS", {}))


def max_attempts() -> int:
    return int(getattr(settings, "WORKBENCH_PROVIDER_MAX_ATTEMPTS", 3))


def max_reply_chars() -> int:
    return int(getattr(settings, "WORKBENCH_MAX_REPLY_CHARS", 4_000_000))


@dataclass
class CallControl:
    """Handed in by callers that stop calls on purpose (chat's Stop button): set
    `stop_requested` before cancelling the task, and the row says `stopped`. Any other
    cancellation is the caller going away (`disconnected`), or the server stopping
    (`interrupted`)."""

    stop_requested: bool = False


@dataclass
class _Prepared:
    credential: ProviderCredential | None
    config: AdapterConfig | None
    team_id: int | None
    reservation: budgets.Reservation | None
    request: CompletionRequest | None
    error: ProviderError | None = None
    record: UsageRecord | None = None  # the opened row (None: refused before any provider call)
    input_estimate: int = 0
    slot: concurrency.Slot | None = None  # this call's place under the user's concurrency cap


@dataclass
class _Call:
    """What the gate measures about one call."""

    started: float = field(default_factory=time.perf_counter)
    adapter_started: float | None = None
    first_token_at: float | None = None  # text or reasoning
    first_text_at: float | None = None
    first_reasoning_at: float | None = None
    parts: list[str] = field(default_factory=list)
    reasoning_parts: list[str] = field(default_factory=list)
    tool_parts: list[str] = field(default_factory=list)  # tool calls' names and arguments
    chars: int = 0  # text + reasoning characters
    counted: int = 0  # output tokens counted per delta (only when max_tokens is set)
    reported: dict[str, int] = field(default_factory=dict)  # provider-reported Usage fields
    reason: str | None = None  # the provider's finish reason; None = it never said
    reached: bool = False  # the provider answered this call with something
    counted_locally: bool = False  # a "reported" number was in fact counted here
    attempts: int = 0
    retry_wait: float = 0.0  # seconds slept in retry back-off
    # Estimated output tokens of parts checkpointed so far (the estimate is incremental).
    _estimated: list[int] = field(
        default_factory=lambda: [0, 0, 0, 0]
    )  # text n, tokens, reasoning n, tokens

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def add(self, delta: TextDelta | ReasoningDelta, now: float) -> None:
        if self.first_token_at is None:
            self.first_token_at = now
        if type(delta) is TextDelta:
            self.first_text_at = self.first_text_at or now
            self.parts.append(delta.text)
        else:
            self.first_reasoning_at = self.first_reasoning_at or now
            self.reasoning_parts.append(delta.text)
        self.chars += len(delta.text)

    @property
    def reasoning(self) -> str:
        return "".join(self.reasoning_parts)

    def progress(self, input_estimate: int) -> Tokens:
        """Tokens so far for a checkpoint: provider-reported where reported, else estimated
        from the text (incrementally: only parts new since the last checkpoint are looked at)."""
        done = self._estimated
        if len(self.parts) > done[0]:
            done[1] += tokens.estimate_text("".join(self.parts[done[0] :]))
            done[0] = len(self.parts)
        if len(self.reasoning_parts) > done[2]:
            done[3] += tokens.estimate_text("".join(self.reasoning_parts[done[2] :]))
            done[2] = len(self.reasoning_parts)
        reported = self.reported
        reasoning = reported.get("reasoning_tokens", done[3])
        return Tokens(
            input=reported.get("input_tokens", input_estimate),
            output=reported.get("output_tokens", done[1] + done[3]),
            cache_read=reported.get("cache_read_tokens", 0),
            cache_write=reported.get("cache_write_tokens", 0),
            reasoning=reasoning,
            estimated=not {"input_tokens", "output_tokens"} <= reported.keys(),
        )


@dataclass
class _Live:
    call: _Call
    task: asyncio.Task | None
    pk: int
    settled: asyncio.Event = field(default_factory=asyncio.Event)

    def done(self) -> None:
        _LIVE.pop(self.pk, None)
        self.settled.set()


# Calls this process is running, by usage row id (the sweep leaves them alone; a graceful
# shutdown settles them). Shutting down: cancellations are the server's, not the caller's.
_LIVE: dict[int, _Live] = {}
_shutting_down = False


def live_ids() -> frozenset[int]:
    return frozenset(_LIVE)


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
    user,
    credential_id,
    request: CompletionRequest,
    team,
    timeouts: Timeouts,
    egress,
    feature: str = "api",
    context: dict | None = None,
    operation: str = "chat",
) -> _Prepared:
    if callable(credential_id):
        # The caller names the model another way (the gateway's `<slug>/<model>`): resolved
        # here, in this hop, through the access rules — one hop and no refetch before the call.
        credential, model = credential_id()
        access.require(user, credential, Action.USE)
        request = replace(request, model=model)
    elif isinstance(credential_id, ProviderCredential):
        # Read and checked by the caller as its request started (a chat reply's plan, moments
        # ago): the rules again on that object, the role read anew — no refetch.
        credential = credential_id
        access.require_now(user, credential, Action.USE)
    else:
        credential = access.get_for(
            user, ProviderCredential.objects.all(), credential_id, Action.USE
        )
    team_id = _billed_team(user, credential, team)
    prepared = _Prepared(credential, None, team_id, None, request)
    try:
        if not credential.is_active:
            raise ProviderError("inactive", f"“{credential.name}” is deactivated.")
        prepared.request = validate_request(request)
        try:
            key = readable_key(credential)
        except KeyUnreadable as exc:
            raise ProviderError("key_unreadable", str(exc)) from None
        prepared.config = AdapterConfig(
            preset=credential.preset_row,
            base_url=credential.effective_base_url,
            api_key=key,
            organization=credential.organization,
            timeouts=timeouts,
            # The instance allowlist read now (one cached lookup), so an entry a superuser just
            # added applies to the next call.
            egress_allow=egress["allow"]
            if "allow" in egress
            else egress_guard.instance_allowlist(),
            resolver=egress.get("resolver"),
        )
        # Instant (no tokenizer): for the reservation and what a crash leaves on the row.
        prepared.input_estimate = tokens.estimate_messages(prepared.request.all_messages())
        preset = credential.preset_row
        usage = dict(
            local=credential.is_local,
            input_estimate=prepared.input_estimate,
            user=user,
            team_id=team_id,
            credential=credential,
            credential_name=credential.name,
            preset=preset.key,
            provider_id=preset.price_provider or "",
            model=prepared.request.model,
            operation=operation,
            feature=feature,
            context=context or {},
        )
        # The slot, the budgets and the opened row in one statement (providers.admission):
        # without a matching budget that is all before the provider is called.
        try:
            admitted = admission.call_admit(
                user_id=user.pk,
                team_id=team_id,
                credential_id=credential.pk,
                preset=credential.preset,
                model=prepared.request.model,
                local=credential.is_local,
                usage=usage,
            )
        except concurrency.TooManyCalls as exc:
            raise ProviderError("too_many_calls", str(exc)) from None
        prepared.slot, prepared.record = admitted.slot, admitted.record
        if not admitted.budgeted:
            prepared.reservation = budgets.Reservation(max_tokens=prepared.request.max_tokens)
        else:
            # The reservation and the opened row: one transaction (a refusal rolls both back;
            # the slot taken above is freed below).
            try:
                with transaction.atomic():
                    prepared.reservation = budgets.budget_reserve(
                        user=user,
                        team=team_id,
                        credential_id=credential.pk,
                        provider_id=preset.price_provider or "",
                        model=prepared.request.model,
                        max_tokens=prepared.request.max_tokens,
                        input_tokens=prepared.input_estimate,
                        preset=credential.preset,
                        local=credential.is_local,
                    )
                    prepared.record = usage_open(**usage)
            except budgets.BudgetExceeded as exc:
                concurrency.call_slot_release(slot=prepared.slot)
                refusal = ProviderError("budget_exceeded", exc.message)
                refusal.budget = exc.details  # the REST body names the budget
                refusal.budget_alert = exc.deliver_alert  # after the rollback, below
                raise refusal from None
            except BaseException:
                with contextlib.suppress(Exception):
                    concurrency.call_slot_release(slot=prepared.slot)
                raise
    except ProviderError as exc:
        prepared.error, prepared.slot, prepared.record = exc, None, None  # rolled back
        if alert := getattr(exc, "budget_alert", None):
            alert()  # its own transaction, now that the refused one is rolled back
        return prepared
    except BaseException:
        prepared.slot = prepared.record = None  # rolled back with the transaction
        raise
    return prepared


def _checkpoint(pk: int, progress: Tokens, extra: Callable[[], object] | None) -> None:
    usage_checkpoint(pk=pk, tokens=progress)
    if extra is not None:
        extra()


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


async def _count(request: CompletionRequest, call: _Call, status: str) -> Tokens:
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


async def _record(
    *, call: _Call, error: ProviderError | None, request, status, live=None, **fields
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


def _cancelled_status(exc: BaseException, control: CallControl | None) -> str:
    if _shutting_down:
        return CallStatus.INTERRUPTED
    if isinstance(exc, GeneratorExit) or (control is not None and control.stop_requested):
        return CallStatus.STOPPED  # the caller stopped iterating, or pressed Stop
    return CallStatus.DISCONNECTED  # the task was cancelled from outside: the caller went away


async def _checkpointer(
    pk: int, call: _Call, input_estimate: int, hook: Callable[[], Callable | None] | None
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
    call = _Call()
    timeouts = timeouts or default_timeouts()
    prepared = await connections.hop(_prepare)(
        user, credential_id, request, team, timeouts, egress or {}, feature, context or {}
    )
    request = prepared.request or request
    status = None
    error: ProviderError | None = prepared.error
    adapter = checkpointer = live = None
    keeper = _keep_slot(prepared)
    try:
        if error is not None:
            status = CallStatus.ERROR
            raise error
        live = _LIVE[prepared.record.pk] = _Live(call, asyncio.current_task(), prepared.record.pk)
        checkpointer = asyncio.create_task(
            _checkpointer(prepared.record.pk, call, prepared.input_estimate, checkpoint)
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
                    _guarded(adapter.stream(request), timeouts, call)
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
                    wait = _backoff(call.attempts, exc)
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
        status = _cancelled_status(exc, control)
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
            record = await _record(
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


def _timeout_message(timeouts: Timeouts, call: _Call, *, total: bool) -> str:
    if total:
        return f"The reply took longer than the {timeouts.total:g} s Workbench allows for a whole call."
    if call.first_token_at:
        return f"The provider stopped sending the reply (nothing for {timeouts.read:g} s)."
    return "The provider did not answer in time."


async def _guarded(events: AsyncIterator, timeouts: Timeouts, call: _Call) -> AsyncIterator:
    """Idle and total deadlines while waiting for the adapter — not while the caller handles an
    event (a slow websocket must not look like a stalled provider). Every event counts as
    activity: reasoning deltas keep a thinking model's call alive.

    One watchdog timer, re-armed only when it fires (about once per idle timeout), rather than a
    timeout context per event: entering `asyncio.timeout_at` for every chunk was ~7 % of a
    streaming server's CPU (py-spy, docs/performance.md). When it fires while the call waits on
    the adapter past its deadline, it cancels the waiting task; the cancellation becomes the
    `timeout` error here (an outside cancellation stays a cancellation, as asyncio.timeout does)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeouts.total
    iterator = aiter(events)
    waiting: asyncio.Task | None = None  # the task waiting on the adapter, while it waits
    wait_started = 0.0
    expired = False
    handle: asyncio.TimerHandle | None = None

    def watchdog() -> None:
        nonlocal handle, expired
        now = loop.time()
        if waiting is not None:
            due = min(wait_started + timeouts.read, deadline)
            if now >= due:
                expired, handle = True, None
                waiting.cancel()
                return
        else:  # the caller is handling an event: look again later (a wait checks the deadline)
            due = min(now + timeouts.read, deadline) if deadline > now else now + timeouts.read
        handle = loop.call_at(due, watchdog)

    handle = loop.call_at(min(loop.time() + timeouts.read, deadline), watchdog)
    try:
        while True:
            wait_started = loop.time()
            waiting = asyncio.current_task()
            if wait_started >= deadline:  # the whole call's time ran out while the caller worked
                raise ProviderError("timeout", _timeout_message(timeouts, call, total=True))
            try:
                event = await anext(iterator)
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                if not expired or waiting.uncancel() > 0:
                    raise
                message = _timeout_message(timeouts, call, total=loop.time() >= deadline)
                raise ProviderError("timeout", message) from None
            finally:
                waiting = None
            yield event
    finally:
        if handle is not None:
            handle.cancel()
        await events.aclose()


# --- Graceful shutdown -----------------------------------------------------------------------------


def shutting_down() -> None:
    """The server is stopping: from now on a cancelled call is `interrupted` (the server's
    doing), not `stopped` or `disconnected`."""
    global _shutting_down
    _shutting_down = True


async def shutdown(*, deadline: float = 8.0) -> int:
    """The server is stopping: cancel the calls still running in this process and wait (up to
    `deadline` seconds) until each has settled its usage row as `interrupted` with everything
    received so far. Returns how many calls were cut."""
    shutting_down()
    live = list(_LIVE.values())
    for entry in live:
        # A task the server is cancelling already (Daphne cancels its requests) is left to
        # that: a second cancel would only cut its own clean-up short.
        if entry.task is not None and not entry.task.done() and not entry.task.cancelling():
            entry.task.cancel()
    if live:
        await asyncio.wait(
            [asyncio.ensure_future(entry.settled.wait()) for entry in live], timeout=deadline
        )
    return len(live)


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
        user, credential_id, pseudo, team, timeouts, egress or {}, feature, context, "embedding"
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
        status = _cancelled_status(exc, None)
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
            )
    return result, record.pk
