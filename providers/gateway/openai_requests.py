"""OpenAI's chat-completions and embeddings request bodies, parsed server side.

Parsing is strict where it matters: a parameter we would silently drop (n > 1, logprobs, audio…)
is a clear 400 naming it, never a reply that ignored it; function tools and image parts are
parsed here and refused (400) by the view for models whose adapter can't carry them."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from providers import images
from providers.adapters.base import CompletionRequest, ImagePart, Message, ToolCall
from providers.gateway.errors import invalid, unsupported
from providers.validation import MAX_IMAGES

# Accepted and ignored: they change nothing about the reply (or only bookkeeping at OpenAI).
IGNORED = {"user", "metadata", "store", "service_tier", "parallel_tool_calls", "stream_options"}
HANDLED = {
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "n",
    "stream",
    "response_format",
    "tools",
    "tool_choice",
    "presence_penalty",
    "frequency_penalty",
    "logprobs",
    "top_logprobs",
}
ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
}
TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_TOOLS = 128
MAX_TOOL_CALLS = 128  # per assistant message
DATA_URL = re.compile(r"data:(image/[a-z0-9.+-]+);base64,", re.IGNORECASE)


def _content_of(content: Any, where: str, *, images_allowed: bool) -> tuple[str, list[bytes]]:
    """A message's text and the raw bytes of its image parts (data URLs; decoded and re-encoded
    later by `images_of`, off the event loop)."""
    if isinstance(content, str):
        return content, []
    if content is None:
        return "", []
    if not isinstance(content, list):
        raise invalid(f"{where}: content must be a string or a list of parts.", where)
    parts, found = [], []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise invalid(f"{where}[{index}]: a text part needs `text`.", where)
            parts.append(text)
        elif kind == "image_url" and images_allowed:
            found.append(_image_bytes(part.get("image_url"), f"{where}[{index}]"))
        elif kind == "image_url":
            raise invalid(f"{where}: only user messages carry images.", where)
        else:
            raise invalid(f"{where}[{index}]: only text and image_url parts are supported.", where)
    return "".join(parts), found


def _image_bytes(image_url: Any, where: str) -> bytes:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str):
        raise invalid(f"{where}: an image_url part needs `image_url.url`.", where)
    match = DATA_URL.match(url)
    if match is None:
        # Fetching a URL on the caller's behalf would make the gateway a way into our network.
        raise invalid(
            f"{where}: send the image inline as a base64 data URL "
            "(data:image/png;base64,…); Workbench does not fetch image URLs.",
            where,
            "image_url_not_supported",
        )
    encoded = url[match.end() :]
    if len(encoded) > images.MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise invalid(
            f"{where}: images can be at most {images.MAX_IMAGE_BYTES // 1048576} MB.", where
        )
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(f"{where}: the data URL is not valid base64.", where) from None


def images_of(raw: list[bytes], where: str) -> tuple[ImagePart, ...]:
    """Our own re-encoding of each image (providers.images): CPU work, run off the loop."""
    parts = []
    for data in raw:
        try:
            image = images.image_normalize(data)
        except images.ImageRefused as exc:
            raise invalid(f"{where}: {exc}", where, "invalid_image") from None
        parts.append(
            ImagePart(image.media_type, image.data, width=image.width, height=image.height)
        )
    return tuple(parts)


def has_image_parts(body: Any) -> bool:
    """Whether a chat body has image parts (cheap: decides whether parsing runs off the loop)."""
    messages = body.get("messages") if isinstance(body, dict) else None
    return isinstance(messages, list) and any(
        isinstance(message, dict)
        and isinstance(message.get("content"), list)
        and any(
            isinstance(part, dict) and part.get("type") == "image_url"
            for part in message["content"]
        )
        for message in messages
    )


def _tools_of(body: dict) -> tuple[tuple[dict, ...], str | dict | None]:
    tools = body.get("tools")
    if tools is None:
        tools = []
    if not isinstance(tools, list) or len(tools) > MAX_TOOLS:
        raise invalid(f"`tools` must be a list of at most {MAX_TOOLS} function tools.", "tools")
    checked, names = [], set()
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        function = tool.get("function") if isinstance(tool, dict) else None
        if (
            not isinstance(tool, dict)
            or tool.get("type") != "function"
            or not isinstance(function, dict)
        ):
            raise invalid(f'{where}: {{"type": "function", "function": {{…}}}}.', where)
        name = function.get("name")
        if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
            raise invalid(f"{where}.function.name: 1–64 letters, digits, _ or -.", where)
        if name in names:
            raise invalid(f"{where}.function.name: `{name}` is given twice.", where)
        names.add(name)
        spec: dict[str, Any] = {"name": name}
        for key, kind in (("description", str), ("parameters", dict), ("strict", bool)):
            value = function.get(key)
            if value is None:
                continue
            if not isinstance(value, kind):
                raise invalid(f"{where}.function.{key} has the wrong type.", where)
            spec[key] = value
        checked.append({"type": "function", "function": spec})
    choice = body.get("tool_choice")
    if choice is None:
        return tuple(checked), None
    if not checked:
        raise invalid("`tool_choice` needs `tools`.", "tool_choice")
    if choice in ("none", "auto", "required"):
        return tuple(checked), choice
    function = choice.get("function") if isinstance(choice, dict) else None
    if (
        not isinstance(choice, dict)
        or choice.get("type") != "function"
        or not isinstance(function, dict)
        or function.get("name") not in names
    ):
        raise invalid(
            '`tool_choice`: "none", "auto", "required" or '
            '{"type": "function", "function": {"name": <one of the tools>}}.',
            "tool_choice",
        )
    return tuple(checked), {"type": "function", "function": {"name": function["name"]}}


def _tool_calls_of(calls: Any, where: str) -> tuple[ToolCall, ...]:
    if calls is None:
        return ()
    if not isinstance(calls, list) or len(calls) > MAX_TOOL_CALLS:
        raise invalid(f"{where}.tool_calls must be a list of function calls.", where)
    out = []
    for index, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if (
            not isinstance(call, dict)
            or call.get("type", "function") != "function"
            or not isinstance(call.get("id"), str)
            or not call["id"]
            or not isinstance(function, dict)
            or not isinstance(function.get("name"), str)
            or not isinstance(function.get("arguments", ""), str)
        ):
            raise invalid(
                f"{where}.tool_calls[{index}]: "
                '{"id", "type": "function", "function": {"name", "arguments"}}.',
                where,
            )
        out.append(ToolCall(call["id"], function["name"], function.get("arguments", "")))
    return tuple(out)


@dataclass(frozen=True)
class ChatCall:
    request: CompletionRequest
    stream: bool
    include_usage: bool
    uses_seed: bool
    uses_response_format: bool
    uses_tools: bool = False
    uses_images: bool = False


def _number(body: dict, name: str, kind=(int, float)):
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kind):
        raise invalid(f"`{name}` must be a number.", name)
    return value


def parse_chat(body: Any) -> tuple[str, ChatCall]:
    """The model name and the call a chat-completions body asks for."""
    if not isinstance(body, dict):
        raise invalid("The body must be a JSON object.")
    for name in body:
        if name not in HANDLED and name not in IGNORED:
            raise unsupported(name)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("`model` is required: `<credential slug>/<model id>` or an alias.", "model")
    tools, tool_choice = _tools_of(body)
    if body.get("n") not in (None, 1):
        raise unsupported("n", " above 1")
    if body.get("logprobs") or body.get("top_logprobs"):
        raise unsupported("logprobs")
    for name in ("presence_penalty", "frequency_penalty"):
        if body.get(name) not in (None, 0, 0.0):
            raise unsupported(name)
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise invalid("`messages` must be a non-empty list.", "messages")
    messages, image_count = [], 0
    for index, message in enumerate(raw_messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise invalid(f"{where} must be an object.", where)
        role = ROLES.get(message.get("role"))
        if role is None:
            raise invalid(
                f"{where}.role: system, developer, user, assistant or tool.", f"{where}.role"
            )
        if message.get("function_call"):
            raise unsupported(f"{where}.function_call", " (use tool_calls)")
        text, raw_images = _content_of(
            message.get("content"), f"{where}.content", images_allowed=role == "user"
        )
        tool_calls = _tool_calls_of(message.get("tool_calls"), where) if role == "assistant" else ()
        if role != "assistant" and message.get("tool_calls"):
            raise invalid(f"{where}: only assistant messages carry tool_calls.", where)
        call_id = message.get("tool_call_id")
        if role == "tool" and (not isinstance(call_id, str) or not call_id):
            raise invalid(
                f"{where}.tool_call_id: the id of the call this answers.", f"{where}.tool_call_id"
            )
        image_count += len(raw_images)
        if image_count > MAX_IMAGES:  # before decoding any more of them
            raise invalid(f"`messages`: at most {MAX_IMAGES} images in one request.", where)
        messages.append(
            Message(
                role,
                text,
                images=images_of(raw_images, f"{where}.content") if raw_images else (),
                tool_calls=tool_calls,
                tool_call_id=call_id if role == "tool" else "",
            )
        )
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and (not isinstance(stop, list) or len(stop) > 4):
        raise invalid("`stop` must be a string or a list of at most 4 strings.", "stop")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)):
        raise invalid("`max_tokens` must be an integer.", "max_tokens")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise invalid("`seed` must be an integer.", "seed")
    response_format = body.get("response_format")
    if response_format is not None and not isinstance(response_format, dict):
        raise invalid("`response_format` must be an object.", "response_format")
    if response_format is not None and response_format.get("type") == "text":
        response_format = None  # the default: nothing to pass on
    options = body.get("stream_options")
    request = CompletionRequest(
        model="",  # filled in once the name is resolved
        messages=tuple(messages),
        temperature=_number(body, "temperature"),
        top_p=_number(body, "top_p"),
        max_tokens=max_tokens,
        stop=tuple(stop or ()),
        seed=seed,
        response_format=response_format,
        tools=tools,
        tool_choice=tool_choice,
    )
    uses_tools = bool(tools) or any(m.tool_calls or m.role == "tool" for m in messages)
    return model, ChatCall(
        request=request,
        stream=bool(body.get("stream")),
        include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
        uses_seed=seed is not None,
        uses_response_format=response_format is not None,
        uses_tools=uses_tools,
        uses_images=any(m.images for m in messages),
    )


def parse_embeddings(body: Any) -> tuple[str, list[str]]:
    if not isinstance(body, dict):
        raise invalid("The body must be a JSON object.")
    for name in body:
        if name not in {"model", "input", "encoding_format", "user", "dimensions"}:
            raise unsupported(name)
    if body.get("dimensions") is not None:
        raise unsupported("dimensions")
    if body.get("encoding_format") not in (None, "float", "base64"):
        raise invalid("`encoding_format`: float or base64.", "encoding_format")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("`model` is required.", "model")
    inputs = body.get("input")
    if isinstance(inputs, str):
        inputs = [inputs]
    if (
        not isinstance(inputs, list)
        or not inputs
        or len(inputs) > 2048
        or not all(isinstance(text, str) and text for text in inputs)
    ):
        raise invalid(
            "`input` must be a non-empty string or a list of at most 2048 non-empty strings "
            "(token arrays are not supported).",
            "input",
        )
    return model, inputs
