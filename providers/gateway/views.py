"""The gateway's async views (no DRF, no thread hop but the gate's own): authenticate the API
token (cached, providers never wait on it), parse, resolve the model name through the access
rules, call the gate, answer in the vendor's shape.

Errors before the first token (bad request, unknown model, no permission, budget, too many
calls, the provider refusing) are HTTP errors in the vendor's error shape; the first event is
awaited before the status line is sent so they can be. After it, errors travel in-band."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from accounts import services as account_services
from accounts import throttles
from accounts.authentication import FAILED_TOKENS
from accounts.models import TokenScope
from providers.adapters import adapter_class
from providers.adapters.base import (
    Finished,
    ProviderError,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
)
from providers.capabilities import model_sees_images
from providers.gate import completion_stream, embedding_create
from providers.gateway import anthropic_wire, names, openai_wire
from providers.gateway.openai_wire import WireError
from providers.gateway.streams import Pump, encoded
from workbench import connections
from workbench.proxies import address_key, client_address

JSON = "application/json"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

# Gate error code → (HTTP status, OpenAI type, OpenAI code).
PROVIDER_ERRORS = {
    "budget_exceeded": (429, "insufficient_quota", "insufficient_quota"),
    "too_many_calls": (429, "requests", "rate_limit_exceeded"),
    "rate_limited": (429, "requests", "rate_limit_exceeded"),
    "bad_request": (400, "invalid_request_error", None),
    "not_found": (404, "invalid_request_error", "model_not_found"),
    "inactive": (409, "invalid_request_error", "credential_inactive"),
    "key_unreadable": (409, "server_error", "key_unreadable"),
    "timeout": (504, "server_error", "timeout"),
}


def wire_error_for(exc: BaseException, name: str = "") -> tuple[WireError, dict]:
    """Our exceptions → the wire error (+ extra fields: the budget that refused the call)."""
    if isinstance(exc, WireError):
        return exc, {}
    if isinstance(exc, Http404 | names.UnknownModel):
        message = f"The model `{name[:300]}` does not exist or you do not have access to it."
        return WireError(
            404, message, kind="invalid_request_error", code="model_not_found", param="model"
        ), {}
    if isinstance(exc, names.AmbiguousModel):
        return WireError(
            400, str(exc), kind="invalid_request_error", code="ambiguous_model", param="model"
        ), {}
    if isinstance(exc, PermissionDenied):
        message = str(exc) or "You may not use this model."
        return WireError(403, message, kind="permission_error", code="permission_denied"), {}
    if isinstance(exc, ProviderError):
        status, kind, code = PROVIDER_ERRORS.get(exc.code, (502, "api_error", exc.code))
        extra = {"usage_id": exc.usage_id}
        if exc.budget:
            extra["budget"] = exc.budget
        return WireError(status, exc.message, kind=kind, code=code or exc.code), extra
    raise exc


class Wire:
    """What differs between the two vendors' error bodies."""

    def __init__(self, body: Callable[..., bytes], *, anthropic: bool = False):
        self.body, self.anthropic = body, anthropic

    def response(self, error: WireError, **extra) -> HttpResponse:
        status = error.status
        if self.anthropic and error.kind == "insufficient_quota":
            status = 402  # Anthropic's billing_error
        response = HttpResponse(
            self.body(_as(error, status), **extra), status=status, content_type=JSON
        )
        if status not in (408, 409) and status < 500:
            response["x-should-retry"] = "false"  # the SDKs would retry a 429 on their own
        if status == 401:
            response["WWW-Authenticate"] = "Bearer"
        return response


def _as(error: WireError, status: int) -> WireError:
    if status == error.status:
        return error
    return WireError(status, error.message, kind=error.kind, code=error.code, param=error.param)


OPENAI = Wire(openai_wire.error_body)
ANTHROPIC = Wire(anthropic_wire.error_body, anthropic=True)


# --- Authentication --------------------------------------------------------------------------------


def _raw_token(request, *, anthropic: bool) -> str:
    header = request.headers.get("Authorization", "")
    keyword, _, raw = header.partition(" ")
    if keyword.lower() == "bearer" and raw.strip():
        return raw.strip()
    if anthropic:
        return request.headers.get("x-api-key", "").strip()
    return ""


def _check_token(raw: str, address: str):
    token = account_services.token_authenticate(raw=raw)
    if token is not None:
        return token
    counted = throttles.hit(FAILED_TOKENS, address_key(address))
    return counted.retry_after if counted.over(FAILED_TOKENS) else None


