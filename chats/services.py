"""Writes for chats: conversations, the message tree, and the persistence of replies.

The user message and the assistant placeholder of a reply are written once (`message_send`); the
reply's own persistence is in replies.py."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.http import Http404
from django.utils import timezone

from accounts import access
from accounts.access import Action
from chats import attachments, grounding, tree
from chats.models import Conversation, Message, MessageStatus
from chats.rendering import RENDER_VERSION, render_markdown
from chats.selectors import PathMessage, skeleton, tree_with_path
from chats.titles import title_from_text
from providers import ratings
from providers import services as provider_services
from providers.adapters.base import CompletionRequest
from providers.adapters.base import Message as Turn
from providers.validation import model_id_problem
from workbench import statements

MAX_CONTENT = 200_000  # characters in one message
PARAM_KEYS = ("temperature", "top_p", "max_tokens", "seed")
# A message's token counts that add up when a reply is continued (ReplyPlan.prior_tokens).
TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


@dataclass(frozen=True)
class ReplyPlan:
    """Everything the reply runner needs, fixed when the reply starts."""

    conversation_id: int
    message_id: int
    user_id: int
    team_id: int | None
    credential_id: int
    request: CompletionRequest
    prefix: str = ""  # Continue: the text already there, which the new text extends
    reasoning_prefix: str = ""  # Continue: the reasoning already there
    prior_cost: Decimal | None = None
    prior_tokens: tuple[int, ...] = (0, 0, 0, 0, 0)  # TOKEN_FIELDS of the earlier call(s)
    created: tuple[int, ...] = field(default=())  # ids of the messages this action created
    branch_from: int | None = None  # the parent the new messages hang from (None: a root)
    user: object = field(default=None, compare=False, repr=False)  # the actor, saving a query
    # The created messages and their sibling positions, so the `started` frame renders with no
    # further query.
    messages: tuple = field(default=(), compare=False, repr=False)
    positions: dict = field(default_factory=dict, compare=False, repr=False)
    # Collections the reply retrieves from before the model is called (chats.grounding).
    grounding: tuple[int, ...] = ()
    # Documents attached to the new message: retrieval waits (a while) until they are read.
    awaiting: tuple[int, ...] = ()
    # The credential as the plan read and checked it (`_require_model`): the gate takes it when
    # the call starts at once (no retrieval first), checking access again on it, not refetching.
    credential: object = field(default=None, compare=False, repr=False)


# --- Conversations ---------------------------------------------------------------------------------


def _clean_params(params: dict | None) -> dict:
    params = params or {}
    clean = {}
    for key in PARAM_KEYS:
        value = params.get(key)
        if value in (None, ""):
            continue
        try:
            clean[key] = int(value) if key in ("max_tokens", "seed") else float(value)
        except (TypeError, ValueError):
            raise ValidationError({key: f"{key} must be a number."}) from None
    if "temperature" in clean and not 0 <= clean["temperature"] <= 2:
        raise ValidationError({"temperature": "Between 0 and 2."})
    if "top_p" in clean and not 0 < clean["top_p"] <= 1:
        raise ValidationError({"top_p": "Greater than 0, at most 1."})
    if "max_tokens" in clean and not 1 <= clean["max_tokens"] <= 1_000_000:
        raise ValidationError({"max_tokens": "Between 1 and 1,000,000."})
    if "seed" in clean and not -(2**63) <= clean["seed"] < 2**63:
        raise ValidationError({"seed": "A whole number that fits in 64 bits."})
    return clean


def credential_refusal(*, conversation: Conversation, credential) -> str | None:
    """Why `credential` can't run `conversation`'s replies (None: it can).

    Whoever owns a conversation pays for it and sees it: a team conversation runs only on that
    team's credentials, a personal one only on its owner's personal credentials. Otherwise a
    team chat pinned to one member's key fails for everyone else, and a team pays for chats it
    can't see. Ownership is checked before any access rule, so a member who may not even see the
    credential gets this reason, not a 404."""
    if conversation.owner_team_id is not None:
        if credential.owner_team_id == conversation.owner_team_id:
            return None
        team = conversation.owner_team.name
        if credential.owner_team_id is None:
            return (
                f"A personal key can't run a conversation of team “{team}”: the team pays for "
                f"what its members see. Pick one of {team}'s models."
            )
        return (
            f"This credential belongs to another team; a conversation of “{team}” runs only on "
            f"{team}'s credentials. Pick one of {team}'s models."
        )
    if (
        credential.owner_user_id is not None
        and credential.owner_user_id == conversation.owner_user_id
    ):
        return None
    if credential.owner_team_id is not None:
        return (
            f"“{credential.name}” belongs to team “{credential.owner_team.name}”; a personal "
            "conversation runs only on your own credentials (start a team conversation to use the "
            "team's)."
        )
    return "That credential isn't yours; a personal conversation runs only on your own credentials."


def _check_model(actor, conversation: Conversation, credential, model: str) -> None:
    """A credential and model the actor picked: 404 for a credential they can't see (ids reveal
    nothing), then the ownership rule's clear refusal, then the role (403)."""
    if credential is None:
        return
    access.require(actor, credential, Action.READ)
    reason = credential_refusal(conversation=conversation, credential=credential)
    if reason is not None:
        raise ValidationError({"credential": reason})
    access.require(actor, credential, Action.USE)
    if not credential.is_active:
        raise ValidationError({"credential": f"“{credential.name}” is deactivated."})
    if not model:
        raise ValidationError({"model": "Pick a model."})
    if (problem := model_id_problem(model)) is not None:
        raise ValidationError({"model": problem[0].upper() + problem[1:]})


