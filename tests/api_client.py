"""A JSON client for the REST API, as a script with a Bearer token would use it."""

from __future__ import annotations

import json

from django.test import Client


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


class Api:
    """A JSON client for one user's token."""

    def __init__(self, token: str):
        self.client = Client(headers=bearer(token))

    def get(self, url, data=None):
        return self.client.get(url, data or {})

    def post(self, url, data=None):
        return self.client.post(
            url, json.dumps(data) if data is not None else None, content_type="application/json"
        )

    def patch(self, url, data):
        return self.client.patch(url, json.dumps(data), content_type="application/json")

    def delete(self, url):
        return self.client.delete(url)


def assert_error(response, status: int, code: str) -> dict:
    """The one error shape: `{"error": {"code": ..., "message": ...}}`."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]
