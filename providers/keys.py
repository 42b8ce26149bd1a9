"""API keys: write-only, masked for display, and never passed on when they can't be decrypted.

django-encrypted-model-fields silently returns the *ciphertext* when a value was encrypted with a
key that is no longer configured (FACTS). Sending that to a provider would leak ciphertext and
fail confusingly, so every read of a key goes through `readable_key`."""

from __future__ import annotations

import base64
import binascii


class KeyUnreadable(Exception):
    code = "key_unreadable"

    def __init__(self, credential_name: str):
        super().__init__(
            f"The API key of “{credential_name}” can't be decrypted with the current "
            "FIELD_ENCRYPTION_KEY. Re-enter this key in Settings → Providers."
        )


def looks_encrypted(value: str) -> bool:
    """A Fernet token: urlsafe base64 of version byte 0x80, timestamp, IV, ciphertext, HMAC."""
    if not value.startswith("gAAAAA") or len(value) < 100:
        return False
    try:
        raw = base64.urlsafe_b64decode(value.encode() + b"=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return False
    return raw[:1] == b"\x80" and len(raw) >= 73


def readable_key(credential) -> str:
    """The plaintext key to send, or "" when the credential has none. Raises KeyUnreadable."""
    value = credential.api_key or ""
    if value and looks_encrypted(value):
        raise KeyUnreadable(credential.name)
    return value


def mask(value: str) -> str:
    """`sk-proj-abc…9f3b` → `sk-…9f3b`: enough to recognise a key, never enough to use it."""
    if not value:
        return ""
    if looks_encrypted(value):
        return "unreadable — re-enter"
    if len(value) < 12:
        return "…" + value[-2:]
    head = value.split("-", 1)[0] + "-" if "-" in value[:8] else value[:3]
    return f"{head}…{value[-4:]}"
