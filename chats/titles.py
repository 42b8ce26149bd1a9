"""Titles written by a model, on request (the default title comes free from the first question)."""

from __future__ import annotations

import re
from contextlib import aclosing

from django.core.exceptions import ValidationError

from chats.models import Conversation
from providers.adapters.base import CompletionRequest, Message, ProviderError, TextDelta
from workbench import connections


def title_from_text(text: str) -> str:
    """A title from the first question, at no cost: its first line, trimmed at a word."""
    line = next((part.strip() for part in text.strip().splitlines() if part.strip()), "")
    line = line.lstrip("#>*- ").strip()
    line = re.sub(r"[*_`~]+", "", line)  # Markdown emphasis reads badly in a title
    line = " ".join(line.split())
    if len(line) <= 60:
        return line
    cut = line[:60].rsplit(" ", 1)[0]
    return (cut or line[:60]) + "…"


PROMPT = (
    "Write a title of at most six words for the conversation below. Answer with the title only, "
    "no quotes, no punctuation at the end.\n\n{excerpt}"
)


async def title_from_model(*, user, conversation: Conversation) -> str:
    from chats import services
    from providers.services import completion_stream

    excerpt = await connections.hop(_excerpt)(conversation)
    if not excerpt:
        raise ValidationError("Nothing to title yet: send a message first.")
    if conversation.credential_id is None or not conversation.model:
        raise ValidationError("Pick a model for this conversation first.")
    request = CompletionRequest(
        model=conversation.model,
        messages=(Message("user", PROMPT.format(excerpt=excerpt)),),
        max_tokens=24,
    )
    parts = []
    try:
        async with aclosing(
            completion_stream(
                user=user,
                credential_id=conversation.credential_id,
                request=request,
                feature="title",
                context={"conversation": conversation.pk},
            )
        ) as events:
            async for event in events:
                if type(event) is TextDelta:
                    parts.append(event.text)
    except ProviderError as exc:
        raise ValidationError(f"The model could not write a title: {exc.message}") from None
    title = " ".join("".join(parts).split()).strip(" \"'.")[:120] or "Untitled"
    await connections.hop(services.conversation_update)(
        actor=user, conversation=conversation, title=title
    )
    await connections.hop(Conversation.objects.filter(pk=conversation.pk).update)(
        title_source="model"
    )
    return title


def _excerpt(conversation: Conversation) -> str:
    from chats import selectors

    view = selectors.conversation_view(conversation=conversation)
    text = "\n".join(f"{e.message.role}: {e.message.content}" for e in view.entries[:4])
    return text[:4000]