def conversation_start(
    *,
    actor,
    owner_team=None,
    credential=None,
    model: str = "",
    system_prompt: str = "",
    params: dict | None = None,
    title: str = "",
) -> Conversation:
    if owner_team is not None:
        access.require(actor, owner_team, Action.USE)
    conversation = Conversation(
        title=title.strip()[:200],
        title_source="user" if title.strip() else "auto",
        created_by=actor,
        credential=credential,
        model=model,
        system_prompt=system_prompt,
        params=_clean_params(params),
    )
    conversation.set_owner(owner_team or actor)
    _check_model(actor, conversation, credential, model)
    conversation.save()
    provider_services.model_used(user=actor, credential=credential, model=model)
    return conversation


@transaction.atomic
def conversation_begin(
    *, actor, owner_team=None, credential=None, model: str = "", content: str
) -> ReplyPlan:
    """A new conversation with its first message and the reply's placeholder, in one
    transaction: nothing is created unless the message is (no empty conversations)."""
    _check_content(content)
    conversation = conversation_start(
        actor=actor, owner_team=owner_team, credential=credential, model=model
    )
    # Titled from the question at once: the list and the page never show "New conversation".
    conversation.title = title_from_text(content)
    conversation.save(update_fields=["title"])
    return message_send(actor=actor, conversation=conversation, parent_id=None, content=content)


def conversation_update(*, actor, conversation: Conversation, **changes) -> Conversation:
    """Title, system prompt, parameters, and the model new replies use."""
    access.require(actor, conversation, Action.WRITE)
    fields = []
    if "title" in changes:
        title = (changes["title"] or "").strip()[:200]
        conversation.title_source = "user" if title else "auto"
        if not title:  # back to the automatic title: the first question's
            first = (
                conversation.messages.filter(role="user")
                .order_by("created_at", "id")
                .values_list("content", flat=True)
                .first()
            )
            title = title_from_text(first or "")
        conversation.title = title
        fields += ["title", "title_source"]
    if "system_prompt" in changes:
        conversation.system_prompt = changes["system_prompt"] or ""
        fields.append("system_prompt")
    if "params" in changes:
        conversation.params = _clean_params(changes["params"])
        fields.append("params")
    if "credential" in changes or "model" in changes:
        credential = changes.get("credential", conversation.credential)
        model = changes.get("model", conversation.model) or ""
        _check_model(actor, conversation, credential, model)
        if (credential, model) != (conversation.credential, conversation.model):
            provider_services.model_used(user=actor, credential=credential, model=model)
        conversation.credential, conversation.model = credential, model
        fields += ["credential", "model"]
    if fields:
        conversation.save(update_fields=fields)
    return conversation


