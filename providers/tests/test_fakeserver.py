"""The fake provider server, driven by the real SDKs over real HTTP (no database needed)."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import anthropic
import groq
import httpx
import httpx2
import ollama
import openai
import pytest

from providers.fakeserver import FakeProvider, tokenize

PROMPT = [{"role": "user", "content": "Say hello to me"}]  # 4 prompt tokens
SECRET = "sk-secret-4f9e1b"
CLAUDE = "claude-3-5-haiku-latest"  # the SDK warns about some names (claude-sonnet-4-5) in tests


@pytest.fixture(scope="module")
def server() -> Iterator[FakeProvider]:
    with FakeProvider() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeProvider) -> Iterator[FakeProvider]:
    server.reset()
    yield server
    server.reset()


def openai_client(fake: FakeProvider, **kwargs) -> openai.AsyncOpenAI:
    kwargs.setdefault("api_key", "sk-test")
    return openai.AsyncOpenAI(base_url=f"{fake.url}/v1", max_retries=0, **kwargs)


def anthropic_client(fake: FakeProvider, **kwargs) -> anthropic.AsyncAnthropic:
    kwargs.setdefault("api_key", "sk-ant-test")
    return anthropic.AsyncAnthropic(base_url=fake.url, max_retries=0, **kwargs)


def groq_client(fake: FakeProvider) -> groq.AsyncGroq:
    return groq.AsyncGroq(base_url=fake.url, api_key="gsk-test", max_retries=0)


async def openai_stream(client: openai.AsyncOpenAI, model: str = "gpt-4o-mini", **kwargs):
    return await client.chat.completions.create(
        model=model,
        messages=PROMPT,
        stream=True,
        stream_options={"include_usage": True},
        **kwargs,
    )


async def anthropic_stream(client: anthropic.AsyncAnthropic, **kwargs):
    return await client.messages.create(
        model=CLAUDE, max_tokens=100, messages=PROMPT, stream=True, **kwargs
    )


async def ollama_parts(fake: FakeProvider) -> AsyncIterator[ollama.ChatResponse]:
    async with ollama.AsyncClient(host=fake.url) as client:
        # The request only leaves when the stream is iterated, so errors show up here.
        async for part in await client.chat(model="llama3.2:3b", messages=PROMPT, stream=True):
            yield part


async def eventually(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """The server updates its counters on its own thread: wait a little for them."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


# --- happy paths, one per SDK ----------------------------------------------------------------------


async def test_openai_sdk_streams_the_reply_with_usage(fake):
    async with openai_client(fake) as client:
        chunks = [chunk async for chunk in await openai_stream(client)]

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the fake gpt-4o-mini! How can I help you today?"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    usage = chunks[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (4, len(tokenize(text)))
    assert usage.total_tokens == 4 + len(tokenize(text))


async def test_openai_sdk_gets_a_whole_completion_and_max_tokens_cuts_it(fake):
    fake.configure(reply="one two three four five")
    async with openai_client(fake) as client:
        whole = await client.chat.completions.create(model="gpt-4o", messages=PROMPT)
        cut = await client.chat.completions.create(model="gpt-4o", messages=PROMPT, max_tokens=2)

    assert whole.choices[0].message.content == "one two three four five"
    assert whole.choices[0].finish_reason == "stop"
    assert (whole.usage.prompt_tokens, whole.usage.completion_tokens) == (4, 5)
    assert cut.choices[0].message.content == "one two "
    assert cut.choices[0].finish_reason == "length"
    assert cut.usage.completion_tokens == 2


