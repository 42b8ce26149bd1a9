"""Replies as asyncio tasks owned by the process that started them (DESIGN §3, "Streaming").

- A reply runs in its own task: Stop and disconnects are handled at once, and it finishes even
  if every browser goes away.
- Chat messages are one kind of streamed reply (`CHAT`); other features (the playground's
  answers) bring their own `Kind` — their hub, registry and persistence — and share the runner.
- Tokens go straight to this process's sockets (the hub), coalesced into a frame every ~40 ms;
  only a multi-process channel layer (Redis) also gets the frames, for watchers elsewhere.
- The partial text is checkpointed about once a second (one UPDATE, also the heartbeat), in
  the same database hop as the gate's checkpoint of the call's usage row.
- Reasoning (a thinking model's deltas) streams as `reasoning` frames and is saved apart.
- Progressive kinds (chat) also send the reply's Markdown rendered so far with a frame's text
  (chats.progressive: finished blocks once, the growing last block each time), rendered off the
  event loop and never more often than its cost allows; the final frame's HTML is authoritative.
- Every reply ends `complete`, `stopped`, `interrupted` (partial text kept) or `error`; a
  graceful server stop (`shutdown`) saves every live reply with all its text as `interrupted`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404

from chats import grounding, replies, services
from chats.models import MessageStatus
from chats.progressive import ProgressiveRender
from chats.rendering import render_markdown
from providers.adapters.base import Finished, ProviderError, ReasoningDelta, TextDelta
from providers.gate import CallControl
from workbench import connections, memory

logger = logging.getLogger(__name__)

PROCESS_ID = uuid.uuid4().hex
# Seconds between frames of deltas (0: a frame per token, for the benchmark's comparison).
FRAME_INTERVAL = getattr(settings, "WORKBENCH_STREAM_FRAME_MS", 40) / 1000
CHECKPOINT_INTERVAL = 1.0  # seconds: partial text + heartbeat (the gate's checkpoint interval)
# Errors after some text arrived: the text is kept and the reply can be continued.
BROKEN_STREAM = {"stream_interrupted", "timeout", "provider_error", "reply_too_large"}
SERVER_STOPPED = "The server stopped while this reply was being written."

Subscriber = Callable[[dict], Awaitable[None]]


class Hub:
    """Process-local fan-out of frames to the sockets (and SSE responses) watching a topic (a
    conversation, for chat). No channel-layer hop for local watchers. Watchers on other
    processes are the group `<prefix>-<topic>` and get `<prefix>.frame` messages."""

    def __init__(self, prefix: str = "chat"):
        self.prefix = prefix
        self._subscribers: dict[int, set[Subscriber]] = defaultdict(set)

    def group(self, topic) -> str:
        return f"{self.prefix}-{topic}"

    def subscribe(self, conversation_id: int, subscriber: Subscriber) -> None:
        self._subscribers[conversation_id].add(subscriber)

    def unsubscribe(self, conversation_id: int, subscriber: Subscriber) -> None:
        subscribers = self._subscribers.get(conversation_id)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self._subscribers[conversation_id]

    async def publish(self, conversation_id: int, frame: dict, *, remote: bool = True) -> None:
        for subscriber in list(self._subscribers.get(conversation_id, ())):
            try:
                await subscriber(frame)
            except Exception:  # a watcher that went away must not break the reply
                logger.debug("Dropping a frame for a closed watcher", exc_info=True)
        if remote and _layer_reaches_other_processes():
            layer = get_channel_layer()
            await layer.group_send(
                self.group(conversation_id),
                {"type": f"{self.prefix}.frame", "frame": frame, "origin": PROCESS_ID},
            )


def group_name(conversation_id: int) -> str:
    return hub.group(conversation_id)


def _layer_reaches_other_processes() -> bool:
    layer = get_channel_layer()
    return layer is not None and type(layer).__name__ != "InMemoryChannelLayer"


hub = Hub("chat")


@dataclass
class Reply:
    plan: services.ReplyPlan
    parts: list[str] = field(default_factory=list)
    length: int = 0  # characters in `parts` (the prefix excluded)
    flushed: int = 0  # characters already sent to watchers
    reasoning_parts: list[str] = field(default_factory=list)
    reasoning_flushed: int = 0
    first_reasoning_at: float | None = None
    first_text_at: float | None = None
    task: asyncio.Task | None = None
    control: CallControl = field(default_factory=CallControl)
    shutting_down: bool = False
    html: str | None = None  # the final text rendered (by _save, off the database thread)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    dirty: asyncio.Event = field(default_factory=asyncio.Event)
    # Set once watchers have the message's element (the `started` frame): deltas wait for it.
    announced: asyncio.Event = field(default_factory=asyncio.Event)
    status: str = MessageStatus.STREAMING
    final_frame: dict | None = None
    error: ProviderError | None = None
    started: float = field(default_factory=time.monotonic)
    kind: Kind | None = None  # None: a chat message (CHAT)
    # Progressive rendering: the renderer (used off the loop only), the latest payload as a
    # whole (for watchers connecting mid-reply), and when the next rendering may run.
    renderer: ProgressiveRender = field(default_factory=ProgressiveRender)
    rendered: dict | None = None
    render_due: float = 0.0
    render_behind: bool = False
    whole_sent_at: float = field(default_factory=time.monotonic)

    def __post_init__(self):
        self.kind = _kind(self.kind)

    @property
    def message_id(self) -> int:
        return self.plan.message_id

    @property
    def conversation_id(self) -> int:
        return self.plan.conversation_id

    @property
    def stop_requested(self) -> bool:
        return self.control.stop_requested

    @property
    def text(self) -> str:
        return self.plan.prefix + "".join(self.parts)

    @property
    def reasoning(self) -> str:
        return _reasoning_prefix(self.plan) + "".join(self.reasoning_parts)

    @property
    def reasoning_ms(self) -> float | None:
        if self.first_reasoning_at is None:
            return None
        until = self.first_text_at if self.first_text_at is not None else time.monotonic()
        return max(0.0, (until - self.first_reasoning_at) * 1000)

    def stop(self) -> None:
        """Stop at once: the provider stream is closed, the partial text saved as `stopped`."""
        if self.task is not None and not self.task.done():
            self.control.stop_requested = True
            self.task.cancel()

    def checkpoint(self):
        """For the gate's checkpoint hop (built here, on the loop): the kind saves the partial
        text (and the reasoning, when there is some)."""
        extra = {"reasoning": self.reasoning} if self.reasoning_parts else {}
        return functools.partial(
            self.kind.checkpoint, message_id=self.message_id, text=self.text, **extra
        )

    def snapshot(self) -> dict:
        """For a watcher (re)connecting mid-reply: the text so far, then the live tail."""
        frame = {
            "type": "snapshot",
            "id": self.message_id,
            "text": self.text,
            "offset": len(self.plan.prefix) + self.length,
        }
        if self.rendered is not None:
            frame["html"] = self.rendered
        if self.reasoning_parts or _reasoning_prefix(self.plan):
            frame["reasoning"] = self.reasoning
        return frame


def _reasoning_prefix(plan) -> str:
    return getattr(plan, "reasoning_prefix", "")  # plans of other kinds may have none


# Chat replies this process is running, by message id.
RUNNING: dict[int, Reply] = {}
# Every reply this process is running, whatever its kind (a graceful shutdown saves them all).
_LIVE: dict[int, Reply] = {}  # by id(reply)


@dataclass(frozen=True)
class Kind:
    """What differs between kinds of streamed replies: where their frames go, where they are
    registered, how their text is saved. A plan is anything with the attributes of
    `services.ReplyPlan` the runner reads: `message_id` (the streamed item: `id` in frames),
    `conversation_id` (the hub topic its watchers follow), `user`/`user_id`, `credential_id`,
    `request`, `prefix`, `prior_cost`, `prior_tokens`."""

    hub: Hub
    running: dict[int, Reply]  # what this process runs, by item id
    feature: str  # the usage row's feature
    context: Callable[[Any], dict]  # plan → the usage row's context
    checkpoint: Callable[..., None]  # sync (message_id=, text=): partial text + heartbeat
    save: Callable[..., dict]  # sync (reply, finished, render) → the final frame
    progressive: bool = False  # delta frames also carry the Markdown rendered so far (`html`)
    # Sync (message_id=, retrieval=): stores what a grounded reply retrieved (chats.grounding);
    # None: this kind's plans carry their context already.
    retrieval_save: Callable[..., None] | None = None


def _kind(kind: Kind | None) -> Kind:
    return kind if kind is not None else CHAT


def running_ids(kind: Kind | None = None) -> frozenset[int]:
    return frozenset(_kind(kind).running)


def start(
    plan: services.ReplyPlan,
    *,
    render: Callable[[int], dict] | None = None,
    kind: Kind | None = None,
) -> Reply:
    """Start a reply on the running event loop. `render(message_id)` (sync, ORM allowed) returns
    the final frame's extra fields (server-rendered HTML) after the reply is saved."""
    reply = Reply(plan, kind=kind)
    kind = reply.kind
    kind.running[plan.message_id] = reply
    _LIVE[id(reply)] = reply
    reply.task = asyncio.get_running_loop().create_task(
        _run(reply, render), name=f"{kind.hub.prefix}-reply-{plan.message_id}"
    )
    return reply