@transaction.atomic
def conversation_delete(*, actor, conversation: Conversation) -> None:
    """The conversation, its messages, its attachments' files and its files collection."""
    access.require(
        actor, conversation, Action.MANAGE if conversation.owner_team_id else Action.WRITE
    )
    attachments.conversation_files_delete(actor=actor, conversation=conversation)
    conversation.delete()


# --- The tree ----------------------------------------------------------------------------------------


def _message_in(conversation: Conversation, message_id) -> Message:
    """A message of *this* conversation; any other id (another conversation's too) is 404."""
    try:
        return conversation.messages.get(pk=message_id)
    except (Message.DoesNotExist, ValueError, TypeError):
        raise Http404("No such message in this conversation.") from None


def _chain(nodes: dict[int, tree.Node], upto_id: int | None) -> list[int]:
    chain = []
    current = upto_id
    while current is not None:
        chain.append(current)
        current = nodes[current].parent_id
    return list(reversed(chain))


def _history(conversation: Conversation, upto_id: int | None, nodes=None) -> list[Turn]:
    """What the model receives: the path from the root to `upto_id` (two queries, however long)."""
    nodes = nodes if nodes is not None else skeleton(conversation)
    ids = _chain(nodes, upto_id)
    by_id = {
        m.pk: m
        for m in Message.objects.filter(pk__in=ids).only("id", "role", "content", "has_attachments")
    }
    with_files = [i for i in ids if by_id[i].has_attachments]
    images = attachments.image_parts(message_ids=with_files) if with_files else {}
    return [
        Turn(by_id[i].role, by_id[i].content, images.get(i, ()))
        for i in ids
        if by_id[i].content or by_id[i].role == "user"
    ]


def _request(conversation: Conversation, history: list[Turn]) -> CompletionRequest:
    params = conversation.params or {}
    return CompletionRequest(
        model=conversation.model,
        messages=tuple(history),
        system=conversation.system_prompt,
        temperature=params.get("temperature"),
        top_p=params.get("top_p"),
        max_tokens=params.get("max_tokens"),
        seed=params.get("seed"),
    )


def _show(conversation: Conversation, nodes: dict[int, tree.Node], message_id: int) -> None:
    """Make the visible path run through `message_id`: only the choices that differ are written
    (usually none: the path takes the newest child by default)."""
    for parent_id, child_id in tree.choices_to_show(nodes, conversation.active_root_id, message_id):
        if parent_id is None:
            Conversation.objects.filter(pk=conversation.pk).update(active_root_id=child_id)
            conversation.active_root_id = child_id
        else:
            Message.objects.filter(pk=parent_id).update(active_child_id=child_id)
            nodes[parent_id].active_child_id = child_id


def _add(nodes: dict[int, tree.Node], message: Message) -> None:
    nodes[message.pk] = tree.Node(message.pk, message.parent_id, None)
    if message.parent_id is not None:
        nodes[message.parent_id].children.append(message.pk)


def _choices_for_new(conversation: Conversation, nodes: dict[int, tree.Node], parent_id):
    """The pointers to write so the visible path shows a message about to be added under
    `parent_id` (usually none: the path takes the newest child by default), found with a
    stand-in id before it has one."""
    new = -1
    nodes[new] = tree.Node(new, parent_id, None)
    if parent_id is not None:
        nodes[parent_id].children.append(new)
    try:
        return tree.choices_to_show(nodes, conversation.active_root_id, new)
    finally:
        del nodes[new]
        if parent_id is not None:
            nodes[parent_id].children.remove(new)


def _turns(chain: list[PathMessage]) -> list[Turn]:
    """What the model receives of a path (tree_with_path's), with the images attached to it."""
    with_files = [m.id for m in chain if m.has_attachments]
    images = attachments.image_parts(message_ids=with_files) if with_files else {}
    return [
        Turn(m.role, m.content, images.get(m.id, ()))
        for m in chain
        if m.content or m.role == "user"
    ]