async def test_openai_sdk_lists_models_and_gets_deterministic_embeddings(fake):
    async with openai_client(fake) as client:
        models = await client.models.list()
        # The SDK asks for base64 unless told otherwise; both encodings carry the same floats.
        default = await client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
        floats = await client.embeddings.create(
            model="text-embedding-3-small", input="a", encoding_format="float"
        )
        wide = await client.embeddings.create(
            model="text-embedding-3-small", input="a", dimensions=64
        )

    assert [m.id for m in models.data] == ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]
    assert fake.requests[1].body["encoding_format"] == "base64"
    assert len(default.data) == 2 and len(default.data[0].embedding) == 16
    assert default.data[0].embedding == floats.data[0].embedding
    assert default.data[0].embedding != default.data[1].embedding
    assert len(wide.data[0].embedding) == 64
    assert default.usage.prompt_tokens == 2


async def test_groq_sdk_streams_with_usage_in_x_groq_and_in_the_usage_chunk(fake):
    async with groq_client(fake) as client:
        stream = await client.chat.completions.create(
            model="llama-3.1-8b-instant",
            messages=PROMPT,
            stream=True,
            extra_body={"stream_options": {"include_usage": True}},
        )
        chunks = [chunk async for chunk in stream]
        models = await client.models.list()

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "llama-3.1-8b-instant" in text
    finish = chunks[-2]
    assert finish.choices[0].finish_reason == "stop"
    assert finish.x_groq.usage.completion_tokens == len(tokenize(text))
    assert finish.x_groq.usage.prompt_tokens == 4
    assert chunks[-1].usage.completion_tokens == len(tokenize(text))
    assert fake.requests[0].path == "/openai/v1/chat/completions"
    assert [m.id for m in models.data] == ["llama-3.1-8b-instant"]


async def test_anthropic_sdk_streams_the_events_with_usage(fake):
    async with anthropic_client(fake) as client:
        events = [e async for e in await anthropic_stream(client, system="Be brief please")]

    assert [e.type for e in events[:2]] == ["message_start", "content_block_start"]
    assert [e.type for e in events[-3:]] == ["content_block_stop", "message_delta", "message_stop"]
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text == f"Hello from the fake {CLAUDE}! How can I help you today?"
    assert events[0].message.usage.input_tokens == 4 + 3  # messages + system
    assert events[-2].usage.output_tokens == len(tokenize(text))
    assert events[-2].delta.stop_reason == "end_turn"


async def test_anthropic_sdk_stream_helper_whole_message_and_model_list(fake):
    fake.configure(reply="alpha beta gamma")
    async with anthropic_client(fake) as client:
        async with client.messages.stream(
            model="claude-3-5-haiku-latest", max_tokens=100, messages=PROMPT
        ) as stream:
            final = await stream.get_final_message()
        cut = await client.messages.create(
            model="claude-3-5-haiku-latest", max_tokens=2, messages=PROMPT
        )
        models = [m async for m in client.models.list()]

    assert final.content[0].text == "alpha beta gamma"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (4, 3)
    assert (cut.content[0].text, cut.stop_reason) == ("alpha beta ", "max_tokens")
    assert [m.id for m in models] == ["claude-3-5-haiku-latest", "claude-sonnet-4-5"]


async def test_ollama_sdk_streams_ndjson_with_counts_on_the_done_line(fake):
    parts = [part async for part in ollama_parts(fake)]

    text = "".join(p.message.content for p in parts)
    assert text == "Hello from the fake llama3.2:3b! How can I help you today?"
    assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
    done = parts[-1]
    assert done.done_reason == "stop"
    assert (done.prompt_eval_count, done.eval_count) == (4, len(tokenize(text)))
    assert done.total_duration > 0 and done.eval_duration is not None


async def test_ollama_sdk_lists_shows_and_embeds(fake):
    async with ollama.AsyncClient(host=fake.url) as client:
        tags = await client.list()
        shown = await client.show("llama3.2:3b")
        embedded = await client.embed(model="nomic-embed-text", input=["x", "y"])
        with pytest.raises(ollama.ResponseError) as missing:
            await client.show("nope")
    async with httpx.AsyncClient() as http:
        version = (await http.get(f"{fake.url}/api/version")).json()

    assert [m.model for m in tags.models] == ["llama3.2:3b", "nomic-embed-text:latest"]
    assert tags.models[0].details.family == "llama"
    assert tags.models[0].details.parameter_size == "3.2B"
    assert shown.modelinfo["llama.context_length"] == 131072
    assert len(embedded.embeddings) == 2 and len(embedded.embeddings[0]) == 16
    assert missing.value.status_code == 404
    assert version["version"]


