"""Reads for chats, scoped to the user asking."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Upper

from accounts import access
from accounts.access import Action
from chats import tree
from chats.models import Conversation, Message
from workbench.text import search_query


def conversations_for_user(
    *, user, team=None, q: str = "", started_by_me: bool = False
) -> QuerySet[Conversation]:
    """The list: the user's own conversations plus the current team's (and team chats they
    started), newest activity first;
    `q` searches titles and message text (trigram indexes on both)."""
    conversations = access.in_view(Conversation.objects.select_related("owner_team"), user, team)
    if started_by_me and user.is_authenticated:
        # The chat page also lists team chats you started yourself, whatever the current team
        # (one started from the new-chat page while working in Personal must not vanish).
        conversations |= Conversation.objects.select_related("owner_team").filter(
            created_by_id=user.pk, owner_team_id__in=access.team_ids_for(user)
        )
    q = search_query(q)  # ValidationError (400) for a NUL or an overlong search
    if q:
        needle = q.upper()
        in_messages = Message.objects.annotate(u=Upper("content")).filter(
            conversation_id=OuterRef("pk"), u__contains=needle
        )
        conversations = conversations.annotate(u_title=Upper("title")).filter(
            Q(u_title__contains=needle) | Exists(in_messages)
        )
    return conversations.order_by("-updated_at", "-id")


def with_match(conversations: QuerySet[Conversation], *, q: str) -> QuerySet[Conversation]:
    """Annotate `match_text`: the first message text matching `q`, for a search snippet (one
    subquery per listed row, on the trigram index)."""
    needle = (q or "").strip().upper()
    first = (
        Message.objects.annotate(u=Upper("content"))
        .filter(conversation_id=OuterRef("pk"), u__contains=needle)
        .order_by("created_at", "id")
        .values("content")[:1]
    )
    return conversations.annotate(match_text=Subquery(first))


def audience(*, conversation: Conversation) -> str:
    """Who can see a conversation, as its header says it: personal, or the team's head count."""
    if conversation.owner_team_id is None:
        return "Personal — only you can see it"
    count = conversation.owner_team.memberships.count()
    return f"Team chat — visible to {count} member{'' if count == 1 else 's'} of “{conversation.owner_team.name}”"


def conversation_for_user(*, user, pk, action: Action = Action.READ) -> Conversation:
    return access.get_for(
        user, Conversation.objects.select_related("owner_team", "credential"), pk, action
    )


def conversation_for_reply(*, user, pk) -> Conversation:
    """`conversation_for_user` for starting a reply (USE), with what the reply's plan reads
    about grounding and waiting attachments (chats.grounding.send_state) in the same query."""
    from chats import grounding

    conversation = Conversation.objects.select_related("owner_team", "credential").annotate(
        **grounding.send_state_annotations(actor=user)
    )
    return access.get_for(user, conversation, pk, Action.USE)


def skeleton(conversation: Conversation) -> dict[int, tree.Node]:
    """The whole tree's shape in one query (ids only, however long the conversation)."""
    rows = conversation.messages.order_by("created_at", "id").values_list(
        "id", "parent_id", "active_child_id"
    )
    return tree.build(rows)


_TREE_WITH_PATH_SQL = """
WITH RECURSIVE chain AS (
    SELECT id, parent_id FROM chats_message WHERE id = %(leaf)s AND conversation_id = %(conversation)s
    UNION ALL
    SELECT m.id, m.parent_id FROM chats_message m JOIN chain ON m.id = chain.parent_id
)
SELECT m.id, m.parent_id, m.active_child_id, chain.id IS NOT NULL, m.role, m.status,
       CASE WHEN chain.id IS NOT NULL THEN m.content END, m.has_attachments
FROM chats_message m LEFT JOIN chain ON chain.id = m.id
WHERE m.conversation_id = %(conversation)s
ORDER BY m.created_at, m.id
"""


@dataclass(frozen=True)
class PathMessage:
    id: int
    role: str
    status: str
    content: str
    has_attachments: bool


def tree_with_path(
    *, conversation: Conversation, leaf_id: int | None
) -> tuple[dict[int, tree.Node], list[PathMessage]]:
    """The whole tree's shape and, with their texts, the messages from the root down to
    `leaf_id` (a message of this conversation; [] when None or not one of its messages) — one
    query, however long the conversation (`skeleton` + the path's texts in one)."""
    with connection.cursor() as cursor:
        cursor.execute(_TREE_WITH_PATH_SQL, {"leaf": leaf_id, "conversation": conversation.pk})
        rows = cursor.fetchall()
    nodes = tree.build(row[:3] for row in rows)
    on_path = {row[0]: PathMessage(row[0], *row[4:]) for row in rows if row[3]}
    chain, current = [], leaf_id if leaf_id in on_path else None
    while current is not None:
        chain.append(on_path[current])
        current = nodes[current].parent_id
    return nodes, chain[::-1]


@dataclass(frozen=True)
class PathEntry:
    message: Message
    position: tree.Position


@dataclass(frozen=True)
class ConversationView:
    conversation: Conversation
    entries: list[PathEntry]
    path_cost: Decimal
    path_unpriced: int  # replies on the path with no known price (not in path_cost)

    @property
    def path_has_unpriced(self) -> bool:
        return self.path_unpriced > 0

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
    unpriced = sum(
        1 for e in entries if e.message.role == "assistant" and e.message.cost_source == "unpriced"
    )
    return ConversationView(conversation, entries, cost, unpriced)


def conversation_unpriced_calls(*, conversation: Conversation) -> int:
    """How many replies in the whole conversation (every branch) had no known price — what its
    cost total leaves out. No query when it has none."""
    if not conversation.has_unpriced:
        return 0
    return conversation.messages.filter(role="assistant", cost_source="unpriced").count()


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


def with_ratings(view: ConversationView, *, user) -> ConversationView:
    """Each reply on the path gets `my_rating`: `user`'s own rating (or None), one query."""
    from providers import ratings

    mine = ratings.ratings_for(
        user=user, message_ids=[e.message.pk for e in view.entries if e.message.role == "assistant"]
    )
    for entry in view.entries:
        entry.message.my_rating = mine.get(entry.message.pk)
    return view


def conversation_turns(*, conversation: Conversation, upto_id) -> list[Message]:
    """The path from the first message to `upto_id` (a message of this conversation), oldest
    first: what a model would have received before answering after it."""
    from django.http import Http404

    try:
        message = conversation.messages.only("id").get(pk=upto_id)
    except (Message.DoesNotExist, ValueError, TypeError):
        raise Http404("No such message in this conversation.") from None
    ids = tree.path(skeleton(conversation), conversation.active_root_id, message.pk)
    ids = ids[: ids.index(message.pk) + 1]
    by_id = {m.pk: m for m in Message.objects.filter(pk__in=ids)}
    return [by_id[pk] for pk in ids]