def _placeholder(
    conversation: Conversation, parent: Message | None, actor, *, save=True
) -> Message:
    credential = conversation.credential
    placeholder = Message(
        conversation=conversation,
        parent=parent,
        role="assistant",
        status=MessageStatus.STREAMING,
        author=actor,
        credential=credential,
        credential_name=credential.name if credential else "",
        preset=credential.preset if credential else "",
        model=conversation.model,
        params=conversation.params,
        heartbeat_at=timezone.now(),
    )
    if save:
        placeholder.save(force_insert=True)
    return placeholder


def _require_model(actor, conversation: Conversation, credential=None, model: str = "") -> None:
    """The model a reply will run on is set, and usable by `actor` for this conversation: a clear
    refusal here, never an access error halfway through the reply."""
    credential = credential if credential is not None else conversation.credential
    if credential is None or not (model or conversation.model):
        raise ValidationError({"model": "Pick a model for this conversation first."})
    reason = credential_refusal(conversation=conversation, credential=credential)
    if reason is None and not access.allows(actor, credential, Action.USE):
        reason = "Your role doesn't let you run this conversation's model."
    if reason is None and not credential.is_active:
        reason = f"“{credential.name}” is deactivated; pick another model."
    if reason is not None:
        raise ValidationError({"credential": reason})


def _check_vision(conversation: Conversation, credential, request: CompletionRequest) -> None:
    """Images go only to models that take them: a clear refusal before anything is saved."""
    if request.has_images:
        reason = attachments.vision_refusal(
            conversation=conversation, credential=credential, model=request.model
        )
        if reason is not None:
            raise ValidationError({"model": reason})


def _check_content(content: str) -> str:
    if not isinstance(content, str) or not content.strip():
        raise ValidationError({"content": "Write a message first."})
    if len(content) > MAX_CONTENT:
        raise ValidationError({"content": f"A message can be at most {MAX_CONTENT:,} characters."})
    return content


def _plan(
    actor,
    conversation,
    placeholder: Message,
    history: list[Turn],
    created,
    branch_from,
    nodes,
    **extra,
) -> ReplyPlan:
    request = _request(conversation, history)
    _check_vision(conversation, conversation.credential, request)
    if "grounding" not in extra:  # message_send reads it with the pending attachments
        extra["grounding"] = grounding.grounding_ids(conversation=conversation)
    return ReplyPlan(
        messages=tuple(created),
        positions={m.pk: tree.position(nodes, m.pk) for m in created},
        conversation_id=conversation.pk,
        message_id=placeholder.pk,
        user_id=actor.pk,
        team_id=conversation.owner_team_id,
        credential_id=conversation.credential_id,
        credential=conversation.credential,
        request=request,
        created=tuple(m.pk for m in created),
        branch_from=branch_from,
        user=actor,
        **extra,
    )


_SEND_SQL = """
WITH ids AS (
    SELECT min(n) AS asked, max(n) AS reply FROM (
        SELECT nextval(pg_get_serial_sequence('chats_message', 'id')) AS n
        FROM generate_series(1, 2)
    ) AS allocated
),
asked AS ({asked} FROM ids RETURNING id),
reply AS ({reply} FROM ids RETURNING id),
counted AS (
    UPDATE chats_conversation SET updated_at = %(now)s, message_count = message_count + 2
    WHERE id = %(conversation)s RETURNING id
)
SELECT asked, reply FROM ids
"""


def _insert_exchange(conversation: Conversation, asked: Message, reply: Message) -> None:
    """The user message, its reply's placeholder (its child) and the conversation's count and
    activity: one statement (atomic on its own). Sets both messages' ids."""
    asked_sql, params = statements.insert_select(asked, prefix="q", expressions={"id": "ids.asked"})
    reply_sql, reply_params = statements.insert_select(
        reply, prefix="r", expressions={"id": "ids.reply", "parent_id": "ids.asked"}
    )
    params.update(reply_params, now=timezone.now(), conversation=conversation.pk)
    with connection.cursor() as cursor:
        cursor.execute(_SEND_SQL.format(asked=asked_sql, reply=reply_sql), params)
        asked_id, reply_id = cursor.fetchone()
    statements.saved(asked, asked_id)
    statements.saved(reply, reply_id)
    reply.parent = asked