async def test_usage_off_sends_no_usage_anywhere(fake):
    fake.configure(usage=False)
    async with openai_client(fake) as client:
        openai_chunks = [c async for c in await openai_stream(client)]
    async with groq_client(fake) as client:
        stream = await client.chat.completions.create(
            model="llama-3.1-8b-instant", messages=PROMPT, stream=True
        )
        groq_chunks = [c async for c in stream]
    async with anthropic_client(fake) as client:
        events = [e async for e in await anthropic_stream(client)]
    ollama_done = [p async for p in ollama_parts(fake)][-1]

    assert all(c.usage is None and c.choices for c in openai_chunks)
    assert all(c.x_groq is None for c in groq_chunks)
    # Anthropic's types require usage (the SDK's stream helper breaks without it): zeros.
    assert events[0].message.usage.input_tokens == 0
    assert events[-2].usage.output_tokens == 0
    assert ollama_done.done and ollama_done.eval_count is None


# --- faults ----------------------------------------------------------------------------------------


async def test_rate_limit_shows_retry_after_through_each_sdk(fake):
    fake.configure(status=429, retry_after=2)
    async with openai_client(fake) as client:
        with pytest.raises(openai.RateLimitError) as openai_error:
            await openai_stream(client)
    async with groq_client(fake) as client:
        with pytest.raises(groq.RateLimitError) as groq_error:
            await client.chat.completions.create(model="llama-3.1-8b-instant", messages=PROMPT)
    async with anthropic_client(fake) as client:
        with pytest.raises(anthropic.RateLimitError) as anthropic_error:
            await anthropic_stream(client)
    with pytest.raises(ollama.ResponseError) as ollama_error:
        async for _ in ollama_parts(fake):
            pass

    assert openai_error.value.response.headers["retry-after"] == "2"
    assert groq_error.value.response.headers["retry-after"] == "2"
    assert anthropic_error.value.response.headers["retry-after"] == "2"
    assert anthropic_error.value.body["error"]["type"] == "rate_limit_error"
    assert ollama_error.value.status_code == 429


@pytest.mark.parametrize(
    ("status", "error"), [(500, openai.InternalServerError), (503, openai.InternalServerError)]
)
async def test_server_errors_reach_the_sdk_with_their_status(fake, status, error):
    fake.configure(status=status)
    async with openai_client(fake) as client:
        with pytest.raises(error) as caught:
            await client.chat.completions.create(model="gpt-4o", messages=PROMPT)
    assert caught.value.status_code == status


async def test_echo_auth_echoes_the_received_key_in_the_error_body(fake):
    fake.configure(echo_auth=True)
    async with openai_client(fake, api_key=SECRET) as client:
        with pytest.raises(openai.AuthenticationError) as openai_error:
            await openai_stream(client)
    async with anthropic_client(fake, api_key=SECRET) as client:
        with pytest.raises(anthropic.AuthenticationError) as anthropic_error:
            await anthropic_stream(client)

    assert SECRET in openai_error.value.body["message"]
    assert SECRET in json.dumps(anthropic_error.value.body)


async def test_stall_is_seen_by_a_short_read_timeout_and_counted_as_a_disconnect(fake):
    fake.configure(stall_after=2)
    async with openai_client(fake, timeout=0.3) as client:
        received = []
        with pytest.raises(openai.APITimeoutError):
            async for chunk in await openai_stream(client):
                received.append(chunk)

    assert "".join(c.choices[0].delta.content for c in received) == "Hello from "
    await eventually(lambda: fake.disconnects == 1 and fake.active_streams == 0)


