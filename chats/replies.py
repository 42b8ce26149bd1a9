"""The persistence of replies (called by the runner, chats.streaming).

A reply costs a constant number of statements, flat in history and reply length: the user
message and the assistant placeholder are written once (services.message_send), the partial text
is checkpointed about once a second (`reply_checkpoint`, one UPDATE that is also the heartbeat),
and the final text and usage are written once (`reply_finish`)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from chats import tree
from chats.models import Conversation, Message, MessageStatus
from chats.rendering import RENDER_VERSION, render_markdown
from chats.titles import title_from_text
from workbench import statements

STALE_AFTER = timedelta(seconds=5)  # a streaming reply without a heartbeat this long is dead


def reply_checkpoint(*, message_id: int, text: str, reasoning: str | None = None) -> None:
    """The partial text (and reasoning), and the heartbeat: one UPDATE."""
    changes = {"content": text, "heartbeat_at": timezone.now()}
    if reasoning is not None:
        changes["reasoning"] = reasoning
    Message.objects.filter(pk=message_id, status=MessageStatus.STREAMING).update(**changes)


_FINISH_SQL = """
WITH m AS (
    UPDATE chats_message SET {sets},
        usage_id = COALESCE(%(usage_id)s, usage_id),
        reasoning = COALESCE(%(reasoning)s, reasoning),
        reasoning_ms = COALESCE(%(reasoning_ms)s, reasoning_ms)
    WHERE id = %(id)s
    RETURNING {columns}
),
c AS (
    UPDATE chats_conversation AS c SET
        updated_at = %(now)s,
        cost_total = c.cost_total + %(added)s,
        has_unpriced = c.has_unpriced OR %(unpriced)s,
        title = CASE WHEN c.title = '' AND c.title_source = 'auto' AND m.parent_id IS NOT NULL
                     THEN COALESCE(%(title)s, c.title) ELSE c.title END
    FROM m WHERE c.id = m.conversation_id
    RETURNING c.title AS conversation_title, c.cost_total AS conversation_cost_total,
              c.has_unpriced AS conversation_has_unpriced,
              c.title = '' AND c.title_source = 'auto' AND m.parent_id IS NOT NULL AS untitled
)
SELECT m.*, c.*, ARRAY(
    SELECT s.id FROM chats_message s
    WHERE s.conversation_id = m.conversation_id
      AND (s.parent_id = m.parent_id OR (m.parent_id IS NULL AND s.parent_id IS NULL))
    ORDER BY s.created_at, s.id
) AS sibling_ids
FROM m, c
"""


def reply_finish(
    *,
    message_id: int,
    text: str,
    status: str,
    html: str | None = None,
    error_code: str = "",
    error_message: str = "",
    usage_id: int | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cache_read_tokens: int | None = None,
    cache_write_tokens: int | None = None,
    reasoning_tokens: int | None = None,
    reasoning: str | None = None,
    reasoning_ms: float | None = None,
    tokens_estimated: bool = False,
    cost: Decimal | None = None,
    cost_source: str = "",
    ttft_ms: float | None = None,
    tokens_per_second: float | None = None,
    duration_ms: float | None = None,
    prior_cost: Decimal | None = None,
    question: str | None = None,
) -> Message:
    """The final text and usage, folded into the conversation's totals, and an automatic title
    after the first exchange (from `question`, the text the reply answers): one statement,
    which also returns what the final frame shows — the message, its siblings' ids
    (`message.position`) and the conversation's new totals (`message.conversation`, partly
    loaded). Without `question`, an untitled conversation costs two more statements."""
    # `html`: the text already rendered off this thread (the runner does).
    rendered = html if html is not None else render_markdown(text)
    changes = {
        "content": text,
        "content_html": str(rendered),
        "html_version": RENDER_VERSION,
        "status": status,
        "error_code": error_code,
        "error_message": error_message[:500],
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_tokens": cache_read_tokens,
        "cache_write_tokens": cache_write_tokens,
        "reasoning_tokens": reasoning_tokens,
        "tokens_estimated": tokens_estimated,
        "cost": cost,
        "cost_source": cost_source,
        "ttft_ms": ttft_ms,
        "tokens_per_second": tokens_per_second,
        "duration_ms": duration_ms,
        "heartbeat_at": None,
    }
    sets, params = statements.assignments(Message, changes, prefix="f")
    columns = ", ".join(f.column for f in Message._meta.concrete_fields)
    # A continued reply's cost includes the earlier call, which the conversation already counts.
    added = (cost or Decimal(0)) - (prior_cost or Decimal(0))
    params.update(
        id=message_id,
        usage_id=usage_id,
        reasoning=reasoning,
        reasoning_ms=reasoning_ms,
        now=timezone.now(),
        added=added,
        unpriced=cost_source == "unpriced",
        title=title_from_text(question) if question is not None else None,
    )
    sql = _FINISH_SQL.format(sets=sets, columns=columns)
    found = list(Message.objects.raw(sql, params))
    if not found:
        raise Message.DoesNotExist(f"Message {message_id} is gone (its conversation deleted?).")
    message = found[0]
    if message.untitled:  # no question given: read it, then title
        first = (
            Message.objects.filter(pk=message.parent_id).values_list("content", flat=True).first()
            or ""
        )
        message.conversation_title = title_from_text(first)
        Conversation.objects.filter(pk=message.conversation_id, title="").update(
            title=message.conversation_title
        )
    message.conversation = Conversation(
        pk=message.conversation_id,
        title=message.conversation_title,
        cost_total=message.conversation_cost_total,
        has_unpriced=message.conversation_has_unpriced,
    )
    message.position = tree.position_among(message.sibling_ids, message.pk)
    return message


def replies_mark_stale(
    *, conversation_id: int | None = None, running: set[int] | frozenset[int] = frozenset()
) -> int:
    """Replies still `streaming` whose heartbeat is older than STALE_AFTER belong to a process
    that died: mark them interrupted, keeping their last checkpointed text. Replies this process
    is running are never touched, however quiet."""
    stale = Message.objects.filter(
        status=MessageStatus.STREAMING, heartbeat_at__lt=timezone.now() - STALE_AFTER
    )
    if conversation_id is not None:
        stale = stale.filter(conversation_id=conversation_id)
    if running:
        stale = stale.exclude(pk__in=running)
    return stale.update(
        status=MessageStatus.INTERRUPTED,
        error_code="interrupted",
        error_message="The server stopped while this reply was being written.",
        heartbeat_at=None,
    )