# Rendering may take at most about a quarter of the reply's wall time, and its HTML at most
# about this many bytes a second per watcher (a long code block is re-sent while it grows).
RENDER_COST_SHARE = 3.0
RENDER_BYTES_PER_SECOND = 250_000
# How often a rendering is sent whole (`from` 0) instead of as a change: a watcher that joined
# from another process's checkpoint, or missed a frame, is whole again within this time.
RENDER_WHOLE_EVERY = 2.0


async def _render(reply: Reply, text: str) -> dict:
    """The Markdown rendered so far, computed in a worker thread (never on the event loop)."""
    started = time.monotonic()
    payload, whole = await asyncio.to_thread(_render_sync, reply.renderer, text)
    now = time.monotonic()
    cost = now - started
    reply.rendered = whole
    if now - reply.whole_sent_at >= RENDER_WHOLE_EVERY:
        payload, reply.whole_sent_at = whole, now
    reply.render_due = now + max(
        FRAME_INTERVAL,
        RENDER_COST_SHARE * cost,
        len(payload["tail"]) / RENDER_BYTES_PER_SECOND,
    )
    return payload


def _render_sync(renderer: ProgressiveRender, text: str) -> tuple[dict, dict]:
    payload = renderer.update(text)
    return payload, renderer.state()