def message_send(
    *,
    actor,
    conversation: Conversation,
    parent_id,
    content: str,
    attachments_of: Message | None = None,
) -> ReplyPlan:
    """A user message under `parent_id` (None: a new first message) and its reply placeholder.
    `attachments_of`: a message whose attachments the new one keeps (an edit's original).

    Two reads (the tree with the path's texts; the grounding state unless the conversation was
    read with it, `selectors.conversation_for_reply`) and one write for both messages — no
    transaction unless there is more to write (a branch pointer, attachments waiting)."""
    access.require(actor, conversation, Action.USE)
    content = _check_content(content)
    _require_model(actor, conversation)
    leaf_id = access.parse_id(parent_id) if parent_id is not None else None
    nodes, chain = tree_with_path(conversation=conversation, leaf_id=leaf_id)
    parent = chain[-1] if chain else None
    if parent_id is not None and parent is None:
        raise Http404("No such message in this conversation.")
    if parent is not None and parent.status == MessageStatus.STREAMING:
        raise ValidationError("Wait for the reply to finish, or stop it, before answering it.")
    history = _turns(chain)
    collection_ids, has_pending = grounding.send_state(conversation=conversation, actor=actor)
    user_message = Message(
        conversation=conversation,
        parent_id=parent.id if parent else None,
        role="user",
        content=content,
        content_html=str(render_markdown(content)),
        html_version=RENDER_VERSION,
        author=actor,
    )
    placeholder = _placeholder(conversation, None, actor, save=False)
    choices = _choices_for_new(conversation, nodes, user_message.parent_id)
    # More than the one write, or a refusal that comes after it (images for a model without
    # vision: `_plan`), needs a transaction; the usual send doesn't.
    carry = attachments_of is not None and attachments_of.has_attachments
    alone = not (choices or has_pending or carry or any(turn.images for turn in history))
    with contextlib.nullcontext() if alone else transaction.atomic():
        _insert_exchange(conversation, user_message, placeholder)
        taken = (
            attachments.attachments_take(
                actor=actor, conversation=conversation, message=user_message
            )
            if has_pending
            else []
        )
        if carry:
            taken += attachments.attachments_copy(source=attachments_of, message=user_message)
        _add(nodes, user_message)
        if choices:
            _show(conversation, nodes, user_message.pk)
        _add(nodes, placeholder)  # its only child: no pointer
        images = (
            attachments.image_parts(message_ids=[user_message.pk])
            if any(a.kind == "image" for a in taken)
            else {}
        )
        history.append(Turn("user", content, images.get(user_message.pk, ())))
        return _plan(
            actor,
            conversation,
            placeholder,
            history,
            (user_message, placeholder),
            parent.id if parent else None,
            nodes,
            awaiting=tuple(a.document_id for a in taken if a.document_id),
            grounding=collection_ids,
        )


def message_edit(*, actor, conversation: Conversation, message_id, content: str) -> ReplyPlan:
    """Editing a user message makes a new branch: a sibling with the new text, and its reply."""
    original = _message_in(conversation, message_id)
    if original.role != "user":
        raise ValidationError("Only your messages can be edited; regenerate a reply instead.")
    return message_send(
        actor=actor,
        conversation=conversation,
        parent_id=original.parent_id,
        content=content,
        attachments_of=original,  # the edited question keeps its images and files
    )


@transaction.atomic
def message_regenerate(*, actor, conversation: Conversation, message_id) -> ReplyPlan:
    """A new reply beside `message_id` (an assistant message), with the conversation's current
    model — switch the model first to ask another one."""
    access.require(actor, conversation, Action.USE)
    _require_model(actor, conversation)
    original = _message_in(conversation, message_id)
    if original.role != "assistant" or original.parent_id is None:
        raise ValidationError("Only replies can be regenerated.")
    nodes = skeleton(conversation)
    history = _history(conversation, original.parent_id, nodes)
    parent = Message.objects.get(pk=original.parent_id)
    placeholder = _placeholder(conversation, parent, actor)
    _add(nodes, placeholder)
    _show(conversation, nodes, placeholder.pk)
    Conversation.objects.filter(pk=conversation.pk).update(
        updated_at=timezone.now(), message_count=F("message_count") + 1
    )
    return _plan(actor, conversation, placeholder, history, (placeholder,), parent.pk, nodes)


