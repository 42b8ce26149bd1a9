"""Writes for webhooks: the one call every app uses to emit an event."""

from __future__ import annotations

import json

from webhooks.models import Event

MAX_PAYLOAD_BYTES = 8_192  # events are notices, not data dumps


def event_emit(*, type: str, owner, payload: dict) -> Event:
    """Store an event for `owner` (a User or a Team) to be delivered to its webhooks later.
    Payloads are small JSON objects; never put secrets in them."""
    if len(json.dumps(payload, default=str)) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"Event payload over {MAX_PAYLOAD_BYTES} bytes: {type}")
    event = Event(type=type, payload=json.loads(json.dumps(payload, default=str)))
    event.set_owner(owner)
    event.save()
    return event
