"""Frames the chat sends over the websocket that carry server-rendered HTML. Rendering is the
same for every watcher (controls a viewer may not use are hidden by the page, and refused by the
server anyway)."""

from __future__ import annotations

from django.template.loader import render_to_string

from chats import selectors
from chats.models import Conversation, Message


def _render(message: Message, position=None) -> str:
    entry = (
        selectors.PathEntry(message, position) if position else selectors.entry_for(message=message)
    )
    return render_to_string("chats/conversation.html#message", {"entry": entry})


def started_frame(plan, *, ref=None) -> dict:
    """New messages (a user message and its reply placeholder, or a regenerated reply) and
    where they hang: the page drops what followed `after` and appends them."""
    if not plan.created:  # Continue: the same message streams on
        return {"type": "resumed", "id": plan.message_id, "ref": ref}
    if plan.messages and all(m.pk in plan.positions for m in plan.messages):
        # As the service wrote them, with their positions: no query.
        html = "".join(_render(m, plan.positions[m.pk]) for m in plan.messages)
    else:
        messages = (
            Message.objects.filter(pk__in=plan.created)
            .select_related("author")
            .order_by("created_at", "id")
        )
        html = "".join(_render(message) for message in messages)
    return {
        "type": "started",
        "after": plan.branch_from,
        "reply": plan.message_id,
        "html": html,
        "ref": ref,
    }


def final_fields(message_id: int, *, saved: Message | None = None) -> dict:
    """The authoritative rendering of a finished reply, and the conversation's new totals.
    `saved`: the message as `replies.reply_finish` returned it (with its position and the
    conversation's totals): no query."""
    if saved is not None:
        message, position = saved, saved.position
    else:
        message = Message.objects.select_related("conversation").get(pk=message_id)
        position = None
    conversation: Conversation = message.conversation
    return {
        "html": _render(message, position),
        "conversation": {
            "title": conversation.display_title,
            "cost_html": render_to_string(
                "chats/conversation.html#cost",
                {
                    "conversation": conversation,
                    "unpriced_calls": selectors.conversation_unpriced_calls(
                        conversation=conversation
                    ),
                },
            ),
        },
    }
