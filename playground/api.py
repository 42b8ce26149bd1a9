"""REST for the playground: comparisons (CRUD, estimate, runs as JSON or Server-Sent Events),
runs (results, winner, stop, live events), answers (rating, export as code), and the arena
(pool, battles, votes, leaderboard). Thin: validate, call one service or selector, render.

A run started here is the same process-owned task a page starts: it finishes and is saved even
if the HTTP client goes away."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from asgiref.sync import async_to_sync, sync_to_async
from django.core.exceptions import ValidationError
from django.http import Http404, StreamingHttpResponse
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.timezone import make_aware
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, mixins, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from accounts import selectors as account_selectors
from accounts.access import Action
from playground import arena, grounding, judging, runs, selectors, services, snippets
from playground.models import Answer, AnswerStatus, Battle, Run
from playground.serializers import (
    AnswerSerializer,
    AnswerWriteSerializer,
    BattleCreateSerializer,
    BattleSerializer,
    ComparisonCollectionAttachSerializer,
    ComparisonCollectionSerializer,
    ComparisonCreateSerializer,
    ComparisonSerializer,
    ComparisonWriteSerializer,
    EstimateSerializer,
    JudgeSerializer,
    LeaderboardSerializer,
    PoolEntrySerializer,
    RunListSerializer,
    RunSerializer,
    RunStartSerializer,
    RunWriteSerializer,
    SnippetSerializer,
    StopSerializer,
    VoteSerializer,
    estimate_data,
)
from providers.api import EventStreamNegotiation
from workbench.api import error_body

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
TEAM_PARAM = OpenApiParameter("team", OpenApiTypes.INT, description="A team's instead of yours.")


def _team(request):
    raw = request.query_params.get("team")
    return account_selectors.team_for_user(user=request.user, pk=raw) if raw else None


def _slots(data: dict) -> list[services.SlotData] | None:
    if "slots" not in data:
        return None
    return [
        services.SlotData(
            credential=slot.get("credential"),
            model=slot.get("model", ""),
            params={k: v for k, v in (slot.get("params") or {}).items() if v is not None},
            system_prompt=slot.get("system_prompt", ""),
            id=slot.get("id"),
        )
        for slot in data["slots"]
    ]


def _fields(data: dict) -> dict:
    fields = {k: data[k] for k in ("title", "system_prompt", "prompt") if k in data}
    if "history" in data:
        fields["history"] = [dict(turn) for turn in data["history"]]
    return fields


def _comparison_json(comparison) -> dict:
    comparison = type(comparison).objects.prefetch_related("slots").get(pk=comparison.pk)
    return ComparisonSerializer(comparison).data


# --- Comparisons -----------------------------------------------------------------------------------


class ComparisonListView(mixins.ListModelMixin, generics.GenericAPIView):
    serializer_class = ComparisonSerializer

    def get_queryset(self):
        return selectors.comparisons_for_user(
            user=self.request.user,
            team=_team(self.request),
            q=self.request.query_params.get("q", ""),
        ).prefetch_related("slots")

    @extend_schema(
        parameters=[
            TEAM_PARAM,
            OpenApiParameter("q", OpenApiTypes.STR, description="Search by name."),
        ]
    )
    def get(self, request):
        """Your comparisons, plus a team's with `?team=`."""
        return self.list(request)

    @extend_schema(request=ComparisonCreateSerializer, responses={201: ComparisonSerializer})
    def post(self, request):
        """A new comparison; without `slots`, two of the owner's models to start with."""
        data = ComparisonCreateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        comparison = services.comparison_create(
            actor=request.user,
            owner_team=data.validated_data.get("owner_team"),
            slots=_slots(data.validated_data),
            **_fields(data.validated_data),
        )
        return Response(_comparison_json(comparison), status=status.HTTP_201_CREATED)


class ComparisonDetailView(generics.GenericAPIView):
    serializer_class = ComparisonSerializer

    def get(self, request, pk):
        comparison = selectors.comparison_for_user(user=request.user, pk=pk)
        return Response(_comparison_json(comparison))

    @extend_schema(request=ComparisonWriteSerializer)
    def patch(self, request, pk):
        """Change the input; `slots` replaces the slots (keep one by giving its `id`)."""
        comparison = selectors.comparison_for_user(user=request.user, pk=pk, action=Action.WRITE)
        data = ComparisonWriteSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        services.comparison_save(
            actor=request.user,
            comparison=comparison,
            slots=_slots(data.validated_data),
            **_fields(data.validated_data),
        )
        return Response(_comparison_json(comparison))

    def delete(self, request, pk):
        comparison = selectors.comparison_for_user(user=request.user, pk=pk)
        services.comparison_delete(actor=request.user, comparison=comparison)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ComparisonCollectionListView(generics.GenericAPIView):
    serializer_class = ComparisonCollectionSerializer

    @extend_schema(responses={200: ComparisonCollectionSerializer(many=True)})
    def get(self, request, pk):
        """The collections every run of this comparison searches once, for all its slots."""
        comparison = selectors.comparison_for_user(user=request.user, pk=pk)
        linked = grounding.comparison_collections(comparison=comparison)
        return Response(ComparisonCollectionSerializer(linked, many=True).data)

    @extend_schema(
        request=ComparisonCollectionAttachSerializer,
        responses={201: ComparisonCollectionSerializer},
    )
    def post(self, request, pk):
        """Attach a collection: the next runs give every slot the same retrieved context."""
        comparison = selectors.comparison_for_user(user=request.user, pk=pk, action=Action.WRITE)
        data = ComparisonCollectionAttachSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            collection = grounding.collection_attach(
                actor=request.user,
                comparison=comparison,
                collection_id=data.validated_data["collection_id"],
            )
        except Http404:
            raise NotFound({"collection_id": "No such collection, or you can't see it."}) from None
        return Response(
            ComparisonCollectionSerializer(collection).data, status=status.HTTP_201_CREATED
        )


