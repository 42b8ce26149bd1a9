"""Reads for chats, scoped to the user asking."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Exists, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Upper

from accounts import access
from accounts.access import Action
from chats import tree
from chats.models import Conversation, Message


def conversations_for_user(*, user, team=None, q: str = "") -> QuerySet[Conversation]:
    """The list: the user's own conversations plus the current team's, newest activity first;
    `q` searches titles and message text (trigram indexes on both)."""
    conversations = access.in_view(Conversation.objects.select_related("owner_team"), user, team)
    q = (q or "").strip()
    if q:
        needle = q.upper()
        in_messages = Message.objects.annotate(u=Upper("content")).filter(
            conversation_id=OuterRef("pk"), u__contains=needle
        )
        conversations = conversations.annotate(u_title=Upper("title")).filter(
            Q(u_title__contains=needle) | Exists(in_messages)
        )
    return conversations.order_by("-updated_at", "-id")


def conversation_for_user(*, user, pk, action: Action = Action.READ) -> Conversation:
    return access.get_for(
        user, Conversation.objects.select_related("owner_team", "credential"), pk, action
    )


def skeleton(conversation: Conversation) -> dict[int, tree.Node]:
    """The whole tree's shape in one query (ids only, however long the conversation)."""
    rows = conversation.messages.order_by("created_at", "id").values_list(
        "id", "parent_id", "active_child_id"
    )
    return tree.build(rows)


@dataclass(frozen=True)
class PathEntry:
    message: Message
    position: tree.Position


@dataclass(frozen=True)
class ConversationView:
    conversation: Conversation
    entries: list[PathEntry]
    path_cost: Decimal
    path_has_unpriced: bool

    @property
    def leaf_id(self) -> int | None:
        return self.entries[-1].message.pk if self.entries else None


def conversation_view(
    *, conversation: Conversation, leaf_id: int | None = None
) -> ConversationView:
    """The visible path with sibling positions: two queries, flat in conversation length."""
    nodes = skeleton(conversation)
    ids = tree.path(nodes, conversation.active_root_id, leaf_id)
    messages = {m.pk: m for m in Message.objects.filter(pk__in=ids)}
    entries = [PathEntry(messages[i], tree.position(nodes, i)) for i in ids]
    cost = sum((e.message.cost or Decimal(0) for e in entries), Decimal(0))
    unpriced = any(
        e.message.role == "assistant" and e.message.cost_source == "unpriced" for e in entries
    )
    return ConversationView(conversation, entries, cost, unpriced)


def entry_for(*, message: Message) -> PathEntry:
    """One message with its sibling position (for rendering a single message)."""
    parent_filter = Q(parent_id=message.parent_id) if message.parent_id else Q(parent__isnull=True)
    sibling_ids = list(
        Message.objects.filter(parent_filter, conversation_id=message.conversation_id)
        .order_by("created_at", "id")
        .values_list("id", flat=True)
    )
    index = sibling_ids.index(message.pk)
    return PathEntry(
        message,
        tree.Position(
            index=index + 1,
            count=len(sibling_ids),
            previous_id=sibling_ids[index - 1] if index > 0 else None,
            next_id=sibling_ids[index + 1] if index + 1 < len(sibling_ids) else None,
        ),
    )


def streaming_messages(*, conversation: Conversation) -> list[Message]:
    return list(conversation.messages.filter(status="streaming").order_by("created_at"))


def team_spend(*, conversation: Conversation) -> Decimal:
    return conversation.messages.aggregate(total=Sum("cost"))["total"] or Decimal(0)
