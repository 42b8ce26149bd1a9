"""Text on its way into the database: one sanitizer for all user and model text (DESIGN §5).

PostgreSQL stores neither U+0000 (text and jsonb refuse it) nor a lone surrogate (U+D800–U+DFFF
has no UTF-8 encoding), while Python strings hold both — a JSON `"\\u0000"`, a websocket frame, a
model reply. `clean` turns each into U+FFFD: visible, and one character in Python as in the
browser's UTF-16, so offsets of streamed text still match the saved text.

Where it applies, so that nobody has to remember it:
- every string and JSON value psycopg sends to PostgreSQL, ORM and raw SQL alike (`install()`,
  from WorkbenchConfig.ready: cleaning dumpers for str, Json and Jsonb) — the guarantee;
- where text enters memory, so what is rendered and streamed is what gets stored: the API's JSON
  parser, websocket frames, the gate's model deltas and the Markdown renderer.
"""

from __future__ import annotations

import re
from typing import Any

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def clean(text: str) -> str:
    """`text` with NUL and lone surrogates replaced by U+FFFD (the same object when clean)."""
    if text.isascii():
        return text.replace("\x00", REPLACEMENT) if "\x00" in text else text
    return _UNSTORABLE.sub(REPLACEMENT, text) if _UNSTORABLE.search(text) else text


def clean_data(value: Any) -> Any:
    """`clean` applied to every string of JSON-like data, keys included."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {
            (clean(key) if isinstance(key, str) else key): clean_data(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [clean_data(item) for item in value]
    return value


def search_query(value: str | None, *, max_length: int = 200) -> str:
    """Search text from a query parameter, stripped. A NUL (or any other control character) or
    more than `max_length` characters is a ValidationError (400), not a query."""
    from django.core.exceptions import ValidationError

    value = (value or "").strip()
    if len(value) > max_length:
        raise ValidationError({"q": f"Search for at most {max_length} characters."})
    if any(ord(char) < 32 or ord(char) == 127 for char in value) or clean(value) != value:
        raise ValidationError({"q": "Search text can't contain control characters."})
    return value


def depth(value: Any, limit: int) -> int:
    """How deeply JSON-like data nests (a scalar is 0), counting no further than `limit` + 1;
    iterative, so no input can exhaust the stack."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def install() -> None:
    """Register the cleaning dumpers on psycopg's global adapters, which Django's connections
    copy when they are created. Idempotent."""
    from psycopg import adapters
    from psycopg.types import json, string

    if getattr(adapters, "_workbench_clean", False):
        return

    def cleaning_str(base):
        return type(f"Cleaning{base.__name__}", (base,), {"dump": _dump_clean_str})

    def cleaning_json(base):
        return type(f"Cleaning{base.__name__}", (base,), {"dump": _dump_clean_json})

    # The registration order is psycopg's own (string.register_default_adapters): the last one
    # registered per format is the default.
    for base in (
        string.StrBinaryDumperName,
        string.StrBinaryDumperVarchar,
        string.StrBinaryDumper,
        string.StrDumperName,
        string.StrDumperVarchar,
        string.StrDumper,
        string.StrDumperUnknown,
    ):
        adapters.register_dumper(str, cleaning_str(base))
    for wrapper, bases in (
        (json.Json, (json.JsonBinaryDumper, json.JsonDumper)),
        (json.Jsonb, (json.JsonbBinaryDumper, json.JsonbDumper)),
    ):
        for base in bases:
            adapters.register_dumper(wrapper, cleaning_json(base))
    adapters._workbench_clean = True


def _dump_clean_str(self, obj):
    return super(type(self), self).dump(clean(obj))


def _dump_clean_json(self, obj):
    from psycopg.types.json import _JsonWrapper

    if isinstance(obj, _JsonWrapper):
        obj = type(obj)(clean_data(obj.obj), obj.dumps)
    else:
        obj = clean_data(obj)
    return super(type(self), self).dump(obj)
