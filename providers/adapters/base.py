"""What every adapter speaks: provider-neutral requests, events and errors.

Adapters translate one wire format; they never touch the ORM, billing or templates. The gate
(providers.gate) does everything around them: access, budgets, retries, timing, the usage row."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import ClassVar

from providers.presets import Preset

# --- Requests ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImagePart:
    """An image a user attached to a message, as the model receives it: bytes we re-encoded
    ourselves (providers.images), never what was uploaded. Adapters spell it in their wire format
    (OpenAI `image_url` data URL, Anthropic base64 `image` block, Ollama `images`)."""

    media_type: str  # image/png | image/jpeg
    data: bytes = field(repr=False)
    name: str = ""
    width: int = 0
    height: int = 0

    def base64(self) -> str:
        import base64

        return base64.b64encode(self.data).decode("ascii")

    def data_url(self) -> str:
        return f"data:{self.media_type};base64,{self.base64()}"


@dataclass(frozen=True)
class ToolCall:
    """A function call a model asked for, as a later request sends it back (OpenAI's shape:
    `arguments` is the JSON text the model wrote, unparsed)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Message:
    role: str  # system | user | assistant | tool
    content: str
    images: tuple[ImagePart, ...] = ()  # user messages only; sent only to vision models
    tool_calls: tuple[ToolCall, ...] = ()  # assistant messages: the calls the model made
    tool_call_id: str = ""  # tool messages: the call this is the result of


@dataclass(frozen=True)
class CompletionRequest:
    model: str
    messages: tuple[Message, ...]
    system: str = ""
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    # OpenAI's `response_format` ({"type": "json_object"} or a json_schema), for adapters with
    # `supports_response_format`; the gateway refuses it for the others.
    response_format: dict | None = None
    # OpenAI's function tools (`[{"type": "function", "function": {...}}]`, checked by the
    # gateway's parser) and `tool_choice`, for adapters with `supports_tools`; refused for others.
    tools: tuple[dict, ...] = ()
    tool_choice: str | dict | None = None

    def all_messages(self) -> list[Message]:
        """System prompt first (as a message), then the conversation."""
        head = [Message("system", self.system)] if self.system else []
        return head + list(self.messages)

    @property
    def has_images(self) -> bool:
        return any(message.images for message in self.messages)


# --- Events ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextDelta:
    text: str
    type: ClassVar[str] = "delta"