async def _flush(reply: Reply, *, last: bool = False) -> None:
    """Send what arrived since the last frame (one frame, however many tokens), with its
    rendering when the kind is progressive and rendering is due (always for the `last` one).
    Reasoning (a thinking model's deltas) goes first, as its own `reasoning` frame."""
    reasoning = "".join(reply.reasoning_parts)
    if len(reasoning) > reply.reasoning_flushed:
        delta = reasoning[reply.reasoning_flushed :]
        offset = len(_reasoning_prefix(reply.plan)) + reply.reasoning_flushed
        reply.reasoning_flushed = len(reasoning)
        await reply.kind.hub.publish(
            reply.conversation_id,
            {"type": "reasoning", "id": reply.message_id, "offset": offset, "text": delta},
        )
    text = "".join(reply.parts)
    offset = len(reply.plan.prefix) + reply.flushed
    frame = None
    first = reply.flushed == 0 and not reply.plan.prefix
    if len(text) > reply.flushed:
        frame = {
            "type": "delta",
            "id": reply.message_id,
            "offset": offset,
            "text": text[reply.flushed :],
        }
        reply.flushed = len(text)
        reply.render_behind = reply.kind.progressive
        if first and not last:
            # The first token goes out at once; its rendering follows with the next frame (a
            # worker-thread hop and a Markdown pass are not worth delaying the first token).
            await reply.kind.hub.publish(reply.conversation_id, frame)
            return
    if reply.render_behind and (last or time.monotonic() >= reply.render_due):
        html = await _render(reply, reply.plan.prefix + text)
        reply.render_behind = False
        frame = frame or {
            "type": "delta",
            "id": reply.message_id,
            "offset": len(reply.plan.prefix) + reply.flushed,
            "text": "",
        }
        frame["html"] = html
    if frame is not None:
        await reply.kind.hub.publish(reply.conversation_id, frame)


