"""The fake provider server: a real HTTP server on loopback speaking OpenAI SSE, Anthropic SSE,
Ollama NDJSON and Groq's path, with speed and fault knobs (DESIGN §3 "Providers").

Used by tests (start one per module, `reset()` per test), `bench/` and `manage.py fakeprovider`::

    with FakeProvider() as fake:
        fake.configure(ttft=0.1, tokens_per_second=50)
        fake.enqueue(status=429, retry_after=1)  # the next chat call gets a 429, then 200s
        client = openai.AsyncOpenAI(base_url=f"{fake.url}/v1", api_key="sk-test")

Modules: `knobs` (what to reply, how fast, which faults), `http` (the HTTP/1.1 parser and writer),
`formats` (OpenAI, Groq and Anthropic wire formats), `ollama` (Ollama's native API), `server`
(`FakeProvider`: thread, routes, pacing, faults, control API).
"""

from .knobs import DEFAULT_MODELS, Knobs, tokenize
from .server import FakeProvider, RecordedRequest, run_forever

__all__ = ["DEFAULT_MODELS", "FakeProvider", "Knobs", "RecordedRequest", "run_forever", "tokenize"]
