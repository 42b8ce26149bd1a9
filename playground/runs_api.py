"""REST for runs and answers: start a run (JSON, or Server-Sent Events while it streams), its
results, winner, live events and stop; an answer's rating and export as code. A run started here
is the same process-owned task a page starts: a client that goes away stops nothing."""

from __future__ import annotations

import asyncio
import json

from asgiref.sync import async_to_sync, sync_to_async
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, mixins, status
from rest_framework.response import Response

from accounts.access import Action
from playground import runs, selectors, services, snippets
from playground.api import SSE_HEADERS, sse_event
from playground.models import Answer, AnswerStatus, Run
from playground.serializers import (
    AnswerSerializer,
    AnswerWriteSerializer,
    RunListSerializer,
    RunSerializer,
    RunStartSerializer,
    RunWriteSerializer,
    SnippetSerializer,
    StopSerializer,
    estimate_data,
)
from providers.api import EventStreamNegotiation
from workbench.api import error_body


def _run_json(run_id: int) -> dict:
    return RunSerializer(Run.objects.prefetch_related("answers").get(pk=run_id)).data


def _answer_json(answer_id: int) -> dict:
    return AnswerSerializer(Answer.objects.get(pk=answer_id)).data


async def plans_run_to_end(plans, kind, started: dict) -> None:
    """Run the plans to the end (the JSON answer, not streamed): every answer and the judge."""
    replies = await runs.start(plans, kind=kind, started=started)
    await asyncio.gather(*(asyncio.shield(reply.task) for reply in replies))
    if replies:
        await runs.settled(replies[0].plan.run_id)  # the judge's scores, when there is one


async def _events(*, kind, topic: int, run_id: int, answer_ids: set[int], start=None):
    """SSE for one run: `started` (the run), `delta` ({answer, offset, text}), `answer` (each
    finished answer), then `finished` (the run). The answers are the runner's: a client that
    goes away stops nothing."""
    queue: asyncio.Queue = asyncio.Queue()

    async def listen(frame: dict) -> None:
        if frame.get("id") in answer_ids:
            queue.put_nowait(frame)

    kind.hub.subscribe(topic, listen)
    try:
        if start is not None:
            await start()
        run = await sync_to_async(_run_json)(run_id)
        yield sse_event("started", run)
        pending = {a["id"] for a in run["answers"] if a["status"] == AnswerStatus.STREAMING}
        for answer in run["answers"]:
            if answer["id"] in pending and answer["text"]:
                yield sse_event(
                    "delta", {"answer": answer["id"], "offset": 0, "text": answer["text"]}
                )
        sent = {a["id"]: len(a["text"]) for a in run["answers"]}
        while pending:
            frame = await queue.get()
            if frame["type"] == "delta":
                # Frames may overlap what the snapshot already gave: send only what is new.
                have = sent.get(frame["id"], 0)
                end = frame["offset"] + len(frame["text"])
                if end > have:
                    text = frame["text"][max(0, have - frame["offset"]) :]
                    sent[frame["id"]] = end
                    yield sse_event(
                        "delta", {"answer": frame["id"], "offset": end - len(text), "text": text}
                    )
            elif frame["type"] == "final" and frame["id"] in pending:
                pending.discard(frame["id"])
                yield sse_event("answer", await sync_to_async(_answer_json)(frame["id"]))
        yield sse_event("finished", await sync_to_async(_finished_run)(run_id))
    finally:
        kind.hub.unsubscribe(topic, listen)


def _finished_run(run_id: int) -> dict:
    runs.run_finish_if_done(run_id=run_id)
    return _run_json(run_id)


def _needs_confirmation(exc: services.NeedsConfirmation) -> Response:
    body = error_body(
        "needs_confirmation",
        "This run passes a soft budget limit; send `confirm: true` to run it anyway.",
        estimate=estimate_data(exc.estimate),
    )
    return Response(json.loads(json.dumps(body, default=str)), status=status.HTTP_409_CONFLICT)


class RunListView(mixins.ListModelMixin, generics.GenericAPIView):
    serializer_class = RunListSerializer
    content_negotiation_class = EventStreamNegotiation

    def get_queryset(self):
        comparison = selectors.comparison_for_user(user=self.request.user, pk=self.kwargs["pk"])
        return comparison.runs.order_by("-created_at", "-id")

    def get(self, request, pk):
        """The comparison's runs, newest first."""
        return self.list(request)

    @extend_schema(
        request=RunStartSerializer,
        responses={
            201: RunSerializer,
            409: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="`needs_confirmation`: a soft budget limit would be passed; the "
                "error carries the estimate. Send `confirm: true` to run anyway.",
            ),
        },
        description="Run every slot at once. JSON answers when every answer is final; with "
        "`stream: true` a `text/event-stream` of `started` (the run), `delta` "
        "(`{answer, offset, text}`), `answer` (each final answer) and `finished` (the run).",
    )
    def post(self, request, pk):
        comparison = selectors.comparison_for_user(user=request.user, pk=pk, action=Action.USE)
        data = RunStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            run, plans = services.run_start(
                actor=request.user, comparison=comparison, confirm=data.validated_data["confirm"]
            )
        except services.NeedsConfirmation as exc:
            return _needs_confirmation(exc)
        started = {"type": "run_started", "run": run.pk}
        kind = runs.COMPARE
        if data.validated_data["stream"]:
            return StreamingHttpResponse(
                _events(
                    kind=kind,
                    topic=comparison.pk,
                    run_id=run.pk,
                    answer_ids={p.answer_id for p in plans},
                    start=lambda: runs.start(plans, kind=kind, started=started),
                ),
                content_type="text/event-stream",
                headers=SSE_HEADERS,
            )
        async_to_sync(plans_run_to_end)(plans, kind, started)
        return Response(_finished_run(run.pk), status=status.HTTP_201_CREATED)


