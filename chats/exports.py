"""Export a conversation: Markdown (the visible path, for reading) and JSON (the whole tree, our
own format — re-importable later)."""

from __future__ import annotations

from billing import money
from chats import selectors
from chats.models import Conversation

FORMAT = "workbench.conversation"
VERSION = 1


def as_json(conversation: Conversation) -> dict:
    """Every message of every branch, with its parent: the tree survives the round trip. Keys and
    credentials are never included — only the names of the models that answered."""
    view = selectors.conversation_view(conversation=conversation)
    messages = conversation.messages.order_by("created_at", "id")
    return {
        "format": FORMAT,
        "version": VERSION,
        "title": conversation.title,
        "system_prompt": conversation.system_prompt,
        "model": conversation.model,
        "params": conversation.params,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        "visible_path": [entry.message.pk for entry in view.entries],
        "messages": [
            {
                "id": m.pk,
                "parent": m.parent_id,
                "role": m.role,
                "content": m.content,
                "status": m.status,
                "created_at": m.created_at.isoformat(),
                "model": m.model,
                "provider": m.preset,
                "usage": {
                    "input_tokens": m.input_tokens,
                    "output_tokens": m.output_tokens,
                    "estimated": m.tokens_estimated,
                    "cost_usd": money.decimal_str(m.cost),
                    "cost_source": m.cost_source,
                    "ttft_ms": m.ttft_ms,
                    "tokens_per_second": m.tokens_per_second,
                }
                if m.role == "assistant"
                else None,
                "error": {"code": m.error_code, "message": m.error_message}
                if m.error_code
                else None,
            }
            for m in messages
        ],
    }


def as_markdown(conversation: Conversation) -> str:
    view = selectors.conversation_view(conversation=conversation)
    lines = [f"# {conversation.display_title}", ""]
    if conversation.system_prompt:
        lines += ["**System prompt**", "", conversation.system_prompt, ""]
    for entry in view.entries:
        message = entry.message
        who = "You" if message.role == "user" else f"{message.model or 'Assistant'}"
        lines += [f"## {who}", "", message.content or "_(no text)_", ""]
        if message.status not in ("complete",):
            lines += [
                f"_({message.status}{': ' + message.error_message if message.error_message else ''})_",
                "",
            ]
    lines.append(f"_Exported from Workbench · {len(view.entries)} messages on this path_")
    return "\n".join(lines) + "\n"