@transaction.atomic
def message_continue(*, actor, conversation: Conversation, message_id) -> ReplyPlan:
    """Continue a reply that broke off: the model gets the partial text as the start of its
    answer and the new text is appended to the same message."""
    access.require(actor, conversation, Action.USE)
    message = _message_in(conversation, message_id)
    if (
        message.role != "assistant"
        or message.status not in (MessageStatus.INTERRUPTED, MessageStatus.STOPPED)
        or not message.content
    ):
        raise ValidationError("Only a reply that broke off with some text can be continued.")
    credential = message.credential or conversation.credential
    _require_model(actor, conversation, credential, message.model)
    history = _history(conversation, message.parent_id)
    history.append(Turn("assistant", message.content))
    updated = Message.objects.filter(pk=message.pk, status=message.status).update(
        status=MessageStatus.STREAMING, heartbeat_at=timezone.now(), error_code="", error_message=""
    )
    if not updated:
        raise ValidationError("This reply is already being continued.")
    request = grounding.continued_request(message=message, request=_request(conversation, history))
    _check_vision(conversation, credential, replace(request, model=message.model or request.model))
    if message.model:
        request = replace(request, model=message.model)
    return ReplyPlan(
        conversation_id=conversation.pk,
        message_id=message.pk,
        user_id=actor.pk,
        team_id=conversation.owner_team_id,
        credential_id=credential.pk,
        request=request,
        prefix=message.content,
        reasoning_prefix=message.reasoning,
        prior_cost=message.cost,
        prior_tokens=tuple(getattr(message, name) or 0 for name in TOKEN_FIELDS),
        created=(),
        branch_from=message.parent_id,
        user=actor,
    )


def branch_select(*, actor, conversation: Conversation, message_id) -> int:
    """Show the branch through `message_id` (a sibling switch). Writers persist the choice for
    everyone; readers just see it. Returns the leaf of the shown path."""
    access.require(actor, conversation, Action.READ)
    message = _message_in(conversation, message_id)
    nodes = skeleton(conversation)
    if access.allows(actor, conversation, Action.WRITE):
        _show(conversation, nodes, message.pk)
    return tree.path(nodes, conversation.active_root_id, message.pk)[-1]


@transaction.atomic
def conversation_fork(*, actor, conversation: Conversation, message_id) -> Conversation:
    """A new conversation holding the path up to `message_id` (same owner, model and settings)."""
    access.require(actor, conversation, Action.WRITE)
    message = _message_in(conversation, message_id)
    nodes = skeleton(conversation)
    ids = _chain(nodes, message.pk)
    originals = {m.pk: m for m in Message.objects.filter(pk__in=ids)}
    fork = Conversation(
        title=f"Fork of {conversation.display_title}"[:200],
        title_source="user",
        created_by=actor,
        credential=conversation.credential,
        model=conversation.model,
        system_prompt=conversation.system_prompt,
        params=conversation.params,
        forked_from=message,
        owner_user_id=conversation.owner_user_id,
        owner_team_id=conversation.owner_team_id,
        # The documents its messages carry stay readable, and retrievable, in the fork: it
        # shares the files collection (same owner), which goes when neither names it any more.
        files_collection_id=conversation.files_collection_id,
    )
    fork.save()
    copies, parent = [], None
    for message_pk in ids:
        original = originals[message_pk]
        copy = Message(
            conversation=fork,
            parent=parent,
            role=original.role,
            content=original.content,
            content_html=original.content_html,
            html_version=original.html_version,
            status=MessageStatus.COMPLETE
            if original.status == MessageStatus.STREAMING
            else original.status,
            error_code=original.error_code,
            error_message=original.error_message,
            author=original.author,
            credential=original.credential,
            credential_name=original.credential_name,
            preset=original.preset,
            model=original.model,
            params=original.params,
            input_tokens=original.input_tokens,
            output_tokens=original.output_tokens,
            tokens_estimated=original.tokens_estimated,
            cost=None,  # the spend stays with the conversation that paid for it
            cost_source=original.cost_source,
            ttft_ms=original.ttft_ms,
            tokens_per_second=original.tokens_per_second,
            duration_ms=original.duration_ms,
            created_at=original.created_at,
        )
        copy.save()
        if original.has_attachments:
            # Same stored files, shared until no attachment row names them.
            attachments.attachments_copy(source=original, message=copy)
        if parent is not None:
            Message.objects.filter(pk=parent.pk).update(active_child=copy)
        copies.append(copy)
        parent = copy
    fork.active_root = copies[0] if copies else None
    fork.message_count = len(copies)
    fork.save(update_fields=["active_root", "message_count"])
    return fork