async def test_disconnect_ends_each_stream_without_its_terminator(fake):
    fake.configure(disconnect_after=3)
    async with openai_client(fake) as client:
        with pytest.raises(openai.APIConnectionError):
            async for _ in await openai_stream(client):
                pass
    async with anthropic_client(fake) as client:
        with pytest.raises(httpx2.RemoteProtocolError):  # anthropic doesn't wrap it
            async for _ in await anthropic_stream(client):
                pass
    with pytest.raises(httpx.RemoteProtocolError):
        async for _ in ollama_parts(fake):
            pass

    assert fake.disconnects == 0  # the server hung up, not the clients


async def test_malformed_chunk_makes_each_sdk_raise(fake):
    fake.configure(malformed_after=1)
    async with openai_client(fake) as client:
        with pytest.raises(json.JSONDecodeError):
            async for _ in await openai_stream(client):
                pass
    async with anthropic_client(fake) as client:
        with pytest.raises(json.JSONDecodeError):
            async for _ in await anthropic_stream(client):
                pass
    with pytest.raises(json.JSONDecodeError):
        async for _ in ollama_parts(fake):
            pass


async def test_in_band_error_makes_each_sdk_raise(fake):
    fake.configure(error_event_after=2)
    async with openai_client(fake) as client:
        with pytest.raises(openai.APIError) as openai_error:
            async for _ in await openai_stream(client):
                pass
    async with groq_client(fake) as client:
        stream = await client.chat.completions.create(
            model="llama-3.1-8b-instant", messages=PROMPT, stream=True
        )
        with pytest.raises(groq.APIError):
            async for _ in stream:
                pass
    async with anthropic_client(fake) as client:
        with pytest.raises(anthropic.APIStatusError) as anthropic_error:
            async for _ in await anthropic_stream(client):
                pass
    with pytest.raises(ollama.ResponseError) as ollama_error:
        async for _ in ollama_parts(fake):
            pass

    assert openai_error.value.body["type"] == "server_error"
    assert anthropic_error.value.body["error"]["type"] == "overloaded_error"
    assert "fake" in ollama_error.value.error


async def test_redirect_is_followed_by_default_sdk_clients_and_refused_by_strict_ones(fake):
    fake.enqueue(redirect_to=f"{fake.url}/elsewhere/v1/chat/completions")
    async with openai_client(fake) as client:  # the SDK's own client follows redirects
        followed = await client.chat.completions.create(model="gpt-4o", messages=PROMPT)
    fake.enqueue(redirect_to="http://metadata.invalid/latest/")  # never resolves, never followed
    strict = httpx2.AsyncClient(follow_redirects=False)
    async with openai_client(fake, http_client=strict) as client:
        with pytest.raises(openai.APIStatusError) as refused:
            await client.chat.completions.create(model="gpt-4o", messages=PROMPT)

    assert "gpt-4o" in followed.choices[0].message.content
    assert [r.path for r in fake.requests[:2]] == [
        "/v1/chat/completions",
        "/elsewhere/v1/chat/completions",
    ]
    assert refused.value.status_code == 307
    assert refused.value.response.headers["location"] == "http://metadata.invalid/latest/"


async def test_enqueued_knobs_are_used_once_in_order_then_the_defaults(fake):
    fake.configure(reply="fine")
    fake.enqueue(status=429, retry_after=1)
    fake.enqueue(reply="second")
    async with openai_client(fake) as client:
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="gpt-4o", messages=PROMPT)
        await client.models.list()  # listings don't consume the queue
        second = await client.chat.completions.create(model="gpt-4o", messages=PROMPT)
        third = await client.chat.completions.create(model="gpt-4o", messages=PROMPT)

    assert second.choices[0].message.content == "second"
    assert third.choices[0].message.content == "fine"


# --- speed -----------------------------------------------------------------------------------------