class ComparisonCollectionDetailView(generics.GenericAPIView):
    serializer_class = ComparisonCollectionSerializer

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, pk, collection_id):
        """Detach a collection (its documents stay where they are)."""
        comparison = selectors.comparison_for_user(user=request.user, pk=pk, action=Action.WRITE)
        grounding.collection_detach(
            actor=request.user, comparison=comparison, collection_id=collection_id
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class JudgeView(generics.GenericAPIView):
    serializer_class = JudgeSerializer

    @extend_schema(request=JudgeSerializer, responses={200: ComparisonSerializer})
    def patch(self, request, pk):
        """Pick the "RAG quality" judge (`credential: null`: none). Grounded runs then score
        each answer's faithfulness to the context and relevance (0–1, with a reason)."""
        comparison = selectors.comparison_for_user(user=request.user, pk=pk, action=Action.WRITE)
        data = JudgeSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        judging.judge_set(
            actor=request.user,
            comparison=comparison,
            credential=data.validated_data["credential"],
            model=data.validated_data["model"],
        )
        return Response(_comparison_json(comparison))


class EstimateView(generics.GenericAPIView):
    serializer_class = EstimateSerializer

    def get(self, request, pk):
        """What a run would cost: per slot and total, and what the budgets say."""
        comparison = selectors.comparison_for_user(user=request.user, pk=pk)
        estimate = services.comparison_estimate(actor=request.user, comparison=comparison)
        return Response(EstimateSerializer(estimate_data(estimate)).data)


def _sse(event: str, data) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()


def _run_json(run_id: int) -> dict:
    return RunSerializer(Run.objects.prefetch_related("answers").get(pk=run_id)).data


def _answer_json(answer_id: int) -> dict:
    return AnswerSerializer(Answer.objects.get(pk=answer_id)).data


async def _run_to_end(plans, kind, started: dict) -> None:
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
        yield _sse("started", run)
        pending = {a["id"] for a in run["answers"] if a["status"] == AnswerStatus.STREAMING}
        for answer in run["answers"]:
            if answer["id"] in pending and answer["text"]:
                yield _sse("delta", {"answer": answer["id"], "offset": 0, "text": answer["text"]})
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
                    yield _sse(
                        "delta", {"answer": frame["id"], "offset": end - len(text), "text": text}
                    )
            elif frame["type"] == "final" and frame["id"] in pending:
                pending.discard(frame["id"])
                yield _sse("answer", await sync_to_async(_answer_json)(frame["id"]))
        yield _sse("finished", await sync_to_async(_finished_run)(run_id))
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
        async_to_sync(_run_to_end)(plans, kind, started)
        return Response(_finished_run(run.pk), status=status.HTTP_201_CREATED)


# --- Runs and answers -------------------------------------------------------------------------------


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


# --- Arena -----------------------------------------------------------------------------------------


class PoolView(generics.GenericAPIView):
    serializer_class = PoolEntrySerializer
    pagination_class = None

    @extend_schema(parameters=[TEAM_PARAM], responses=PoolEntrySerializer(many=True))
    def get(self, request):
        """The arena pool: yours, or a team's with `?team=`."""
        team = _team(request)
        pool = arena.pool_for(owner=team or request.user)
        return Response(pool.entries)

    @extend_schema(
        parameters=[TEAM_PARAM],
        request=PoolEntrySerializer(many=True),
        responses=PoolEntrySerializer(many=True),
    )
    def put(self, request):
        """Replace the pool (the owner's credentials only)."""
        team = _team(request)
        data = PoolEntrySerializer(data=request.data, many=True, context={"request": request})
        data.is_valid(raise_exception=True)
        pool = arena.pool_save(
            actor=request.user,
            owner=team or request.user,
            entries=[(e["credential"], e["model"]) for e in data.validated_data],
        )
        return Response(pool.entries)


def _battle_json(battle_id: int) -> dict:
    return BattleSerializer(Battle.objects.select_related("run").get(pk=battle_id)).data


class BattleListView(mixins.ListModelMixin, generics.GenericAPIView):
    serializer_class = BattleSerializer
    content_negotiation_class = EventStreamNegotiation

    def get_queryset(self):
        return selectors.battles_for_owner(
            user=self.request.user, team=_team(self.request)
        ).select_related("run")

    @extend_schema(parameters=[TEAM_PARAM])
    def get(self, request):
        """Your battles (or a team's); names only for voted ones."""
        return self.list(request)

    @extend_schema(
        request=BattleCreateSerializer,
        responses={201: BattleSerializer},
        description="Draw two models from the pool and run both. JSON when both are final; "
        "with `stream: true` the same events as a comparison's run (answers anonymous).",
    )
    def post(self, request):
        data = BattleCreateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        battle = arena.battle_create(
            actor=request.user,
            owner_team=data.validated_data.get("owner_team"),
            prompt=data.validated_data["prompt"],
            system_prompt=data.validated_data.get("system_prompt", ""),
            tag=data.validated_data.get("tag", ""),
        )
        plans = arena.battle_start(actor=request.user, battle=battle)
        started = {"type": "battle_started"}
        if data.validated_data["stream"]:
            return StreamingHttpResponse(
                _battle_events(battle, plans, started),
                content_type="text/event-stream",
                headers=SSE_HEADERS,
            )
        if plans:
            async_to_sync(_run_to_end)(plans, runs.ARENA, started)
        return Response(_battle_json(battle.pk), status=status.HTTP_201_CREATED)


async def _battle_events(battle, plans, started):
    """A battle's SSE: deltas per side, then `finished` with the (anonymous) battle."""
    ids = {p.answer_id for p in plans}
    side = {p.answer_id: ("a" if i == 0 else "b") for i, p in enumerate(plans)}
    queue: asyncio.Queue = asyncio.Queue()

    async def listen(frame: dict) -> None:
        if frame.get("id") in ids:
            queue.put_nowait(frame)

    runs.ARENA.hub.subscribe(battle.pk, listen)
    try:
        await runs.start(plans, kind=runs.ARENA, started=started)
        yield _sse("started", {"battle": battle.pk})
        pending = set(ids)
        while pending:
            frame = await queue.get()
            if frame["type"] == "delta":
                yield _sse(
                    "delta",
                    {"side": side[frame["id"]], "offset": frame["offset"], "text": frame["text"]},
                )
            elif frame["type"] == "final":
                pending.discard(frame["id"])
        yield _sse("finished", await sync_to_async(_battle_json)(battle.pk))
    finally:
        runs.ARENA.hub.unsubscribe(battle.pk, listen)


class BattleDetailView(generics.GenericAPIView):
    serializer_class = BattleSerializer

    def get(self, request, pk):
        battle = selectors.battle_for_user(user=request.user, pk=pk)
        runs.answers_mark_stale(run_id=battle.run_id)
        return Response(_battle_json(battle.pk))


class BattleVoteView(generics.GenericAPIView):
    serializer_class = VoteSerializer

    @extend_schema(request=VoteSerializer, responses={200: BattleSerializer})
    def post(self, request, pk):
        """Vote a, b, tie or both_bad — once, when both answers are final. Reveals the names."""
        battle = selectors.battle_for_user(user=request.user, pk=pk, action=Action.WRITE)
        data = VoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            arena.battle_vote(actor=request.user, battle=battle, vote=data.validated_data["vote"])
        except ValidationError as exc:
            return Response(error_body("conflict", " ".join(exc.messages)), status=409)
        return Response(_battle_json(battle.pk))


def _when(raw: str | None, *, name: str) -> datetime | None:
    if not raw:
        return None
    value = parse_datetime(raw)
    if value is None:
        day = parse_date(raw)
        value = datetime(day.year, day.month, day.day) if day else None
    if value is None:
        raise ValidationError({name: "An ISO date or date-time."})
    # In UTC: Python takes offsets up to ±24 h, PostgreSQL only up to ±16 h (a 500 otherwise).
    return (make_aware(value) if value.tzinfo is None else value).astimezone(UTC)


class LeaderboardView(generics.GenericAPIView):
    serializer_class = LeaderboardSerializer
    pagination_class = None

    @extend_schema(
        parameters=[
            TEAM_PARAM,
            OpenApiParameter("tag", OpenApiTypes.STR, description="Only battles on this topic."),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="Votes from (ISO)."),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="Votes before (ISO)."),
        ]
    )
    def get(self, request):
        """Bradley–Terry ratings with 95 % bootstrap intervals, votes per model, position bias."""
        params = request.query_params
        try:
            since = _when(params.get("since"), name="since")
            until = _when(params.get("until"), name="until")
        except (ValueError, OverflowError):
            raise ValidationError({"since": "An ISO date or date-time."}) from None
        board = arena.leaderboard_for(
            user=request.user,
            team=_team(request),
            tag=params.get("tag", "").strip().lower()[:60],
            since=since,
            until=until,
        )
        return Response(LeaderboardSerializer(board).data)
