"""REST for the arena: the model pool, battles (created, streamed, voted on) and the
leaderboard."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from asgiref.sync import async_to_sync, sync_to_async
from django.core.exceptions import ValidationError
from django.http import StreamingHttpResponse
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.timezone import make_aware
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, mixins, status
from rest_framework.response import Response

from accounts.access import Action
from playground import arena, runs, selectors
from playground.api import SSE_HEADERS, TEAM_PARAM, sse_event, team_of
from playground.models import Battle
from playground.runs_api import plans_run_to_end
from playground.serializers import (
    BattleCreateSerializer,
    BattleSerializer,
    LeaderboardSerializer,
    PoolEntrySerializer,
    VoteSerializer,
)
from providers.api import EventStreamNegotiation
from workbench.api import error_body


class PoolView(generics.GenericAPIView):
    serializer_class = PoolEntrySerializer
    pagination_class = None

    @extend_schema(parameters=[TEAM_PARAM], responses=PoolEntrySerializer(many=True))
    def get(self, request):
        """The arena pool: yours, or a team's with `?team=`."""
        team = team_of(request)
        pool = arena.pool_for(owner=team or request.user)
        return Response(pool.entries)

    @extend_schema(
        parameters=[TEAM_PARAM],
        request=PoolEntrySerializer(many=True),
        responses=PoolEntrySerializer(many=True),
    )
    def put(self, request):
        """Replace the pool (the owner's credentials only)."""
        team = team_of(request)
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
            user=self.request.user, team=team_of(self.request)
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
            async_to_sync(plans_run_to_end)(plans, runs.ARENA, started)
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
        yield sse_event("started", {"battle": battle.pk})
        pending = set(ids)
        while pending:
            frame = await queue.get()
            if frame["type"] == "delta":
                yield sse_event(
                    "delta",
                    {"side": side[frame["id"]], "offset": frame["offset"], "text": frame["text"]},
                )
            elif frame["type"] == "final":
                pending.discard(frame["id"])
        yield sse_event("finished", await sync_to_async(_battle_json)(battle.pk))
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
            team=team_of(request),
            tag=params.get("tag", "").strip().lower()[:60],
            since=since,
            until=until,
        )
        return Response(LeaderboardSerializer(board).data)
