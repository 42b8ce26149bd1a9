"""The OpenAPI schema's error answers (drf-spectacular postprocessing hook).

Every error has one shape, `{"error": {"code", "message", ...}}` (workbench.api), and every
operation can answer some of them; documenting them is what lets the schemathesis run
(tests/test_api_fuzz.py) hold every answer to the schema, errors included."""

from __future__ import annotations

from drf_spectacular import openapi

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "Stable, e.g. `invalid`, `not_found`."},
                "message": {"type": "string", "description": "What went wrong, for people."},
                "fields": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "Per-field messages (`invalid` only).",
                },
            },
            "additionalProperties": True,
        }
    },
}

# Every operation: input, authentication, role, tenant, size, media type, throttles.
COMMON = {
    "400": "The input is invalid (`invalid`, `parse_error`, `bad_request`).",
    "401": "Not authenticated.",
    "403": "Authenticated, but the role or the token's scope doesn't allow it.",
    "404": "No such object, or not yours to see.",
    "413": "The request body is too large (`too_large`).",
    "415": "The request body's media type isn't accepted.",
    "429": "Throttled, or too many of your model calls at once (`too_many_calls`).",
}
# Operations that call a provider add what a call can end with.
PROVIDER_CALLS = {
    "402": "A budget doesn't allow the call (`budget_exceeded`).",
    "409": "The credential can't be used as it is (`inactive`, `key_unreadable`, `egress_denied`).",
    "502": "The provider failed or couldn't be reached.",
    "504": "The provider didn't answer in time.",
}
CALLING = {
    ("/api/completions", "post"),
    ("/api/credentials/{id}/test/", "post"),
    ("/api/credentials/{id}/models/", "post"),
}


def add_error_responses(result, generator, request, public):
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            errors = dict(COMMON)
            if (path, method) in CALLING:
                errors.update(PROVIDER_CALLS)
            responses = operation.setdefault("responses", {})
            for status, description in errors.items():
                responses.setdefault(status, {"description": description, "content": reference})
    return result


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's, but only a GET answers a page: DRF paginates in `list()` alone, so a
    POST to a list route that answers many items (an upload's per-file outcomes) answers a plain
    array — documented as a page, every such answer broke the schema."""

    def _get_paginator(self):
        return super()._get_paginator() if self.method == "GET" else None
