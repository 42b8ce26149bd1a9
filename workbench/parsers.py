"""Request body parsing for the API (DESIGN §5: bad input is a clear 4xx, never a 500).

Its own module: DRF's APIView reads DEFAULT_PARSER_CLASSES while rest_framework.views is still
being imported, so the parser can't live next to the exception handler (which imports views)."""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework import exceptions, parsers, status

from workbench import text

MAX_JSON_DEPTH = 32  # our bodies nest 4 levels; anything far deeper is an attack or a mistake


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"

    def __init__(self):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        super().__init__(f"The request body is larger than {limit / 2**20:g} MiB.")


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, bounded (DESIGN §5): a body over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413,
    malformed or nested deeper than MAX_JSON_DEPTH a 400 — never a RecursionError's 500 — and
    every string comes out cleaned of what the database can't store (workbench.text)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1 if limit is not None else -1) if stream is not None else b""
        if limit is not None and len(raw) > limit:
            raise RequestTooLarge()
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = json.loads(raw.decode(encoding), parse_constant=_refuse_constant)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            raise exceptions.ParseError("The request body is not valid JSON.") from None
        if text.depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            raise exceptions.ParseError(f"JSON nested more than {MAX_JSON_DEPTH} levels deep.")
        return text.clean_data(data)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")