def message_for_stop(*, conversation: Conversation, message_id) -> int:
    """The id of a reply of *this* conversation that may be stopped."""
    message = _message_in(conversation, message_id)
    if message.role != "assistant":
        raise ValidationError("Only replies can be stopped.")
    return message.pk


def message_rate(
    *, actor, conversation: Conversation, message_id, value: str, note: str | None = None
):
    """Thumbs up ("up") or down ("down") on a finished reply of `conversation`, for `actor`
    only; "" takes the rating back. `note=None` keeps the note there is. Reading is enough: a
    viewer's opinion of a reply is theirs (nobody else sees it)."""
    access.require(actor, conversation, Action.READ)
    message = conversation.messages.filter(pk=message_id, role="assistant").first()
    if message is None:
        raise Http404("No reply with that id in this conversation.")
    if not value:
        ratings.rating_clear(user=actor, output=message)
        return None
    if message.status == MessageStatus.STREAMING:
        raise ValidationError({"value": "Rate a reply once it is finished."})
    return ratings.rating_set(
        user=actor, output=message, value=1 if value == "up" else -1, note=note
    )


@transaction.atomic
def conversation_from_turns(
    *,
    actor,
    owner_team=None,
    credential=None,
    model: str = "",
    system_prompt: str = "",
    params: dict | None = None,
    title: str = "",
    turns: list[dict],
) -> Conversation:
    """A conversation holding `turns` as one chain (oldest first), ready to continue — how the
    playground hands an answer over to chat. Each turn: `role`, `content`, and for replies
    what made them (`model`, `credential`, `credential_name`, `preset`, `params`, tokens and
    timings). Costs stay with whatever paid for them (as with a fork)."""
    conversation = conversation_start(
        actor=actor,
        owner_team=owner_team,
        credential=credential,
        model=model,
        system_prompt=system_prompt,
        params=params,
        title=title,
    )
    parent = None
    for turn in turns:
        role = turn.get("role")
        if role not in ("user", "assistant"):
            raise ValidationError({"turns": "Each turn is from the user or the assistant."})
        content = _check_content(turn.get("content") or "") if role == "user" else turn["content"]
        message = Message.objects.create(
            conversation=conversation,
            parent=parent,
            role=role,
            content=content,
            content_html=str(render_markdown(content)),
            html_version=RENDER_VERSION,
            author=actor if role == "user" else None,
            credential=turn.get("credential"),
            credential_name=turn.get("credential_name", ""),
            preset=turn.get("preset", ""),
            model=turn.get("model", ""),
            params=turn.get("params") or {},
            input_tokens=turn.get("input_tokens"),
            output_tokens=turn.get("output_tokens"),
            tokens_estimated=turn.get("tokens_estimated", False),
            cost_source=turn.get("cost_source", ""),
            ttft_ms=turn.get("ttft_ms"),
            tokens_per_second=turn.get("tokens_per_second"),
            duration_ms=turn.get("duration_ms"),
        )
        if parent is None:
            conversation.active_root = message
        parent = message
    conversation.message_count = len(turns)
    conversation.save(update_fields=["active_root", "message_count"])
    return conversation