@dataclass(frozen=True)
class ReasoningDelta:
    """Text a reasoning model "thinks" before (or between) its answer. It keeps the call alive,
    is stored and shown apart from the answer, and its tokens are output tokens."""

    text: str
    type: ClassVar[str] = "reasoning"


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of a function call the model is making, as OpenAI streams it: the first piece of
    call `index` carries its `id` and `name`, the following ones more of `arguments` (JSON text).
    Only adapters with `supports_tools` emit it; the call then finishes with `tool_calls`."""

    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""
    type: ClassVar[str] = "tool_call"


@dataclass(frozen=True)
class Usage:
    """What the provider reported, whenever it reports it. Fields left None were not reported
    in this event; the gate merges events (a later value wins), so an adapter emits the input
    side as soon as it is known (Anthropic's message_start) and the output side at the end.
    Counts follow genai-prices: `input_tokens` includes cache reads and writes,
    `output_tokens` includes reasoning."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    type: ClassVar[str] = "usage"


@dataclass(frozen=True)
class Finished:
    """The last event of a successful call, after the usage row is settled."""

    reason: str  # stop | length | …
    usage_id: int
    input_tokens: int
    output_tokens: int
    tokens_estimated: bool
    cost: str | None  # decimal string, None = unpriced
    cost_source: str
    ttft_ms: float | None  # first token (reasoning included), retry back-off waits excluded
    duration_ms: float
    tokens_per_second: float | None
    attempts: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    retry_wait_ms: float = 0  # ttft_ms + retry_wait_ms: what the caller waited
    reasoning_ms: float | None = None  # first reasoning delta → first answer text ("thought for")
    type: ClassVar[str] = "finished"


@dataclass(frozen=True)
class StopReason:
    """Adapters emit this when the provider says why it stopped."""

    reason: str
    type: ClassVar[str] = "stop_reason"


Event = TextDelta | ReasoningDelta | ToolCallDelta | Usage | StopReason


# --- Errors ------------------------------------------------------------------------------------------

ERROR_CODES = {
    "rate_limited": "The provider is rate-limiting requests.",
    "auth_failed": "The provider rejected the API key.",
    "timeout": "The provider took too long to answer.",
    "unreachable": "Could not connect to the provider.",
    "bad_request": "The provider rejected the request.",
    "provider_error": "The provider returned an error.",
    "stream_interrupted": "The reply stream broke off before it finished.",
    "egress_denied": "Workbench refuses to connect to that address.",
    "budget_exceeded": "A budget does not allow this call.",
    "not_found": "The model or endpoint does not exist at this provider.",
    "key_unreadable": "The stored API key can't be decrypted; re-enter it.",
    "inactive": "This credential is deactivated.",
    "too_many_calls": "Too many of your model calls are running at once; try again shortly.",
    "forbidden": "You may not use this credential.",
    "cancelled": "The call was cancelled.",
    "access_denied": "You may not use this credential.",
    "reply_too_large": "The reply passed Workbench's maximum reply size.",
}


class ProviderError(Exception):
    """An error with a stable `code` (ERROR_CODES) and our own short `message` — never the
    provider's words: a provider's error body can echo the request, key included, in forms no
    pattern catches (reversed, base64, re-cased). What the provider said goes to `detail`,
    scrubbed of key-shaped text, for admins only (the usage row's admin field and the log)."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
        detail: str = "",
    ):
        self.code = code
        self.detail = detail
        self.message = message or ERROR_CODES.get(code, "The provider call failed.")
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status
        self.usage_id: int | None = None  # set by the gate once the usage row exists
        self.partial_text: str = ""  # what arrived before the error (set by the gate)
        self.partial_reasoning: str = ""
        self.budget: dict | None = None  # budget_exceeded: the budget that refused the call
        super().__init__(self.message)

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "retry_after": self.retry_after}


# --- Catalogue and embeddings ------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInfo:
    id: str
    kind: str = "chat"  # chat | embedding
    label: str = ""
    context_window: int | None = None
    family: str = ""
    size_bytes: int | None = None
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class EmbeddingResult:
    vectors: list[list[float]]
    input_tokens: int | None  # None when the provider did not report usage


# --- The adapter contract ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    read: float = 60.0  # idle time allowed between bytes/chunks
    total: float = 600.0


@dataclass(frozen=True)
class AdapterConfig:
    preset: Preset
    base_url: str
    api_key: str = field(default="", repr=False)  # never in a repr, log or error
    organization: str = ""
    timeouts: Timeouts = Timeouts()
    egress_allow: tuple[str, ...] | None = None  # None: the instance allowlist (settings)
    resolver: object | None = None  # tests inject a resolver into the egress guard
    # Reuse SDK clients across calls on this event loop (keep-alive). Off for one-off calls from
    # sync code, whose event loop ends with the call.
    reuse_clients: bool = True


class Adapter:
    """One wire format. Subclasses set the capability flags and implement the coroutines."""

    supports_embeddings: ClassVar[bool] = False
    supports_seed: ClassVar[bool] = True
    supports_response_format: ClassVar[bool] = False
    # Function tools in, ToolCallDelta events out (and tool/assistant-call messages understood).
    supports_tools: ClassVar[bool] = False
    # The wire format can carry image parts; which models see them is preset data
    # (`Preset.vision_models`, see providers.capabilities).
    supports_vision: ClassVar[bool] = False
    network: ClassVar[bool] = True

    def __init__(self, config: AdapterConfig):
        self.config = config
        self.preset = config.preset

    def has_quirk(self, name: str) -> bool:
        return name in self.preset.quirks

    def stream(self, request: CompletionRequest) -> AsyncIterator[Event]:
        """Yield TextDelta / ReasoningDelta / Usage / StopReason events; raise ProviderError on
        failure. A stream that ends without a StopReason was cut short (the gate makes it
        `stream_interrupted`), so emit one only when the provider said it finished."""
        raise NotImplementedError

    async def list_models(self) -> list[ModelInfo]:
        if self.preset.static_models:
            return [ModelInfo(id=model_id) for model_id in self.preset.static_models]
        raise NotImplementedError

    async def embed(self, model: str, inputs: list[str]) -> EmbeddingResult:
        raise ProviderError("bad_request", f"{self.preset.label} does not offer embeddings here.")

    async def aclose(self) -> None:
        """Release HTTP clients."""