class RunDetailView(generics.GenericAPIView):
    serializer_class = RunSerializer

    def get(self, request, pk):
        """A run's results: every answer with its text, status, tokens, cost and timings."""
        run = selectors.run_for_user(user=request.user, pk=pk)
        selectors.require_revealed(run)
        if run.finished_at is None:
            runs.answers_mark_stale(run_id=run.pk)
        return Response(_run_json(run.pk))

    @extend_schema(request=RunWriteSerializer)
    def patch(self, request, pk):
        """Pick the winner (an answer of this run) or clear it."""
        run = selectors.run_for_user(user=request.user, pk=pk, action=Action.WRITE)
        selectors.require_revealed(run)
        data = RunWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.run_pick_winner(
            actor=request.user, run=run, answer_id=data.validated_data["winner_id"]
        )
        return Response(_run_json(run.pk))


class RunEventsView(generics.GenericAPIView):
    serializer_class = RunSerializer
    content_negotiation_class = EventStreamNegotiation

    @extend_schema(
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="A `text/event-stream`: `started` (the run as it is), the text so far "
                "and then the live `delta`s of answers still streaming, `answer` per final "
                "answer, `finished` (the run). A finished run gives `started` and `finished`.",
            )
        }
    )
    def get(self, request, pk):
        """Watch a run as Server-Sent Events (from any client, while it runs or after)."""
        run = selectors.run_for_user(user=request.user, pk=pk)
        selectors.require_revealed(run)
        runs.answers_mark_stale(run_id=run.pk)
        kind = runs.ARENA if run.kind == "arena" else runs.COMPARE
        topic = run.battle.pk if run.kind == "arena" else run.comparison_id
        answer_ids = set(run.answers.values_list("pk", flat=True))
        return StreamingHttpResponse(
            _events(kind=kind, topic=topic, run_id=run.pk, answer_ids=answer_ids),
            content_type="text/event-stream",
            headers=SSE_HEADERS,
        )


class RunStopView(generics.GenericAPIView):
    serializer_class = StopSerializer

    @extend_schema(
        request=StopSerializer,
        responses={202: OpenApiResponse(OpenApiTypes.OBJECT, description="`{stopping: [ids]}`")},
    )
    def post(self, request, pk):
        """Stop one answer of this run, or all still streaming; their text so far is kept."""
        run = selectors.run_for_user(user=request.user, pk=pk, action=Action.USE)
        data = StopSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ids = services.answers_to_stop(
            actor=request.user, run=run, answer_id=data.validated_data.get("answer_id")
        )
        kind = runs.ARENA if run.kind == "arena" else runs.COMPARE
        async_to_sync(runs.stop)(ids, kind=kind)
        return Response({"stopping": ids}, status=status.HTTP_202_ACCEPTED)


class AnswerDetailView(generics.GenericAPIView):
    serializer_class = AnswerSerializer

    def get(self, request, pk):
        answer = selectors.answer_for_user(user=request.user, pk=pk)
        selectors.require_revealed(answer.run)
        return Response(AnswerSerializer(answer).data)

    @extend_schema(request=AnswerWriteSerializer)
    def patch(self, request, pk):
        """Rate (1–5, null clears) and note an answer."""
        answer = selectors.answer_for_user(user=request.user, pk=pk, action=Action.WRITE)
        selectors.require_revealed(answer.run)
        data = AnswerWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.answer_rate(
            actor=request.user,
            answer=answer,
            rating=data.validated_data.get("rating", answer.rating),
            note=data.validated_data.get("note", answer.note),
        )
        return Response(AnswerSerializer(answer).data)


class AnswerCodeView(generics.GenericAPIView):
    serializer_class = SnippetSerializer
    pagination_class = None

    @extend_schema(responses=SnippetSerializer(many=True))
    def get(self, request, pk):
        """The answer's exact request as cURL, Python, TypeScript and JavaScript; the key is an
        environment variable, never the stored key."""
        answer = selectors.answer_for_user(user=request.user, pk=pk)
        selectors.require_revealed(answer.run)
        found = snippets.snippets_for(
            snippets.target_for_answer(answer), snippets.call_for_answer(answer)
        )
        return Response(SnippetSerializer(found, many=True).data)
