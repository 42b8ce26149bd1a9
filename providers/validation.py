"""Validation of completion requests, shared by the gate, the REST API and later the chat."""

from __future__ import annotations

import unicodedata

from providers.adapters.base import CompletionRequest, Message, ProviderError

ROLES = {"user", "assistant", "system", "tool"}
MAX_TOOLS = 128
RESPONSE_FORMATS = {"text", "json_object", "json_schema"}
MAX_MESSAGES = 5000
MAX_TOTAL_CHARS = 4_000_000  # ~1M tokens: far above any context window, far below memory trouble
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
MAX_IMAGES = 20  # per request (OpenAI and Anthropic take 20 or more; Ollama models fewer)
MAX_IMAGE_BYTES = 40 * 1024 * 1024  # all images of a request together


def model_id_problem(model) -> str | None:
    """Why `model` can't be a model id (None: it can). Ids are sent to providers as they are:
    no control characters, and no U+FFFD (what the text sanitizer left of a NUL or a lone
    surrogate)."""
    if not isinstance(model, str) or not model.strip() or len(model) > 200:
        return "give a model id (at most 200 characters)."
    if any(unicodedata.category(char) in ("Cc", "Cs") or char == "\ufffd" for char in model):
        return "a model id can't contain control characters."
    return None


def validate_request(request: CompletionRequest) -> CompletionRequest:
    """Return the request if it is well-formed; raise ProviderError("bad_request") naming the
    field otherwise. Never rewrites content."""

    def bad(message: str):
        raise ProviderError("bad_request", message)

    if (problem := model_id_problem(request.model)) is not None:
        bad(f"model: {problem}")
    if not request.messages:
        bad("messages: give at least one message.")
    if len(request.messages) > MAX_MESSAGES:
        bad(f"messages: at most {MAX_MESSAGES} messages.")
    total = len(request.system or "")
    for index, message in enumerate(request.messages):
        if (
            not isinstance(message, Message)
            or message.role not in ROLES
            or not isinstance(message.content, str)
        ):
            bad(f"messages[{index}]: role must be user, assistant or system, with text content.")
        total += len(message.content)
        if message.images and message.role != "user":
            bad(f"messages[{index}]: only user messages carry images.")
        if (message.role == "tool") != bool(message.tool_call_id):
            bad(f"messages[{index}]: a tool message answers one tool call (tool_call_id).")
        if message.tool_calls and message.role != "assistant":
            bad(f"messages[{index}]: only assistant messages carry tool calls.")
        total += sum(len(call.arguments) for call in message.tool_calls)
    images = [image for message in request.messages for image in message.images]
    if len(images) > MAX_IMAGES:
        bad(f"messages: at most {MAX_IMAGES} images in one request.")
    if any(image.media_type not in IMAGE_TYPES or not image.data for image in images):
        bad("messages: images must be PNG, JPEG, GIF or WebP.")
    if sum(len(image.data) for image in images) > MAX_IMAGE_BYTES:
        bad(f"messages: the images come to more than {MAX_IMAGE_BYTES // 1048576} MB.")
    if total > MAX_TOTAL_CHARS:
        bad("messages: the conversation is too long.")
    if request.temperature is not None and not 0 <= request.temperature <= 2:
        bad("temperature: between 0 and 2.")
    if request.top_p is not None and not 0 < request.top_p <= 1:
        bad("top_p: greater than 0 and at most 1.")
    if request.max_tokens is not None and not 1 <= request.max_tokens <= 1_000_000:
        bad("max_tokens: between 1 and 1,000,000.")
    if len(request.stop) > 4 or any(not isinstance(s, str) or not s for s in request.stop):
        bad("stop: at most 4 non-empty strings.")
    if request.response_format is not None and (
        not isinstance(request.response_format, dict)
        or request.response_format.get("type") not in RESPONSE_FORMATS
    ):
        bad('response_format: {"type": "text"}, {"type": "json_object"} or a json_schema.')
    if len(request.tools) > MAX_TOOLS or any(not isinstance(t, dict) for t in request.tools):
        bad(f"tools: at most {MAX_TOOLS} function tools.")
    if request.tool_choice is not None and not request.tools:
        bad("tool_choice: give tools to choose from.")
    if request.seed is not None and (
        not isinstance(request.seed, int) or isinstance(request.seed, bool)
    ):
        bad("seed: an integer.")
    return request
