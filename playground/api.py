"""REST for the playground's comparisons (CRUD, shared-context collections, judge, estimate),
and what the playground's REST modules share (the team parameter, Server-Sent Events). Runs and
answers are in runs_api.py, the arena in arena_api.py. Thin: validate, call one service or
selector, render.

A run started over REST is the same process-owned task a page starts: it finishes and is saved
even if the HTTP client goes away."""

from __future__ import annotations

import json

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, mixins, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from accounts import selectors as account_selectors
from accounts.access import Action
from playground import grounding, judging, selectors, services
from playground.serializers import (
    ComparisonCollectionAttachSerializer,
    ComparisonCollectionSerializer,
    ComparisonCreateSerializer,
    ComparisonSerializer,
    ComparisonWriteSerializer,
    EstimateSerializer,
    JudgeSerializer,
    estimate_data,
)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
TEAM_PARAM = OpenApiParameter("team", OpenApiTypes.INT, description="A team's instead of yours.")


def team_of(request):
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
            team=team_of(self.request),
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


def sse_event(event: str, data) -> bytes:
    """One Server-Sent Event."""
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()
