"""The fake provider server: routes, knobs per request, pacing and faults, and its own thread."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from . import images
from .formats import ANTHROPIC, GROQ, OPENAI, Chat, ChatFormat
from .http import BadRequest, ClientGone, Connection, Request, read_request
from .knobs import Endless, Knobs, tokenize
from .ollama import OLLAMA

logger = logging.getLogger(__name__)


@dataclass
class RecordedRequest:
    """One request as the fake received it (control requests under /_fake/ are not recorded)."""

    method: str
    path: str  # without the query string
    query: str
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, else the raw text; None when empty
    at: float  # time.monotonic()


Handler = Callable[[Request, Connection, Any, Knobs], Awaitable[None]]


class FakeProvider:
    """A real HTTP/1.1 server on loopback that answers like OpenAI, Groq, Anthropic and Ollama.

    It runs its own event loop in a background thread, so sync tests, async tests (whatever their
    loop) and other processes can all call it. Routes match by path suffix, so any base URL
    prefix works (`/v1beta/openai/chat/completions`, `/compatibility/v1/chat/completions`).

    `configure(**knobs)` sets the defaults for every request; `enqueue(**knobs)` queues one-shot
    overrides consumed in FIFO order by the next chat/embedding requests (model listings never
    consume them). See `Knobs` for the knobs. `/_fake/configure`, `/_fake/enqueue`, `/_fake/reset`
    (POST, JSON knobs) and `GET /_fake/requests` do the same over HTTP.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        self.active_streams = 0  # streams being written right now
        self.disconnects = 0  # clients that went away before their stream ended
        self._defaults = Knobs()
        self._queue: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()  # defaults and queue are changed from other threads
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self._routes: list[tuple[str, str, Handler, Any, bool]] = [
            # (method, path suffix, handler, format, consumes enqueued knobs); first match wins.
            ("POST", "/api/chat", self._chat, OLLAMA, True),
            ("POST", "/api/embed", self._embeddings, OLLAMA, True),
            ("GET", "/api/tags", self._models, OLLAMA, False),
            ("POST", "/api/show", self._ollama_show, OLLAMA, False),
            ("GET", "/api/version", self._ollama_version, OLLAMA, False),
            ("POST", "/openai/v1/chat/completions", self._chat, GROQ, True),
            ("GET", "/openai/v1/models", self._models, GROQ, False),
            ("POST", "/chat/completions", self._chat, OPENAI, True),
            ("POST", "/embeddings", self._embeddings, OPENAI, True),
            ("POST", "/v1/messages", self._chat, ANTHROPIC, True),
            # Anthropic's /v1/models when the request carries `anthropic-version` (its SDK always does).
            ("GET", "/models", self._models, OPENAI, False),
        ]

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeProvider:
        """Bind and serve in a background thread; `.port` and `.url` are set on return."""
        if self._thread is not None:
            raise RuntimeError("FakeProvider already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._handle, self.host, self.port, backlog=1024)
                )
            except BaseException as exc:
                failure.append(exc)
                loop.close()
                ready.set()
                return
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=serve, name="fake-provider", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Close the listener and every open connection (stalled streams included), then join."""
        if self._thread is None or self._loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        with contextlib.suppress(TimeoutError):
            future.result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._thread = None

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- knobs -----------------------------------------------------------------------------------

    def configure(self, **knobs: Any) -> None:
        """Change the default knobs (merged over the current ones) for every later request."""
        with self._lock:
            self._defaults = self._defaults.merged(**knobs)

    def enqueue(self, **knobs: Any) -> None:
        """Queue one-shot knobs for the next chat/embedding request (FIFO, over the defaults)."""
        Knobs().merged(**knobs)  # fail now, not when a request consumes them
        with self._lock:
            self._queue.append(knobs)

    def reset(self) -> None:
        """Default knobs, an empty queue, no recorded requests, counters at zero."""
        with self._lock:
            self._defaults = Knobs()
            self._queue.clear()
            self.requests.clear()
            self.disconnects = 0

    def _next_knobs(self, consume: bool) -> Knobs:
        with self._lock:
            if consume and self._queue:
                return self._defaults.merged(**self._queue.popleft())
            return self._defaults

    # --- connections and routing -----------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        conn = Connection(reader, writer)
        try:
            while conn.keep_alive:
                try:
                    request = await read_request(reader)
                except BadRequest as exc:
                    conn.keep_alive = False
                    await conn.send_json(400, {"error": {"message": str(exc)}})
                    break
                if request is None:
                    break
                conn.keep_alive = request.keep_alive
                await self._dispatch(request, conn)
        except (ConnectionError, ClientGone):
            pass
        except Exception:
            logger.exception("fake provider: unexpected error")
        finally:
            self._connections.discard(task)
            writer.close()

    async def _dispatch(self, request: Request, conn: Connection) -> None:
        if request.path.startswith("/_fake/"):
            await self._control(request, conn)
            return
        self._record(request)
        path = request.path.rstrip("/")
        for method, suffix, handler, fmt, consumes in self._routes:
            if request.method == method and path.endswith(suffix):
                if fmt is OPENAI and suffix == "/models" and "anthropic-version" in request.headers:
                    fmt = ANTHROPIC
                knobs = self._next_knobs(consumes)
                if not await self._refuse(request, conn, fmt, knobs):
                    await handler(request, conn, fmt, knobs)
                return
        message = f"Invalid URL: the fake provider has no route for {request.method} {request.path}"
        error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
        await conn.send_json(404, {"error": error})

    def _record(self, request: Request) -> None:
        body = request.json()
        if body is None and request.body:
            body = request.body.decode("utf-8", "replace")
        recorded = RecordedRequest(
            request.method,
            request.path,
            request.query,
            dict(request.headers),
            body,
            time.monotonic(),
        )
        self.requests.append(recorded)

    def _request_headers(self) -> dict[str, str]:
        request_id = f"req_fake{next(self._ids)}"
        return {"x-request-id": request_id, "request-id": request_id}

    async def _refuse(self, request: Request, conn: Connection, fmt: Any, knobs: Knobs) -> bool:
        """Answer the request-level faults (redirect, echo_auth, status); True when answered."""
        headers = self._request_headers()
        if knobs.redirect_to:
            headers["location"] = knobs.redirect_to
            await conn.send(307, headers=headers)
            return True
        if knobs.echo_auth:
            # Deliberately leaks what it got, so tests can prove keys never reach users.
            got = {
                k: request.headers[k]
                for k in ("authorization", "x-api-key")
                if k in request.headers
            }
            message = f"Incorrect API key provided: {got}"
            await conn.send_json(401, fmt.error_body(401, message), headers)
            return True
        if knobs.status is not None and not 200 <= knobs.status < 300:
            if knobs.retry_after is not None:
                retry = knobs.retry_after
                headers["retry-after"] = str(int(retry) if retry == int(retry) else retry)
            message = knobs.error_message or f"Fake error {knobs.status} (knob `status`)"
            await conn.send_json(knobs.status, fmt.error_body(knobs.status, message), headers)
            return True
        return False

    async def _bad_request(self, conn: Connection, fmt: Any, message: str) -> None:
        await conn.send_json(400, fmt.error_body(400, message), self._request_headers())

    # --- chat ------------------------------------------------------------------------------------

    async def _chat(
        self, request: Request, conn: Connection, fmt: ChatFormat, knobs: Knobs
    ) -> None:
        body = request.json()
        if not isinstance(body, dict):
            await self._bad_request(conn, fmt, "The body must be a JSON object.")
            return
        params = fmt.parse_chat(body)
        image_count, problem = images.check(fmt.name, body)
        if problem is None and image_count and not knobs.vision:
            problem = f"The model {params.model!r} does not support image input."
        if problem is not None:
            await self._bad_request(conn, fmt, problem)
            return
        if knobs.html_page:
            page = b"<!DOCTYPE html><html><head><title>Welcome</title></head><body><h1>It works!</h1></body></html>"
            await conn.send(200, page, content_type="text/html; charset=utf-8")
            return
        tokens = tokenize(knobs.reply_for(params.model))
        reasoning = tokenize(knobs.reasoning_text())
        number = next(self._ids)
        tool_call = None
        if hasattr(fmt, "tool_call_for"):
            tool_call = fmt.tool_call_for(body, f"call_fake{number}")
        if tool_call is not None:  # the arguments, streamed in pieces of 8 characters
            arguments = tool_call["arguments"]
            tokens = [arguments[i : i + 8] for i in range(0, len(arguments), 8)] or [""]
            reasoning = []
        limit = params.max_tokens
        truncated = isinstance(limit, int) and 0 <= limit < len(reasoning) + len(tokens)
        if truncated:  # max_tokens counts the thinking too
            reasoning, tokens = reasoning[:limit], tokens[: max(0, limit - len(reasoning))]
        if knobs.endless and params.stream and not knobs.ignore_stream:
            tokens, truncated = Endless(), False  # ignores max_tokens
        chat = Chat(
            id=f"{fmt.id_prefix}{number}",
            model=params.model,
            tokens=tokens,
            prompt_tokens=(
                knobs.prompt_tokens if knobs.prompt_tokens is not None else params.prompt_tokens
            ),
            truncated=truncated,
            usage=knobs.usage,
            include_usage=params.include_usage,
            started=request.received_at,
            reasoning=reasoning,
            reasoning_field=knobs.reasoning_field,
            cache_read=knobs.cache_read_tokens,
            cache_write=knobs.cache_write_tokens,
            tool_call=tool_call,
        )
        if params.stream and not knobs.ignore_stream:
            await self._stream(conn, fmt, chat, knobs)
        else:
            chat.first_token_at = chat.started + knobs.ttft
            reply = lambda now: fmt.completion(chat, now)  # noqa: E731
            n_tokens = len(chat.tokens) + len(chat.reasoning)
            await self._whole(conn, fmt, knobs, request, n_tokens, reply)

    async def _stream(self, conn: Connection, fmt: ChatFormat, chat: Chat, knobs: Knobs) -> None:
        """Write the reply chunk by chunk on an absolute schedule (reasoning tokens first, then
        the reply), with the wire quirks the knobs ask for, or break it as a fault says."""
        loop = asyncio.get_running_loop()
        first_due = chat.started + knobs.ttft
        tps, per_chunk = knobs.tokens_per_second, knobs.tokens_per_chunk
        fault = knobs.stream_fault()
        wire = _Wire(conn, fmt, knobs)
        thinking = len(chat.reasoning)
        self.active_streams += 1
        try:
            await conn.start_stream(200, fmt.stream_type, self._request_headers())
            if head := fmt.stream_head(chat):
                await wire.write(head)
            sent = chunks = 0
            while sent < thinking + len(chat.tokens) and not (fault and chunks == fault[1]):
                # A chunk is all reasoning or all reply.
                if sent < thinking:
                    piece = chat.reasoning[sent : min(sent + per_chunk, thinking)]
                else:
                    piece = chat.tokens[sent - thinking : sent - thinking + per_chunk]
                # A chunk leaves when its last token is "generated": token i is due at ttft + i/tps.
                due = first_due + ((sent + len(piece) - 1) / tps if tps else 0.0)
                await wire.wait_until(due)
                if chat.first_token_at is None:
                    chat.first_token_at = loop.time()
                text = "".join(piece)
                if sent < thinking:
                    await wire.write(fmt.stream_reasoning(chat, text), keepalive=True)
                    chat.reasoning_sent += len(piece)
                else:
                    await wire.write(fmt.stream_delta(chat, text, first=sent == 0), keepalive=True)
                sent += len(piece)
                chunks += 1
            if sent == 0:
                await wire.wait_until(first_due)
            if fault is None:
                await wire.write(fmt.stream_tail(chat, sent, loop.time()))
                await conn.end_stream()
            elif fault[0] == "stall":
                await conn.wait_until_gone()
                raise ClientGone
            elif fault[0] == "disconnect":
                await conn.close()  # no terminating chunk: the body ends early
            elif fault[0] == "truncate":
                await conn.end_stream()  # a clean end, but no finish reason / [DONE] / message_stop
            else:
                broken = fault[0] == "malformed"
                await wire.write(fmt.stream_malformed(chat) if broken else fmt.stream_error(chat))
                await conn.end_stream()
        except (ClientGone, ConnectionError):
            self.disconnects += 1
            conn.keep_alive = False
        finally:
            self.active_streams -= 1

    async def _whole(
        self,
        conn: Connection,
        fmt: Any,
        knobs: Knobs,
        request: Request,
        n_tokens: int,
        make_body: Callable[[float], dict[str, Any]],
    ) -> None:
        """A whole JSON reply after the time the tokens would have taken; faults replace it."""
        loop = asyncio.get_running_loop()
        tps = knobs.tokens_per_second
        due = request.received_at + knobs.ttft + ((n_tokens - 1) / tps if tps and n_tokens else 0)
        await asyncio.sleep(max(0.0, due - loop.time()))
        headers = self._request_headers()
        fault = knobs.stream_fault()
        if fault is None:
            await conn.send_json(200, make_body(loop.time()), headers)
        elif fault[0] == "stall":
            await conn.wait_until_gone()
            self.disconnects += 1
            conn.keep_alive = False
        elif fault[0] == "disconnect":
            await conn.close()
        elif fault[0] == "malformed":
            await conn.send(200, b'{"id":"broken","object":', headers=headers)
        elif fault[0] == "truncate":
            await conn.send_json(200, _without_finish(make_body(loop.time())), headers)
        else:
            message = "The fake server had an error (knob `error_event_after`)."
            await conn.send_json(500, fmt.error_body(500, message), headers)

    # --- models and embeddings -------------------------------------------------------------------

    async def _models(self, request: Request, conn: Connection, fmt: Any, knobs: Knobs) -> None:
        await conn.send_json(200, fmt.model_list(knobs), self._request_headers())

    async def _embeddings(self, request: Request, conn: Connection, fmt: Any, knobs: Knobs) -> None:
        body = request.json()
        if not isinstance(body, dict) or not body.get("input"):
            await self._bad_request(conn, fmt, "`input` is required.")
            return
        await self._whole(conn, fmt, knobs, request, 0, lambda now: fmt.embeddings(body, knobs))

    async def _ollama_show(
        self, request: Request, conn: Connection, fmt: Any, knobs: Knobs
    ) -> None:
        body = request.json()
        body = body if isinstance(body, dict) else {}
        name = str(body.get("model") or body.get("name") or "")
        shown = fmt.show(name, knobs)
        if shown is None:
            await conn.send_json(404, {"error": f"model '{name}' not found"})
        else:
            await conn.send_json(200, shown)

    async def _ollama_version(
        self, request: Request, conn: Connection, fmt: Any, knobs: Knobs
    ) -> None:
        await conn.send_json(200, {"version": "0.12.0"})

    # --- control API -----------------------------------------------------------------------------

    async def _control(self, request: Request, conn: Connection) -> None:
        action = request.path.removeprefix("/_fake/").strip("/")
        body = request.json()
        try:
            if (request.method, action) == ("GET", "requests"):
                await conn.send_json(200, self.snapshot())
                return
            if (request.method, action) == ("POST", "configure"):
                self.configure(**(body or {}))
            elif (request.method, action) == ("POST", "enqueue"):
                for knobs in body if isinstance(body, list) else [body or {}]:
                    self.enqueue(**knobs)
            elif (request.method, action) == ("POST", "reset"):
                self.reset()
                self.configure(**(body or {}))
            else:
                await conn.send_json(404, {"error": f"no control {request.method} /_fake/{action}"})
                return
        except (TypeError, ValueError) as exc:
            await conn.send_json(400, {"error": str(exc)})
            return
        await conn.send_json(200, {"ok": True})

    def snapshot(self) -> dict[str, Any]:
        """Recorded requests and counters, as `GET /_fake/requests` returns them."""
        return {
            "requests": [dataclasses.asdict(r) for r in list(self.requests)],
            "active_streams": self.active_streams,
            "disconnects": self.disconnects,
        }


def _without_finish(body: dict[str, Any]) -> dict[str, Any]:
    """A whole completion cut short: no finish reason, no usage (the `truncate_after` fault)."""
    body = dict(body)
    body.pop("usage", None)
    for key in ("stop_reason", "done_reason"):
        if key in body:
            body[key] = None
    if "done" in body:
        body["done"] = False
    if isinstance(body.get("choices"), list):
        body["choices"] = [{**choice, "finish_reason": None} for choice in body["choices"]]
    return body


class _Wire:
    """Writes a stream the way the knobs say real providers do: CRLF line ends, HTTP chunks cut
    every n bytes (mid-character), keep-alive comments before chunks and while waiting."""

    def __init__(self, conn: Connection, fmt: Any, knobs: Knobs) -> None:
        self.conn, self.knobs = conn, knobs
        self.ping = {
            "openai": b": keep-alive\n\n",
            "groq": b": keep-alive\n\n",
            "anthropic": b'event: ping\ndata: {"type":"ping"}\n\n',
        }.get(fmt.name, b"")

    async def write(self, data: bytes, *, keepalive: bool = False) -> None:
        if keepalive and self.knobs.keepalive is not None:
            data = self.ping + data
        if self.knobs.crlf:
            data = data.replace(b"\n", b"\r\n")
        size = self.knobs.chunk_bytes
        if size is None:
            await self.conn.write_chunk(data)
            return
        for start in range(0, len(data), size):
            await self.conn.write_chunk(data[start : start + size])

    async def wait_until(self, due: float) -> None:
        """Sleep until `due` (loop time) — sending keep-alive comments meanwhile if asked."""
        loop = asyncio.get_running_loop()
        interval = self.knobs.keepalive
        while interval is not None and self.ping and due - loop.time() > interval:
            await asyncio.sleep(interval)
            await self.write(self.ping)
        await asyncio.sleep(max(0.0, due - loop.time()))  # sleep(0) still yields


def run_forever(
    host: str = "127.0.0.1",
    port: int = 9100,
    *,
    on_ready: Callable[[FakeProvider], None] | None = None,
    **knobs: Any,
) -> None:
    """Serve in the foreground until Ctrl-C (for `manage.py fakeprovider` and scripts)."""
    provider = FakeProvider(host, port)
    if knobs:
        provider.configure(**knobs)
    provider.start()
    thread = provider._thread
    try:
        if on_ready is not None:
            on_ready(provider)
        while thread is not None and thread.is_alive():
            thread.join(0.5)  # a short join keeps Ctrl-C responsive
    except KeyboardInterrupt:
        pass
    finally:
        provider.stop()
