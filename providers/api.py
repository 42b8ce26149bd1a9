"""REST for providers: credentials, their models, and completions (JSON or Server-Sent Events).
Thin: validate, call one service or selector, render."""

from __future__ import annotations

import json
from contextlib import aclosing

import orjson
from asgiref.sync import async_to_sync
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, mixins, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from accounts.access import Action
from billing import money
from providers import concurrency, selectors, services
from providers.adapters.base import (
    CompletionRequest,
    Finished,
    Message,
    ProviderError,
    ReasoningDelta,
    TextDelta,
)
from providers.gateway.streams import Pump, encoded
from providers.serializers import (
    AliasCreateSerializer,
    AliasSerializer,
    CompletionSerializer,
    CredentialCreateSerializer,
    CredentialSerializer,
    CredentialUpdateSerializer,
    ProviderModelSerializer,
)
from workbench.api import error_body

ERROR_STATUS = {
    "bad_request": 400,
    "budget_exceeded": 402,
    "inactive": 409,
    "key_unreadable": 409,
    "egress_denied": 409,  # the credential points where Workbench may not connect
    "rate_limited": 429,
    "too_many_calls": 429,
    "timeout": 504,
    "not_found": 502,
}


def provider_error_response(exc: ProviderError, *, partial: bool = False) -> Response:
    """Our error shape. With `partial` (a completion), what arrived before the error comes
    along: `partial_text` and `partial_reasoning` (SSE and chat keep it too)."""
    extra = {"usage_id": exc.usage_id, "retry_after": exc.retry_after}
    if exc.budget:  # budget_exceeded: the budget that refused the call
        extra["budget"] = exc.budget
    if partial:
        extra |= {"partial_text": exc.partial_text, "partial_reasoning": exc.partial_reasoning}
    body = error_body(exc.code, exc.message, **extra)
    return Response(body, status=ERROR_STATUS.get(exc.code, 502))