async def begin(
    plan: services.ReplyPlan, *, started: dict, render=None, kind: Kind | None = None
) -> Reply:
    """Announce a reply (the `started` frame, so watchers have its element before any delta
    arrives) and start it."""
    await _kind(kind).hub.publish(plan.conversation_id, started)
    reply = start(plan, render=render, kind=kind)
    reply.announced.set()
    return reply


async def _flusher(reply: Reply) -> None:
    last = 0.0
    await reply.announced.wait()
    while not reply.done.is_set():
        if reply.render_behind:  # text went out unrendered: render it when due, tokens or not
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    reply.dirty.wait(), max(0.0, reply.render_due - time.monotonic())
                )
        else:
            await reply.dirty.wait()
        reply.dirty.clear()
        wait = last + FRAME_INTERVAL - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)  # coalesce what arrives meanwhile into this frame
        await _flush(reply)
        last = time.monotonic()


async def _control(reply: Reply) -> None:
    """With a multi-process channel layer: listen for a Stop sent from another process."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    group = reply.kind.hub.group(f"reply-{reply.message_id}")
    await layer.group_add(group, channel)
    try:
        while not reply.done.is_set():
            message = await layer.receive(channel)
            if message.get("type") == "reply.stop":
                reply.stop()
    finally:
        await layer.group_discard(group, channel)


async def _run(reply: Reply, render) -> None:
    from providers.services import completion_stream

    plan, kind = reply.plan, reply.kind
    finished: Finished | None = None
    flusher = asyncio.create_task(_flusher(reply))
    control = asyncio.create_task(_control(reply)) if _layer_reaches_other_processes() else None
    try:
        user = plan.user
        if user is None:
            from accounts.models import User

            user = await connections.hop(User.objects.get)(pk=plan.user_id)
        request = plan.request
        collection_ids = getattr(plan, "grounding", ())
        if collection_ids and kind.retrieval_save is not None:
            request, record = await grounding.ground(
                user=user,
                collection_ids=collection_ids,
                request=request,
                feature=kind.feature,
                awaiting=getattr(plan, "awaiting", ()),
            )
            await connections.hop(kind.retrieval_save)(message_id=plan.message_id, retrieval=record)
        shared = getattr(plan, "shared_context", None)
        if shared is not None:
            # Retrieved once for several replies (a playground run): each gets the same text.
            request = grounding.with_context(request, await asyncio.shield(shared))
        # The plan's credential, read and checked as the reply started (the gate checks access
        # on it again): no refetch — unless retrieval came first, which may take a while.
        credential = getattr(plan, "credential", None)
        if credential is None or collection_ids or shared is not None:
            credential = plan.credential_id
        events = completion_stream(
            user=user,
            credential_id=credential,
            request=request,
            feature=kind.feature,
            context=kind.context(plan),
            control=reply.control,
            # Also while nothing new arrives: the UPDATE is the heartbeat that says we're alive.
            checkpoint=reply.checkpoint,
        )
        async with aclosing(events):
            async for event in events:
                event_type = type(event)
                if event_type is TextDelta:
                    if reply.first_text_at is None:
                        reply.first_text_at = time.monotonic()
                    reply.parts.append(event.text)
                    reply.length += len(event.text)
                    reply.dirty.set()
                elif event_type is ReasoningDelta:
                    if reply.first_reasoning_at is None:
                        reply.first_reasoning_at = time.monotonic()
                    reply.reasoning_parts.append(event.text)
                    reply.dirty.set()
                elif event_type is Finished:
                    finished = event
        reply.status = MessageStatus.COMPLETE
    except ProviderError as exc:
        reply.error = exc
        got_text = bool(reply.parts) or bool(plan.prefix)
        reply.status = (
            MessageStatus.INTERRUPTED
            if got_text and exc.code in BROKEN_STREAM
            else MessageStatus.ERROR
        )
    except (Http404, PermissionDenied):
        # The gate checks access again as the call starts: a credential the actor lost in the
        # meantime (removed from the team, key deleted) is said plainly, not as a provider error.
        reply.error = ProviderError(
            "access_denied",
            "You can no longer use this conversation's model (its credential was removed or your "
            "access changed). Pick another model and retry.",
        )
        reply.status = MessageStatus.INTERRUPTED if reply.parts else MessageStatus.ERROR
    except asyncio.CancelledError:
        # Our own task: a Stop (or the process shutting down). Save what we have either way.
        current = asyncio.current_task()
        if current is not None:
            current.uncancel()
        reply.status = MessageStatus.STOPPED if reply.stop_requested else MessageStatus.INTERRUPTED
        if reply.shutting_down:
            reply.error = ProviderError("interrupted", SERVER_STOPPED)
    except Exception as exc:
        logger.exception("Reply %s failed", plan.message_id)
        reply.error = ProviderError(
            "provider_error", "Something went wrong while writing this reply."
        )
        reply.status = MessageStatus.ERROR if not reply.parts else MessageStatus.INTERRUPTED
        del exc
    finally:
        if control is not None:
            control.cancel()
        reply.done.set()
        reply.dirty.set()
        reply.announced.set()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        await _flush(reply, last=True)
        try:
            reply.final_frame = await asyncio.shield(_save(reply, finished, render))
        except Exception:
            logger.exception("Saving reply %s failed", plan.message_id)
            reply.final_frame = {"type": "final", "id": plan.message_id, "status": reply.status}
        # Publish, then forget: a watcher subscribing in between finds the final frame on the
        # reply and sends it itself.
        await kind.hub.publish(plan.conversation_id, reply.final_frame)
        kind.running.pop(plan.message_id, None)
        _LIVE.pop(id(reply), None)
        if reply.length > memory.LARGE:
            reply.parts.clear()
            reply.final_frame = reply.html = None
            await asyncio.to_thread(memory.release_freed_memory)


async def _save(reply: Reply, finished: Finished | None, render) -> dict:
    # Markdown first, in a worker thread: a long reply takes a second or more to render, which
    # must not hold the one thread Channels gives every user's database work.
    reply.html = await asyncio.to_thread(render_markdown, reply.text)
    return await connections.hop(reply.kind.save)(reply, finished, render)


def usage_fields(reply: Reply, finished: Finished | None) -> dict:
    """The reply's tokens, cost and timings: from the Finished event, else from the usage row
    the gate wrote for the failed or stopped call (found by the kind's usage context)."""
    from billing.models import UsageRecord

    plan = reply.plan
    usage = None
    if finished is not None:
        usage = {
            "usage_id": finished.usage_id,
            "input_tokens": finished.input_tokens,
            "output_tokens": finished.output_tokens,
            "cache_read_tokens": finished.cache_read_tokens,
            "cache_write_tokens": finished.cache_write_tokens,
            "reasoning_tokens": finished.reasoning_tokens,
            "tokens_estimated": finished.tokens_estimated,
            "cost": Decimal(finished.cost) if finished.cost is not None else None,
            "cost_source": finished.cost_source,
            "ttft_ms": finished.ttft_ms,
            "tokens_per_second": finished.tokens_per_second,
            "duration_ms": finished.duration_ms,
        }
    else:
        usage_id = reply.error.usage_id if reply.error is not None else None
        # Stopped replies: the gate wrote its usage row as the stream closed; find it.
        context = {f"context__{key}": value for key, value in reply.kind.context(plan).items()}
        row = (
            UsageRecord.objects.filter(pk=usage_id).first()
            if usage_id
            else UsageRecord.objects.filter(user_id=plan.user_id, **context)
            .order_by("-created_at", "-id")
            .first()
        )
        if row is not None:
            usage = {
                "usage_id": row.pk,
                "input_tokens": row.input_tokens,
                "output_tokens": row.output_tokens,
                "cache_read_tokens": row.cache_read_tokens,
                "cache_write_tokens": row.cache_write_tokens,
                "reasoning_tokens": row.reasoning_tokens,
                "tokens_estimated": row.tokens_estimated,
                "cost": row.cost,
                "cost_source": row.cost_source,
                "ttft_ms": row.ttft_ms,
                "tokens_per_second": row.tokens_per_second,
                "duration_ms": row.duration_ms,
            }
    return usage or {}


def _save_sync(reply: Reply, finished: Finished | None, render) -> dict:
    plan = reply.plan
    usage = usage_fields(reply, finished)
    if plan.prefix:  # Continue: the message carries both calls
        # (A plan of another kind may carry only input and output: zip stops at the shorter.)
        for name, prior in zip(services.TOKEN_FIELDS, plan.prior_tokens, strict=False):
            usage[name] = (usage.get(name) or 0) + prior
        if plan.prior_cost is not None or usage.get("cost") is not None:
            usage["cost"] = (plan.prior_cost or Decimal(0)) + (usage.get("cost") or Decimal(0))
    error = reply.error
    saved = replies.reply_finish(
        question=_question(plan),
        prior_cost=plan.prior_cost if plan.prefix else None,
        message_id=plan.message_id,
        text=reply.text,
        html=reply.html,
        reasoning=reply.reasoning if reply.reasoning_parts else None,
        reasoning_ms=reply.reasoning_ms,
        status=reply.status,
        error_code=error.code
        if error
        else ("stopped" if reply.status == MessageStatus.STOPPED else ""),
        error_message=error.message if error else "",
        **usage,
    )
    frame = {"type": "final", "id": plan.message_id, "status": reply.status}
    if render is not None:
        frame.update(render(plan.message_id, saved=saved))
    return frame


def _question(plan) -> str | None:
    """What the reply answers: the last user turn sent (its parent's text), for the title."""
    for turn in reversed(plan.request.messages):
        if turn.role == "user":
            return turn.content
    return None


async def shutdown(*, deadline: float = 8.0) -> int:
    """The server is stopping (Daphne's SIGTERM): end every reply this process runs as
    `interrupted`, saving all the text received so far, and wait (up to `deadline` seconds)
    until each is saved. Returns how many replies were cut."""
    running = list(_LIVE.values())
    for reply in running:
        if reply.task is not None and not reply.task.done():
            reply.shutting_down = True
            reply.task.cancel()
    tasks = [reply.task for reply in running if reply.task is not None]
    if tasks:
        await asyncio.wait(tasks, timeout=deadline)
    return len(running)


async def stop(message_id: int, *, kind: Kind | None = None) -> bool:
    """Stop a reply wherever it runs: here directly, elsewhere through the channel layer.
    Returns whether this process ran it."""
    kind = _kind(kind)
    reply = kind.running.get(message_id)
    if reply is not None:
        reply.stop()
        return True
    if _layer_reaches_other_processes():
        await get_channel_layer().group_send(
            kind.hub.group(f"reply-{message_id}"), {"type": "reply.stop"}
        )
    return False


CHAT = Kind(
    hub=hub,
    running=RUNNING,
    feature="chat",
    context=lambda plan: {"conversation": plan.conversation_id, "message": plan.message_id},
    checkpoint=replies.reply_checkpoint,
    save=_save_sync,
    progressive=True,
    retrieval_save=grounding.retrieval_save,
)