async def test_ttft_and_tokens_per_second_pace_the_stream(fake):
    fake.configure(reply_tokens=20, tokens_per_second=100, ttft=0.05)
    async with openai_client(fake) as client:
        started = time.monotonic()
        stream = await openai_stream(client)
        arrivals = []
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append(time.monotonic() - started)

    assert len(arrivals) == 20
    assert arrivals[0] >= 0.05
    assert arrivals[-1] - arrivals[0] >= 0.185  # 19 gaps of 10 ms
    assert arrivals[-1] < 0.6


async def test_tokens_per_chunk_groups_tokens(fake):
    fake.configure(reply_tokens=10, tokens_per_chunk=4)
    async with openai_client(fake) as client:
        chunks = [c async for c in await openai_stream(client)]
    contents = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert [len(tokenize(text)) for text in contents] == [4, 4, 2]
    assert chunks[-1].usage.completion_tokens == 10


async def test_concurrent_streams_run_in_parallel(fake):
    fake.configure(reply_tokens=10, tokens_per_second=50)  # 0.18 s per stream
    peak = 0

    async def one(client: openai.AsyncOpenAI) -> int:
        nonlocal peak
        count = 0
        async for chunk in await openai_stream(client):
            peak = max(peak, fake.active_streams)
            count += bool(chunk.choices and chunk.choices[0].delta.content)
        return count

    async with openai_client(fake) as client:
        started = time.monotonic()
        counts = await asyncio.gather(*(one(client) for _ in range(20)))
        elapsed = time.monotonic() - started

    assert counts == [10] * 20
    assert peak > 1
    assert elapsed < 1.0  # serial would take 3.6 s


async def test_a_client_leaving_mid_stream_counts_as_a_disconnect(fake):
    fake.configure(reply_tokens=50, tokens_per_second=100)
    async with openai_client(fake) as client:
        stream = await openai_stream(client)
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                break
        await stream.close()

    await eventually(lambda: fake.disconnects == 1 and fake.active_streams == 0)


# --- routing, recording, control ------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/v1beta/openai", "/compatibility/v1", "/openai/v1/x/v1"])
async def test_openai_routes_match_by_path_suffix(fake, prefix):
    async with openai.AsyncOpenAI(
        base_url=f"{fake.url}{prefix}", api_key="k", max_retries=0
    ) as client:
        reply = await client.chat.completions.create(model="gemini-2.5-flash", messages=PROMPT)
    assert "gemini-2.5-flash" in reply.choices[0].message.content
    assert fake.requests[-1].path == f"{prefix}/chat/completions"


async def test_requests_are_recorded_with_headers_and_json_body(fake):
    async with openai_client(fake, api_key=SECRET) as client:
        await client.chat.completions.create(model="gpt-4o", messages=PROMPT, temperature=0.5)
    async with anthropic_client(fake, api_key=SECRET) as client:
        await client.messages.create(model=CLAUDE, max_tokens=5, messages=PROMPT)

    first, second = fake.requests
    assert (first.method, first.path) == ("POST", "/v1/chat/completions")
    assert first.headers["authorization"] == f"Bearer {SECRET}"
    assert first.body == {"messages": PROMPT, "model": "gpt-4o", "temperature": 0.5}
    assert first.at <= second.at
    # anthropic 2.x sends the key as a bearer token, not as x-api-key.
    assert second.headers["authorization"] == f"Bearer {SECRET}"
    assert "anthropic-version" in second.headers
    assert second.body["max_tokens"] == 5


