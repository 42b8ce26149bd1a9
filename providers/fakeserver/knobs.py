"""What the fake provider replies, how fast, and how it misbehaves.

`Knobs` is immutable: `FakeProvider.configure()` replaces the defaults with a merged copy and each
enqueued entry is merged over the defaults when a request consumes it, so a request always sees one
consistent set of knobs even while a test reconfigures the server from another thread.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import struct
from dataclasses import dataclass, field
from typing import Any

# One token = one word with the whitespace that follows it (leading whitespace of the text rides on
# the first token), so joining the tokens gives back the exact text.
TOKEN_RE = re.compile(r"\s*\S+\s*")
WORD_RE = re.compile(r"\S+")

LOREM = (
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
)

FORMATS = ("openai", "anthropic", "groq", "ollama")

# Ollama entries are dicts because /api/tags and /api/show describe models in detail; a plain
# string there is accepted too (the family is guessed from the name).
DEFAULT_MODELS: dict[str, list[Any]] = {
    "openai": ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"],
    "anthropic": ["claude-3-5-haiku-latest", "claude-sonnet-4-5"],
    "groq": ["llama-3.1-8b-instant"],
    "ollama": [
        {
            "name": "llama3.2:3b",
            "family": "llama",
            "parameter_size": "3.2B",
            "quantization_level": "Q4_K_M",
            "size": 2019393189,
            "context_length": 131072,
            "embedding_length": 3072,
            "capabilities": ["completion", "tools"],
        },
        {
            "name": "nomic-embed-text:latest",
            "family": "nomic-bert",
            "parameter_size": "137M",
            "quantization_level": "F16",
            "size": 274302450,
            "context_length": 2048,
            "embedding_length": 768,
            "capabilities": ["embedding"],
        },
    ],
}

# Faults that cut a stream short, in the order used to break a tie on the same chunk count.
STREAM_FAULTS = (
    "stall_after",
    "disconnect_after",
    "malformed_after",
    "error_event_after",
    "truncate_after",
)
REASONING_FIELDS = ("reasoning_content", "reasoning")


@dataclass(frozen=True)
class Knobs:
    """Behaviour of the fake for one request.

    Speed: `ttft` seconds before the first token; `tokens_per_second` paces tokens on an absolute
    schedule (token i is due at ttft + i/tps, so there is no drift); None sends as fast as possible.
    Reply: `reply` (exact text) wins over `reply_tokens` (n lorem words); default mentions the model.
    `usage=False` removes usage reporting everywhere the wire format allows.
    `models` maps a format name to its model list; a missing format uses `DEFAULT_MODELS`.

    Faults: `status` (with `retry_after` seconds → `Retry-After`) answers with an error body in
    the route's format (its text: `error_message`, by default one naming the knob); `echo_auth` answers 401 echoing the received credentials; `redirect_to`
    answers 307. The `*_after=k` faults send k content chunks (a chunk = `tokens_per_chunk` tokens;
    all of them if the reply is shorter) and then stall until the client leaves / close the socket
    with no terminating chunk / send a chunk that is not JSON / send an in-band error in the
    format's style / end the body cleanly with no finish reason, `[DONE]` or `message_stop`
    (`truncate_after`); the earliest one wins. On non-streaming requests k is ignored and the
    fault replaces the response (hang, close, truncated JSON, a 500 error body, or the JSON cut
    to its content with no finish reason).

    Wire quirks real providers have: `crlf` ends SSE lines with CRLF; `chunk_bytes=n` cuts the
    body into HTTP chunks of n bytes (splitting UTF-8 characters and SSE events); `keepalive=s`
    sends a keep-alive comment (Anthropic: a `ping` event) before every chunk and every s seconds
    while waiting; `html_page` answers every chat request with a 200 HTML page; `ignore_stream`
    answers `stream: true` with one JSON completion; `endless` streams lorem words until the client
    leaves, ignoring max_tokens.

    Reasoning models: `reasoning` (text) or `reasoning_tokens` (n lorem words) is streamed before
    the reply, paced like it — OpenAI as `delta.<reasoning_field>` ("reasoning_content" like
    DeepSeek/vLLM, or "reasoning" like OpenRouter; Groq always "reasoning"), Anthropic as a
    `thinking` block, Ollama as `message.thinking` — and counted in the output tokens (OpenAI:
    `completion_tokens_details.reasoning_tokens`). Prompt caching: `prompt_tokens` overrides the
    counted prompt; `cache_read_tokens`/`cache_write_tokens` are reported OpenAI's way (cached
    tokens are part of `prompt_tokens`) or Anthropic's (`cache_read_input_tokens`,
    `cache_creation_input_tokens` beside `input_tokens`).

    Images: image parts (OpenAI `image_url` data URLs, Anthropic base64 `image` blocks, Ollama
    `images`) are checked like the real APIs do (malformed → 400); `vision=False` refuses any
    image like a text-only model.
    """

    ttft: float = 0.0
    tokens_per_second: float | None = None
    tokens_per_chunk: int = 1
    reply: str | None = None
    reply_tokens: int | None = None
    usage: bool = True
    models: dict[str, list[Any]] = field(default_factory=dict)
    embedding_dim: int = 16
    status: int | None = None
    error_message: str | None = None
    retry_after: float | None = None
    echo_auth: bool = False
    stall_after: int | None = None
    disconnect_after: int | None = None
    malformed_after: int | None = None
    error_event_after: int | None = None
    truncate_after: int | None = None
    redirect_to: str | None = None
    crlf: bool = False
    chunk_bytes: int | None = None
    keepalive: float | None = None
    html_page: bool = False
    ignore_stream: bool = False
    endless: bool = False
    reasoning: str | None = None
    reasoning_tokens: int | None = None
    reasoning_field: str = "reasoning_content"
    prompt_tokens: int | None = None
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    vision: bool = True  # False: refuse image parts like a text-only model (a 400)

    def merged(self, **changes: Any) -> Knobs:
        """A copy with `changes` applied; unknown names or bad values raise ValueError."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"unknown knob(s): {', '.join(unknown)}")
        knobs = dataclasses.replace(self, **changes)
        knobs.validate()
        return knobs

    def validate(self) -> None:
        if self.ttft < 0:
            raise ValueError("ttft must be >= 0")
        if self.tokens_per_second is not None and self.tokens_per_second <= 0:
            raise ValueError("tokens_per_second must be > 0 (or None for unpaced)")
        if self.tokens_per_chunk < 1:
            raise ValueError("tokens_per_chunk must be >= 1")
        if self.reply_tokens is not None and self.reply_tokens < 0:
            raise ValueError("reply_tokens must be >= 0")
        if self.embedding_dim < 1:
            raise ValueError("embedding_dim must be >= 1")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError("status must be an HTTP status code")
        if not isinstance(self.models, dict) or set(self.models) - set(FORMATS):
            raise ValueError(f"models must map some of {', '.join(FORMATS)} to lists")
        for name in STREAM_FAULTS:
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.chunk_bytes is not None and self.chunk_bytes < 1:
            raise ValueError("chunk_bytes must be >= 1")
        if self.keepalive is not None and self.keepalive <= 0:
            raise ValueError("keepalive must be > 0 seconds")
        if self.reasoning_field not in REASONING_FIELDS:
            raise ValueError(f"reasoning_field must be one of {', '.join(REASONING_FIELDS)}")
        for name in ("reasoning_tokens", "prompt_tokens"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.cache_read_tokens < 0 or self.cache_write_tokens < 0:
            raise ValueError("cache token counts must be >= 0")

    def models_for(self, fmt: str) -> list[Any]:
        return self.models.get(fmt, DEFAULT_MODELS[fmt])

    def stream_fault(self) -> tuple[str, int] | None:
        """The fault that ends the stream first, as (name without `_after`, chunk count)."""
        set_faults = [(getattr(self, n), i, n) for i, n in enumerate(STREAM_FAULTS)]
        set_faults = [f for f in set_faults if f[0] is not None]
        if not set_faults:
            return None
        after, _, name = min(set_faults)
        return name.removesuffix("_after"), after

    def reply_for(self, model: str) -> str:
        if self.reply is not None:
            return self.reply
        if self.reply_tokens is not None:
            return lorem(self.reply_tokens)
        return f"Hello from the fake {model or 'model'}! How can I help you today?"

    def reasoning_text(self) -> str:
        if self.reasoning is not None:
            return self.reasoning
        if self.reasoning_tokens is not None:
            return lorem(self.reasoning_tokens)
        return ""


def lorem(n: int) -> str:
    return " ".join(LOREM[i % len(LOREM)] for i in range(n))


class Endless:
    """Lorem tokens without end (the `endless` knob): sliceable like the list of a reply."""

    def __len__(self) -> int:
        return 10**12

    def __getitem__(self, index: slice) -> list[str]:
        start, stop, _ = index.indices(len(self))
        return [LOREM[i % len(LOREM)] + " " for i in range(start, stop)]


def tokenize(text: str) -> list[str]:
    """Split text into the tokens the fake streams; `"".join(tokenize(t))` is `t` minus
    whitespace-only text."""
    return TOKEN_RE.findall(text)


def count_words(value: Any) -> int:
    """Prompt token count of a message content: a string, or a list of parts with `text`."""
    if isinstance(value, str):
        return len(WORD_RE.findall(value))
    if isinstance(value, list):
        return sum(count_words(part) for part in value)
    if isinstance(value, dict):
        return count_words(value.get("text") or value.get("content") or "")
    return 0


def prompt_tokens(messages: Any, system: Any = None) -> int:
    """Tokens over every message content plus a system prompt (Anthropic keeps it apart)."""
    total = count_words(system)
    if isinstance(messages, list):
        total += sum(count_words(m.get("content")) for m in messages if isinstance(m, dict))
    return total


def embedding_vector(text: str, dim: int) -> list[float]:
    """A deterministic unit vector derived from a hash of `text`.

    Values are rounded to float32 so the float and base64 (float32) encodings carry the same numbers.
    """
    raw: list[float] = []
    counter = 0
    while len(raw) < dim:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        raw.extend((byte - 127.5) / 127.5 for byte in digest)
        counter += 1
    raw = raw[:dim]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    packed = struct.pack(f"<{dim}f", *(x / norm for x in raw))
    return list(struct.unpack(f"<{dim}f", packed))


def embedding_bytes(vector: list[float]) -> bytes:
    return struct.pack(f"<{len(vector)}f", *vector)