async def authenticate(request, wire: Wire, *, write: bool):
    """(user, None) or (None, an error response). A token checked in the last few seconds costs
    nothing (accounts.services.token_cached); otherwise one hop."""
    raw = _raw_token(request, anthropic=wire.anthropic)
    if not raw:
        return None, wire.response(
            WireError(
                401,
                "Send your Workbench API token (wb_…) as `Authorization: Bearer`.",
                kind="invalid_request_error",
                code="invalid_api_key",
            )
        )
    token = account_services.token_cached(raw=raw)
    if token is None:
        token = await connections.hop(_check_token)(raw, client_address(request))
    if not hasattr(token, "user"):
        if token is not None:  # seconds to wait: too many failed attempts from this address
            response = wire.response(
                WireError(
                    429,
                    "Too many failed token attempts; try again later.",
                    kind="requests",
                    code="rate_limit_exceeded",
                )
            )
            response["Retry-After"] = str(token)
            return None, response
        return None, wire.response(
            WireError(
                401,
                "Invalid, expired or revoked API token.",
                kind="invalid_request_error",
                code="invalid_api_key",
            )
        )
    if write and token.scope == TokenScope.READ:
        return None, wire.response(
            WireError(
                403,
                "This token is read-only; model calls need a read-write token.",
                kind="permission_error",
                code="read_only_token",
            )
        )
    return token.user, None


def _body(request):
    try:
        return orjson.loads(request.body or b"null")
    except orjson.JSONDecodeError:
        raise WireError(
            400, "The body is not valid JSON.", kind="invalid_request_error", code="invalid_json"
        ) from None


# --- Resolving a model for a call ------------------------------------------------------------------


def _resolve_for_call(user, name: str, uses: dict[str, bool]) -> names.Resolved:
    """The model, refusing parameters its adapter can't honour (400 naming the parameter)."""
    resolved = names.model_resolve(user=user, name=name)
    row = resolved.credential.preset_row
    adapter = adapter_class(row)
    refused = [
        param
        for param, used in uses.items()
        if used
        and (
            (param == "seed" and (not adapter.supports_seed or "no_seed" in row.quirks))
            or (param == "response_format" and not adapter.supports_response_format)
            or (param == "tools" and not adapter.supports_tools)
        )
    ]
    if refused:
        raise openai_wire.unsupported(refused[0], f" by {row.label} models")
    if uses.get("images") and not model_sees_images(
        credential=resolved.credential, model=resolved.model
    ):
        raise openai_wire.invalid(
            f"`{name[:300]}` does not take images (image_url parts); choose a vision model.",
            "messages",
            "image_input_not_supported",
        )
    return resolved


async def _start(user, name: str, request, uses: dict[str, bool]):
    """Open the gate's stream (the name is resolved in its prepare hop: one hop before the
    provider is called) and wait for its first event (errors before it raise here, as HTTP
    errors)."""

    def resolve():
        resolved = _resolve_for_call(user, name, uses)
        return resolved.credential, resolved.model

    events = completion_stream(
        user=user,
        credential_id=resolve,
        request=request,
        feature="api",
        context={"gateway": True},
    )
    pump = Pump(events)
    try:
        first = await pump.next_batch() or []
    except BaseException:
        await pump.aclose()
        raise
    return pump, first


async def _collect(pump: Pump, first: list) -> tuple[str, str, Finished, list[ToolCallDelta]]:
    text, thoughts, calls, finished = [], [], [], None
    batch: list | None = first
    try:
        while batch is not None:
            for event in batch:
                kind = type(event)
                if kind is TextDelta:
                    text.append(event.text)
                elif kind is ReasoningDelta:
                    thoughts.append(event.text)
                elif kind is ToolCallDelta:
                    calls.append(event)
                elif kind is Finished:
                    finished = event
            batch = await pump.next_batch()
    finally:
        await pump.aclose()
    return "".join(text), "".join(thoughts), finished, calls


# --- OpenAI ----------------------------------------------------------------------------------------


def _not_allowed(wire: Wire, method: str) -> HttpResponse:
    return wire.response(
        WireError(405, f"Use {method}.", kind="invalid_request_error", code="method_not_allowed")
    )