def test_control_api_drives_the_server_from_another_process(fake):
    with httpx.Client(base_url=fake.url) as http:
        assert http.post("/_fake/configure", json={"reply": "from afar"}).json() == {"ok": True}
        http.post("/_fake/enqueue", json=[{"status": 503}, {"reply": "queued"}])
        bodies = [
            http.post("/v1/chat/completions", json={"model": "m", "messages": PROMPT})
            for _ in range(3)
        ]
        recorded = http.get("/_fake/requests").json()
        rejected = http.post("/_fake/configure", json={"tpss": 5})
        http.post("/_fake/reset", json={"reply_tokens": 1})
        after_reset = http.get("/_fake/requests").json()
        reset_reply = http.post("/v1/chat/completions", json={"model": "m"}).json()

    assert [b.status_code for b in bodies] == [503, 200, 200]
    assert [b.json()["choices"][0]["message"]["content"] for b in bodies[1:]] == [
        "queued",
        "from afar",
    ]
    assert [r["path"] for r in recorded["requests"]] == ["/v1/chat/completions"] * 3
    assert recorded["requests"][0]["body"]["model"] == "m"
    assert rejected.status_code == 400 and "tpss" in rejected.json()["error"]
    assert after_reset["requests"] == []
    assert reset_reply["choices"][0]["message"]["content"] == "lorem"


def test_unknown_or_bad_knobs_are_refused_at_once(fake):
    with pytest.raises(ValueError, match="tokens_per_secnd"):
        fake.configure(tokens_per_secnd=10)
    with pytest.raises(ValueError, match="tokens_per_chunk"):
        fake.enqueue(tokens_per_chunk=0)


def test_keep_alive_serves_several_requests_on_one_connection(fake):
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=2)
    try:
        sockets = []
        for _ in range(3):
            connection.request("GET", "/v1/models")
            response = connection.getresponse()
            assert response.status == 200 and json.loads(response.read())["object"] == "list"
            sockets.append(connection.sock)
    finally:
        connection.close()
    assert sockets[0] is not None and sockets.count(sockets[0]) == 3


def test_manage_py_fakeprovider_prints_urls_and_stops_on_ctrl_c():
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "manage.py", "fakeprovider", "--port", "0", "--reply", "hi there"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        url = first_line.rsplit(" ", 1)[-1].strip()
        assert url.startswith("http://127.0.0.1:"), first_line
        reply = httpx.post(f"{url}/v1/chat/completions", json={"model": "m"}).json()
        assert reply["choices"][0]["message"]["content"] == "hi there"
        process.send_signal(signal.SIGINT)
        process.wait(timeout=5)
        output = first_line + process.stdout.read()
    finally:
        process.kill()
        process.stdout.close()
    assert f"OpenAI-compatible  {url}/v1" in output
    assert "stopped" in output
    assert process.returncode == 0


# --- Wire quirks and broken answers (issue 8) ---------------------------------------------------------


def raw_chat(fake, path="/v1/chat/completions", **body) -> tuple[http.client.HTTPResponse, bytes]:
    """One chat request over a plain socket: the bytes as the server wrote them."""
    body = {"model": "gpt-4o-mini", "messages": PROMPT, "stream": True, **body}
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    connection.request("POST", path, json.dumps(body), {"content-type": "application/json"})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response, data


def test_crlf_keepalive_comments_and_byte_chunks_are_on_the_wire(fake):
    fake.configure(reply="Grüße 😀", crlf=True, keepalive=10, chunk_bytes=3)
    response, data = raw_chat(fake, stream_options={"include_usage": True})
    assert response.headers["transfer-encoding"] == "chunked"
    text = data.decode()
    assert ": keep-alive\r\n\r\n" in text
    assert "\n" not in text.replace("\r\n", "")  # every line ends with CRLF
    assert text.endswith("data: [DONE]\r\n\r\n")
    assert "Grüße " in text and "😀" in text  # whole again once the chunks are joined


def test_keepalive_comments_are_sent_while_the_first_token_is_awaited(fake):
    fake.configure(ttft=0.5, keepalive=0.1)
    _, data = raw_chat(fake)
    assert data.decode().count(": keep-alive") >= 3


