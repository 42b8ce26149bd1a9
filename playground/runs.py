"""Answers stream through the chat's reply runner (chats.streaming) as their own kinds.

Every answer of a run is a process-owned task: all start at once, each streams to the page's
socket in coalesced frames, checkpoints its partial text about once a second (the heartbeat),
and ends `complete`, `stopped`, `interrupted` or `error` on its own — a failing or stalled slot
never delays the others, and closing the tab loses nothing. The answer that ends last finishes
the run (wall time, total cost) in one conditional UPDATE, so exactly one final frame carries the
run's summary.

Statements per answer: the answer row is written with the run (services), then one UPDATE per
second of streaming, then its final UPDATE, the run-finish check, and the rendering's reads."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.template.loader import render_to_string
from django.utils import timezone

from chats import streaming
from chats.rendering import RENDER_VERSION, render_markdown
from playground.models import Answer, AnswerStatus, Run
from providers.adapters.base import CompletionRequest

STALE_AFTER = timedelta(seconds=5)  # a streaming answer without a heartbeat this long is dead


@dataclass(frozen=True)
class AnswerPlan:
    """What the runner needs for one answer (the attributes `chats.streaming` reads)."""

    answer_id: int
    run_id: int
    topic: int  # what the page's socket follows: the comparison (compare) or the battle (arena)
    user_id: int
    credential_id: int | None
    request: CompletionRequest
    user: object = field(default=None, compare=False, repr=False)
    prefix: str = ""
    prior_cost: Decimal | None = None
    prior_tokens: tuple[int, int] = (0, 0)
    # The run's shared context (playground.grounding): the collections searched once for every
    # answer, and — set by `start` — the task whose result (the context text) each awaits.
    grounding_ids: tuple[int, ...] = ()
    shared_context: object = field(default=None, compare=False, repr=False)
    judge: tuple[int, str] | None = None  # "RAG quality": (credential id, model)
    # Added to the usage row's context: {"prompt_template", "prompt_version"} when the run sent
    # a library prompt, so the version's page counts the call and its cost.
    usage_context: tuple[tuple[str, int], ...] = ()

    @property
    def message_id(self) -> int:
        return self.answer_id

    @property
    def conversation_id(self) -> int:
        return self.topic


def answer_checkpoint(*, message_id: int, text: str, reasoning: str | None = None) -> None:
    """The partial text (and reasoning), and the heartbeat: one UPDATE."""
    changes = {"text": text, "heartbeat_at": timezone.now()}
    if reasoning is not None:
        changes["reasoning"] = reasoning
    Answer.objects.filter(pk=message_id, status=AnswerStatus.STREAMING).update(**changes)


def _finish_reason(reply, finished) -> str:
    if finished is not None:
        return finished.reason or "stop"
    if reply.status == AnswerStatus.STOPPED:
        return "stopped"
    return reply.error.code if reply.error is not None else reply.status


def answer_finish(reply, finished) -> None:
    """The final text, status, usage and metrics of an answer (one UPDATE)."""
    usage = streaming.usage_fields(reply, finished)
    error = reply.error
    text = reply.text
    Answer.objects.filter(pk=reply.message_id).update(
        text=text,
        text_html=str(render_markdown(text)),
        html_version=RENDER_VERSION,
        reasoning=reply.reasoning,
        reasoning_ms=reply.reasoning_ms,
        status=reply.status,
        error_code=error.code
        if error
        else ("stopped" if reply.status == AnswerStatus.STOPPED else ""),
        error_message=(error.message[:500] if error else ""),
        finish_reason=_finish_reason(reply, finished)[:40],
        heartbeat_at=None,
        **usage,
    )


@transaction.atomic
def run_finish_if_done(*, run_id: int) -> bool:
    """Close the run when no answer streams any more: its total cost, whether some answer was
    unpriced, and its wall time. True for exactly one caller (a conditional UPDATE)."""
    still_streaming = Answer.objects.filter(run_id=OuterRef("pk"), status=AnswerStatus.STREAMING)
    run = (
        Run.objects.filter(pk=run_id, finished_at__isnull=True)
        .exclude(Exists(still_streaming))
        .values("created_at")
        .first()
    )
    if run is None:
        return False
    totals = Answer.objects.filter(run_id=run_id).aggregate(
        cost=Sum("cost"), unpriced=Count("id", filter=Q(cost_source="unpriced"))
    )
    now = timezone.now()
    return bool(
        Run.objects.filter(pk=run_id, finished_at__isnull=True)
        .exclude(Exists(still_streaming))
        .update(
            finished_at=now,
            wall_ms=(now - run["created_at"]).total_seconds() * 1000,
            cost_total=totals["cost"] or Decimal(0),
            has_unpriced=bool(totals["unpriced"]),
        )
    )


def _saver(render_answer, render_run):
    """The kind's `save`: persist the answer, close the run if it was the last, and build the
    final frame (the answer's card; the run's summary too when this closed it)."""

    def save(reply, finished, render=None) -> dict:
        answer_finish(reply, finished)
        plan: AnswerPlan = reply.plan
        frame = {"type": "final", "id": plan.answer_id, "status": reply.status}
        answer = Answer.objects.select_related("run").get(pk=plan.answer_id)
        frame["html"] = render_answer(answer)
        if run_finish_if_done(run_id=plan.run_id):
            frame["run"] = {"id": plan.run_id, **render_run(plan.run_id)}
        return frame

    return save


def _render_compare_answer(answer: Answer) -> str:
    from playground import selectors

    return render_to_string(
        "playground/comparison.html#answer",
        {"answer": answer, "card": selectors.answer_card(answer=answer), "can_use": True},
    )


def _render_compare_run(run_id: int) -> dict:
    from playground import selectors

    view = selectors.run_view(run=Run.objects.select_related("comparison").get(pk=run_id))
    return {"html": render_to_string("playground/comparison.html#results", {"run_view": view})}


def _render_arena_answer(answer: Answer) -> str:
    return render_to_string("playground/battle.html#answer", {"answer": answer, "revealed": False})


def _render_arena_run(run_id: int) -> dict:
    return {"voting": True}


COMPARE = streaming.Kind(
    hub=streaming.Hub("compare"),
    running={},
    feature="playground",
    context=lambda plan: {"run": plan.run_id, "answer": plan.answer_id, **dict(plan.usage_context)},
    checkpoint=answer_checkpoint,
    save=_saver(_render_compare_answer, _render_compare_run),
)

ARENA = streaming.Kind(
    hub=streaming.Hub("arena"),
    running={},
    feature="playground",
    context=lambda plan: {"battle": plan.topic, "run": plan.run_id, "answer": plan.answer_id},
    checkpoint=answer_checkpoint,
    save=_saver(_render_arena_answer, _render_arena_run),
)

KINDS = (COMPARE, ARENA)


def running_answer_ids() -> frozenset[int]:
    return frozenset(answer_id for kind in KINDS for answer_id in kind.running)


def answers_mark_stale(*, run_id: int | None = None) -> int:
    """Answers still `streaming` whose heartbeat is older than STALE_AFTER belong to a process
    that died: interrupted, keeping their last checkpointed text (their runs close). Answers
    this process runs are never touched, however quiet."""
    stale = Answer.objects.filter(
        status=AnswerStatus.STREAMING, heartbeat_at__lt=timezone.now() - STALE_AFTER
    )
    if run_id is not None:
        stale = stale.filter(run_id=run_id)
    running = running_answer_ids()
    if running:
        stale = stale.exclude(pk__in=running)
    run_ids = set(stale.values_list("run_id", flat=True))
    if not run_ids:
        return 0
    count = stale.update(
        status=AnswerStatus.INTERRUPTED,
        error_code="interrupted",
        error_message="The server stopped while this answer was being written.",
        finish_reason="interrupted",
        heartbeat_at=None,
    )
    for stale_run in run_ids:
        run_finish_if_done(run_id=stale_run)
    return count


# Background work of runs this process started (the shared retrieval, the judge), by run id:
# held here so the tasks aren't collected while they run, and so callers can wait for them.
_AFTER: dict[int, set[asyncio.Task]] = {}


def _keep(run_id: int, task: asyncio.Task) -> asyncio.Task:
    tasks = _AFTER.setdefault(run_id, set())
    tasks.add(task)

    def forget(done: asyncio.Task) -> None:
        tasks.discard(done)
        if not tasks:
            _AFTER.pop(run_id, None)

    task.add_done_callback(forget)
    return task


async def start(plans: list[AnswerPlan], *, kind: streaming.Kind, started: dict) -> list:
    """Announce the run (one frame with every answer's card, so watchers have the elements
    before any delta) and start every answer at once. A grounded run retrieves once, in a task
    every answer awaits (each is registered as running meanwhile, so Stop works and nothing
    takes it for stale); a judged one scores the answers when they are all final."""
    from playground import grounding, judging

    await kind.hub.publish(plans[0].topic if plans else 0, started)
    context_task = None
    if plans and plans[0].grounding_ids:
        first = plans[0]
        context_task = _keep(
            first.run_id,
            asyncio.create_task(
                grounding.shared_context(
                    run_id=first.run_id,
                    user=first.user,
                    collection_ids=first.grounding_ids,
                    request=first.request,
                )
            ),
        )
        plans = [replace(plan, shared_context=context_task) for plan in plans]
    replies = []
    for plan in plans:
        reply = streaming.start(plan, kind=kind)
        reply.announced.set()
        replies.append(reply)
    if context_task is not None and plans[0].judge is not None:
        _keep(
            plans[0].run_id,
            asyncio.create_task(
                judging.run_judge(
                    plan=plans[0], replies=replies, context_task=context_task, kind=kind
                )
            ),
        )
    return replies


async def settled(run_id: int) -> None:
    """Wait for a run's background work (the judge) started by this process."""
    while _AFTER.get(run_id):
        await asyncio.gather(*list(_AFTER.get(run_id, ())), return_exceptions=True)


async def stop(answer_ids, *, kind: streaming.Kind) -> None:
    for answer_id in answer_ids:
        await streaming.stop(answer_id, kind=kind)