@csrf_exempt
async def chat_completions(request):
    if request.method != "POST":
        return _not_allowed(OPENAI, "POST")
    user, refusal = await authenticate(request, OPENAI, write=True)
    if refusal is not None:
        return refusal
    name = ""
    try:
        body = _body(request)
        if openai_wire.has_image_parts(body):  # decoding and re-encoding images: off the loop
            name, call = await asyncio.to_thread(openai_wire.parse_chat, body)
        else:
            name, call = openai_wire.parse_chat(body)
        uses = {
            "seed": call.uses_seed,
            "response_format": call.uses_response_format,
            "tools": call.uses_tools,
            "images": call.uses_images,
        }
        pump, first = await _start(user, name, call.request, uses)
    except Exception as exc:
        return _refuse(OPENAI, exc, name)
    if not call.stream:
        try:
            text, reasoning, finished, tool_calls = await _collect(pump, first)
        except Exception as exc:
            return _refuse(OPENAI, exc, name)
        return HttpResponse(
            openai_wire.completion(name, text, reasoning, finished, tool_calls),
            content_type=JSON,
        )
    chunks = openai_wire.ChunkEncoder(name)
    include_usage = call.include_usage

    def encode(batch: list) -> bytes:
        out = b""
        for event in batch:
            kind = type(event)
            if kind is TextDelta:
                out += chunks.delta(event.text)
            elif kind is ReasoningDelta:
                out += chunks.reasoning(event.text)
            elif kind is ToolCallDelta:
                out += chunks.tool_call(event)
            elif kind is Finished:
                out += chunks.tail(event, include_usage)
        return out

    def on_error(exc: Exception) -> bytes:
        error, extra = wire_error_for(exc, name)
        return chunks.error(error, **extra)

    return StreamingHttpResponse(
        encoded(first, pump, encode, on_error),
        content_type="text/event-stream; charset=utf-8",
        headers=SSE_HEADERS,
    )


def _refuse(wire: Wire, exc: Exception, name: str) -> HttpResponse:
    error, extra = wire_error_for(exc, name)
    return wire.response(error, **extra)


@csrf_exempt
async def models(request):
    if request.method != "GET":
        return _not_allowed(OPENAI, "GET")
    user, refusal = await authenticate(request, OPENAI, write=False)
    if refusal is not None:
        return refusal
    listed = await connections.hop(names.models_for_user)(user=user)
    return HttpResponse(openai_wire.model_list(listed), content_type=JSON)


@csrf_exempt
async def embeddings(request):
    if request.method != "POST":
        return _not_allowed(OPENAI, "POST")
    user, refusal = await authenticate(request, OPENAI, write=True)
    if refusal is not None:
        return refusal
    name = ""
    try:
        body = _body(request)
        name, inputs = openai_wire.parse_embeddings(body)
        resolved = await connections.hop(_resolve_for_call)(user, name, {})
        result, _ = await embedding_create(
            user=user,
            credential_id=resolved.credential_id,
            model=resolved.model,
            inputs=inputs,
            feature="api",
            context={"gateway": True},
        )
    except Exception as exc:
        return _refuse(OPENAI, exc, name)
    return HttpResponse(
        openai_wire.embeddings(
            name, result.vectors, result.input_tokens or 0, body.get("encoding_format") == "base64"
        ),
        content_type=JSON,
    )


# --- Anthropic -------------------------------------------------------------------------------------


@csrf_exempt
async def anthropic_messages(request):
    if request.method != "POST":
        return _not_allowed(ANTHROPIC, "POST")
    user, refusal = await authenticate(request, ANTHROPIC, write=True)
    if refusal is not None:
        return refusal
    name = ""
    try:
        name, completion, stream = anthropic_wire.parse_messages(_body(request))
        pump, first = await _start(user, name, completion, {})
    except Exception as exc:
        return _refuse(ANTHROPIC, exc, name)
    if not stream:
        try:
            text, reasoning, finished, _ = await _collect(pump, first)
        except Exception as exc:
            return _refuse(ANTHROPIC, exc, name)
        return HttpResponse(
            anthropic_wire.message(name, text, reasoning, finished), content_type=JSON
        )
    blocks = anthropic_wire.EventEncoder(name)
    head = [blocks.start()]

    def encode(batch: list) -> bytes:
        out = head.pop() if head else b""
        for event in batch:
            kind = type(event)
            if kind is TextDelta:
                out += blocks.delta(event.text)
            elif kind is ReasoningDelta:
                out += blocks.reasoning(event.text)
            elif kind is Finished:
                out += blocks.tail(event)
        return out

    def on_error(exc: Exception) -> bytes:
        error, extra = wire_error_for(exc, name)
        return blocks.error(error, **extra)

    return StreamingHttpResponse(
        encoded(first, pump, encode, on_error),
        content_type="text/event-stream; charset=utf-8",
        headers=SSE_HEADERS,
    )