def test_the_html_page_and_the_ignored_stream_answer_200_with_the_wrong_body(fake):
    fake.configure(html_page=True)
    response, data = raw_chat(fake)
    assert response.status == 200 and response.headers["content-type"].startswith("text/html")
    assert data.startswith(b"<!DOCTYPE html>")
    fake.configure(html_page=False, ignore_stream=True)
    response, data = raw_chat(fake)
    assert response.headers["content-type"] == "application/json"
    assert json.loads(data)["object"] == "chat.completion"


@pytest.mark.parametrize(
    ("path", "model", "last_word"),
    [
        ("/v1/chat/completions", "gpt-4o-mini", "[DONE]"),
        ("/v1/messages", CLAUDE, "message_stop"),
        ("/api/chat", "llama3.2:3b", '"done":true'),
    ],
)
def test_a_truncated_stream_ends_cleanly_without_its_finish(fake, path, model, last_word):
    fake.configure(reply_tokens=10, truncate_after=3)
    response, data = raw_chat(fake, path=path, model=model, max_tokens=100)
    assert response.status == 200
    text = data.decode()
    assert "lorem" in text and "dolor" in text and "sit" not in text
    assert last_word not in text
    assert 'finish_reason":"stop' not in text and "end_turn" not in text


def test_reasoning_streams_before_the_reply_in_each_format(fake):
    fake.configure(reasoning="Think first. ", reply="Answer.")
    _, data = raw_chat(fake, stream_options={"include_usage": True})
    text = data.decode()
    assert text.index('"reasoning_content":"Think ') < text.index('"content":"Answer."')
    assert '"completion_tokens_details":{"reasoning_tokens":2}' in text
    _, data = raw_chat(fake, path="/v1/messages", model=CLAUDE, max_tokens=100)
    text = data.decode()
    assert '"type":"thinking_delta","thinking":"Think ' in text
    assert text.index("thinking_delta") < text.index('"text":"Answer."')
    _, data = raw_chat(fake, path="/api/chat", model="llama3.2:3b")
    assert '"thinking":"Think ' in data.decode()


def test_cache_tokens_are_reported_the_openai_way_and_the_anthropic_way(fake):
    fake.configure(prompt_tokens=1200, cache_read_tokens=1000, cache_write_tokens=500)
    _, data = raw_chat(fake, stream=False)
    usage = json.loads(data)["usage"]
    assert usage["prompt_tokens"] == 1200
    assert usage["prompt_tokens_details"]["cached_tokens"] == 1000
    _, data = raw_chat(fake, path="/v1/messages", model=CLAUDE, max_tokens=100, stream=False)
    usage = json.loads(data)["usage"]
    assert usage["input_tokens"] == 1200
    assert (usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]) == (1000, 500)


async def test_an_endless_stream_ignores_max_tokens_until_the_client_leaves(fake):
    fake.configure(endless=True, tokens_per_chunk=5)
    client = openai_client(fake)
    stream = await openai_stream(client, max_tokens=10)
    words = 0
    async for chunk in stream:
        for choice in chunk.choices:
            words += len((choice.delta.content or "").split())
        if words >= 500:
            break
    await stream.close()
    await client.close()
    assert words >= 500
    for _ in range(40):
        if fake.disconnects:
            break
        await asyncio.sleep(0.05)
    assert fake.disconnects == 1


def test_new_knobs_are_checked(fake):
    for knobs in (
        {"chunk_bytes": 0},
        {"keepalive": 0},
        {"reasoning_field": "thoughts"},
        {"cache_read_tokens": -1},
        {"truncate_after": -1},
    ):
        with pytest.raises(ValueError):
            fake.configure(**knobs)


def test_anthropic_display_names_keep_the_dots_of_versions():
    """BUG 21: "Claude 3 5 Haiku"."""
    from providers.fakeserver.formats import anthropic_display_name

    assert anthropic_display_name("claude-3-5-haiku-20241022") == "Claude 3.5 Haiku"
    assert anthropic_display_name("claude-sonnet-4-5") == "Claude Sonnet 4.5"
    assert anthropic_display_name("claude-3-opus-20240229") == "Claude 3 Opus"
