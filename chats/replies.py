"""The persistence of replies (called by the runner, chats.streaming).

A reply costs a constant number of statements, flat in history and reply length: the user
message and the assistant placeholder are written once (services.message_send), the partial text
is checkpointed about once a second (`reply_checkpoint`, one UPDATE that is also the heartbeat),
and the final text and usage are written once (`reply_finish`)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from chats.models import Conversation, Message, MessageStatus
from chats.rendering import RENDER_VERSION, render_markdown
from chats.titles import title_from_text

STALE_AFTER = timedelta(seconds=5)  # a streaming reply without a heartbeat this long is dead


def reply_checkpoint(*, message_id: int, text: str, reasoning: str | None = None) -> None:
    """The partial text (and reasoning), and the heartbeat: one UPDATE."""
    changes = {"content": text, "heartbeat_at": timezone.now()}
    if reasoning is not None:
        changes["reasoning"] = reasoning
    Message.objects.filter(pk=message_id, status=MessageStatus.STREAMING).update(**changes)


@transaction.atomic
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
) -> Message:
    """The final text and usage (one UPDATE), folded into the conversation's totals (one UPDATE),
    and an automatic title after the first exchange."""
    message = Message.objects.select_related("conversation").get(pk=message_id)
    conversation = message.conversation
    message.content = text
    # `html`: the text already rendered off this thread (the runner does).
    rendered = html if html is not None else render_markdown(text)
    message.content_html, message.html_version = str(rendered), RENDER_VERSION
    message.status = status
    message.error_code = error_code
    message.error_message = error_message[:500]
    message.usage_id = usage_id or message.usage_id
    message.input_tokens = input_tokens
    message.output_tokens = output_tokens
    message.cache_read_tokens = cache_read_tokens
    message.cache_write_tokens = cache_write_tokens
    message.reasoning_tokens = reasoning_tokens
    if reasoning is not None:
        message.reasoning = reasoning
    message.reasoning_ms = reasoning_ms if reasoning_ms is not None else message.reasoning_ms
    message.tokens_estimated = tokens_estimated
    message.cost = cost
    message.cost_source = cost_source
    message.ttft_ms = ttft_ms
    message.tokens_per_second = tokens_per_second
    message.duration_ms = duration_ms
    message.heartbeat_at = None
    message.save()
    conversation_changes = {"updated_at": timezone.now()}
    # A continued reply's cost includes the earlier call, which the conversation already counts.
    added = (cost or Decimal(0)) - (prior_cost or Decimal(0))
    if added:
        conversation_changes["cost_total"] = F("cost_total") + added
    if cost_source == "unpriced":
        conversation_changes["has_unpriced"] = True
    if not conversation.title and conversation.title_source == "auto" and message.parent_id:
        question = (
            Message.objects.filter(pk=message.parent_id).values_list("content", flat=True).first()
            or ""
        )
        conversation_changes["title"] = title_from_text(question)
    Conversation.objects.filter(pk=conversation.pk).update(**conversation_changes)
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