class CredentialListView(mixins.ListModelMixin, generics.GenericAPIView):
    serializer_class = CredentialSerializer

    def get_queryset(self):
        return selectors.credentials_for_user(
            user=self.request.user, team=getattr(self.request, "team", None)
        )

    def get(self, request):
        """Your personal credentials plus the current team's (session) — with a token, yours."""
        return self.list(request)

    @extend_schema(request=CredentialCreateSerializer, responses={201: CredentialSerializer})
    def post(self, request):
        data = CredentialCreateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        credential = services.credential_create(actor=request.user, **data.validated_data)
        return Response(
            CredentialSerializer(credential, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


class CredentialDetailView(generics.GenericAPIView):
    serializer_class = CredentialSerializer

    def get(self, request, pk):
        credential = selectors.credential_for_user(user=request.user, pk=pk)
        return Response(CredentialSerializer(credential, context={"request": request}).data)

    @extend_schema(request=CredentialUpdateSerializer)
    def patch(self, request, pk):
        credential = selectors.credential_for_user(user=request.user, pk=pk, action=Action.MANAGE)
        data = CredentialUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.credential_update(actor=request.user, credential=credential, **data.validated_data)
        return Response(CredentialSerializer(credential, context={"request": request}).data)

    def delete(self, request, pk):
        credential = selectors.credential_for_user(user=request.user, pk=pk, action=Action.MANAGE)
        services.credential_delete(actor=request.user, credential=credential)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CredentialTestView(generics.GenericAPIView):
    serializer_class = CredentialSerializer

    @extend_schema(request=None, responses={200: CredentialSerializer})
    def post(self, request, pk):
        """Check the connection by listing models (spends no tokens)."""
        credential = selectors.credential_for_user(user=request.user, pk=pk, action=Action.USE)
        services.credential_test(actor=request.user, credential=credential)
        return Response(CredentialSerializer(credential, context={"request": request}).data)


class CredentialModelsView(generics.GenericAPIView):
    serializer_class = ProviderModelSerializer
    pagination_class = None

    @extend_schema(responses=ProviderModelSerializer(many=True))
    def get(self, request, pk):
        """The cached catalogue with context windows and prices ("unpriced" when unknown)."""
        credential = selectors.credential_for_user(user=request.user, pk=pk)
        entries = selectors.catalogue_for(user=request.user, credential=credential)
        return Response(ProviderModelSerializer(entries, many=True).data)

    @extend_schema(request=None, responses=ProviderModelSerializer(many=True))
    def post(self, request, pk):
        """Refresh the catalogue from the provider (needs `use`: it calls the provider with the
        credential's key)."""
        credential = selectors.credential_for_user(user=request.user, pk=pk, action=Action.USE)
        try:
            services.catalogue_refresh(actor=request.user, credential=credential)
        except ProviderError as exc:
            return provider_error_response(exc)
        entries = selectors.catalogue_for(user=request.user, credential=credential)
        return Response(ProviderModelSerializer(entries, many=True).data)


class AliasListView(mixins.ListModelMixin, generics.GenericAPIView):
    serializer_class = AliasSerializer

    def get_queryset(self):
        return selectors.aliases_for_user(user=self.request.user)

    def get(self, request):
        """Gateway aliases you can see: yours and your teams'."""
        return self.list(request)

    @extend_schema(request=AliasCreateSerializer, responses={201: AliasSerializer})
    def post(self, request):
        data = AliasCreateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        values = data.validated_data
        alias = services.alias_create(
            actor=request.user,
            name=values["name"],
            credential=values["credential"],
            model_id=values["model"],
            owner_team=values.get("owner_team"),
        )
        return Response(AliasSerializer(alias).data, status=status.HTTP_201_CREATED)


class AliasDetailView(generics.GenericAPIView):
    serializer_class = AliasSerializer

    def get(self, request, pk):
        return Response(AliasSerializer(selectors.alias_for_user(user=request.user, pk=pk)).data)

    def delete(self, request, pk):
        alias = selectors.alias_for_user(user=request.user, pk=pk)
        services.alias_delete(actor=request.user, alias=alias)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _request_from(data: dict) -> CompletionRequest:
    return CompletionRequest(
        model=data["model"],
        messages=tuple(Message(m["role"], m["content"]) for m in data["messages"]),
        system=data.get("system") or "",
        temperature=data.get("temperature"),
        top_p=data.get("top_p"),
        max_tokens=data.get("max_tokens"),
        stop=tuple(data.get("stop") or ()),
        seed=data.get("seed"),
    )


def finished_payload(
    event: Finished, text: str | None = None, reasoning: str | None = None
) -> dict:
    payload = {
        "usage_id": event.usage_id,
        "finish_reason": event.reason,
        "usage": {
            "input_tokens": event.input_tokens,
            "output_tokens": event.output_tokens,
            "cache_read_tokens": event.cache_read_tokens,
            "cache_write_tokens": event.cache_write_tokens,
            "reasoning_tokens": event.reasoning_tokens,
            "estimated": event.tokens_estimated,
        },
        "cost": {
            "usd": money.decimal_str(event.cost),
            "source": event.cost_source,
            "display": money.cost_label(event.cost, event.cost_source),
        },
        "timing": {
            "ttft_ms": event.ttft_ms,
            "ttft_with_retries_ms": (
                event.ttft_ms + event.retry_wait_ms if event.ttft_ms is not None else None
            ),
            "retry_wait_ms": event.retry_wait_ms,
            "reasoning_ms": event.reasoning_ms,
            "duration_ms": event.duration_ms,
            "tokens_per_second": event.tokens_per_second,
        },
        "attempts": event.attempts,
    }
    if text is not None:
        payload = {"text": text, "reasoning": reasoning or "", **payload}
    return payload


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class EventStreamNegotiation(DefaultContentNegotiation):
    """SSE clients send `Accept: text/event-stream`. The stream needs no renderer; everything
    else (errors included) is still JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except exceptions.NotAcceptable:
            if "text/event-stream" not in request.META.get("HTTP_ACCEPT", ""):
                raise
            return renderers[0], renderers[0].media_type


class CompletionView(generics.GenericAPIView):
    serializer_class = CompletionSerializer
    content_negotiation_class = EventStreamNegotiation

    @extend_schema(
        request=CompletionSerializer,
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="JSON `{text, reasoning, usage_id, finish_reason, usage, cost, timing, "
                "attempts}`; an error is `{error: {code, message, usage_id, retry_after, partial_text, "
                "partial_reasoning}}` (what arrived before it). With `stream: true` a "
                "`text/event-stream` of `reasoning` (`{text}`, a thinking model's thoughts) and "
                "`delta` events (`{text}`), then one `finished` (the same object without text) or "
                "`error` (`{code, message, usage_id, retry_after}`).",
            )
        },
    )
    def post(self, request):
        """Call a model through the gate. Every call records one usage row."""
        data = CompletionSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        values = data.validated_data
        completion = _request_from(values)
        kwargs = {
            "user": request.user,
            "credential_id": values["credential"].pk,
            "request": completion,
            "feature": "api",
            "team": values.get("team"),
        }
        if values["stream"]:
            # Once the stream has begun its status is 200; refuse a call over the cap before
            # that (the gate still decides for the calls that get through).
            if concurrency.calls_running(user_id=request.user.pk) >= concurrency.max_calls():
                too_many = concurrency.TooManyCalls(concurrency.max_calls())
                return provider_error_response(ProviderError("too_many_calls", str(too_many)))
            return StreamingHttpResponse(
                _event_stream(kwargs),
                content_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        try:
            text, reasoning, finished = async_to_sync(_collect)(kwargs)
        except ProviderError as exc:
            return provider_error_response(exc, partial=True)
        return Response(finished_payload(finished, text, reasoning))


async def _collect(kwargs) -> tuple[str, str, Finished]:
    parts, thoughts, finished = [], [], None
    async with aclosing(services.completion_stream(**kwargs)) as events:
        async for event in events:
            if type(event) is TextDelta:
                parts.append(event.text)
            elif type(event) is ReasoningDelta:
                thoughts.append(event.text)
            elif type(event) is Finished:
                finished = event
    return "".join(parts), "".join(thoughts), finished


async def _event_stream(kwargs):
    """Our SSE over the lean streaming path (providers.gateway.streams): deltas that are ready
    together leave as one `delta` event, in one write."""
    pump = Pump(services.completion_stream(**kwargs))

    def encode(batch: list) -> bytes:
        out = b""
        for event in batch:
            kind = type(event)
            if kind is TextDelta:
                out += b"event: delta\ndata: " + orjson.dumps({"text": event.text}) + b"\n\n"
            elif kind is ReasoningDelta:
                out += b"event: reasoning\ndata: " + orjson.dumps({"text": event.text}) + b"\n\n"
            elif kind is Finished:
                out += _sse("finished", finished_payload(event))
        return out

    def on_error(exc: Exception) -> bytes:
        if not isinstance(exc, ProviderError):
            raise exc
        return _sse(
            "error",
            {
                "code": exc.code,
                "message": exc.message,
                "usage_id": exc.usage_id,
                "retry_after": exc.retry_after,
                **({"budget": exc.budget} if exc.budget else {}),
            },
        )

    async for chunk in encoded([], pump, encode, on_error):
        yield chunk
