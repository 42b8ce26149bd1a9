"""Writes for comparisons: the input and the slots. The app's other writes live by concept —
checks in inputs.py, starting a run in starting.py, ratings/winners/continuing in chat in
deciding.py, arena battles in arena.py — and the ones callers use are re-exported here, so
`playground.services` stays the app's one write API."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from accounts import access
from accounts.access import Action
from accounts.models import Team
from chats import selectors as chat_selectors
from playground import grounding, selectors
from playground.deciding import (
    answer_continue_in_chat,
    answer_rate,
    run_continue_in_chat,
    run_pick_winner,
)
from playground.inputs import (
    MAX_HISTORY,
    MAX_PROMPT,
    MAX_SYSTEM,
    PARAM_KEYS,
    SlotData,
    check_credential,
    check_history,
    check_text,
    clean_params,
    comparison_slots,
)
from playground.models import MAX_SLOTS, MIN_SLOTS, Comparison, Slot
from playground.starting import (
    NeedsConfirmation,
    answer_request,
    answers_to_stop,
    comparison_estimate,
    run_start,
    slot_inputs,
)

__all__ = [  # re-exported: what callers import from playground.services
    "MAX_HISTORY",
    "MAX_PROMPT",
    "MAX_SYSTEM",
    "PARAM_KEYS",
    "NeedsConfirmation",
    "SlotData",
    "answer_continue_in_chat",
    "answer_rate",
    "answer_request",
    "answers_to_stop",
    "check_credential",
    "clean_params",
    "comparison_estimate",
    "run_continue_in_chat",
    "run_pick_winner",
    "run_start",
    "slot_inputs",
]


def _default_slots(actor, owner_team) -> list[SlotData]:
    """Two different models to start with, when the owner has that many."""
    choices = [
        (group["credential"], model)
        for group in selectors.picker_groups(user=actor, owner_team=owner_team)
        for model in group["models"]
    ]
    # One model only: the same model twice (to compare parameters or system prompts).
    picked = (choices * MIN_SLOTS)[:MIN_SLOTS]
    return [SlotData(credential=c, model=m) for c, m in picked] + [
        SlotData() for _ in range(MIN_SLOTS - len(picked))
    ]


@transaction.atomic
def comparison_create(
    *,
    actor,
    owner_team: Team | None = None,
    title: str = "",
    system_prompt: str = "",
    history: list | None = None,
    prompt: str = "",
    slots: list[SlotData] | None = None,
    source_conversation=None,
    prompt_link: tuple | None = None,
) -> Comparison:
    """`prompt_link`: (version, values, with_system) of a library prompt the input was filled
    from (playground.prompting makes it; the caller checked the version)."""
    if owner_team is not None:
        access.require(actor, owner_team, Action.USE)
    comparison = Comparison(
        title=check_text(title, "title", 200).strip(),
        created_by=actor,
        system_prompt=check_text(system_prompt, "system_prompt", MAX_SYSTEM),
        history=check_history(history),
        prompt=check_text(prompt, "prompt", MAX_PROMPT),
        source_conversation=source_conversation,
    )
    if prompt_link is not None:
        version, values, with_system = prompt_link
        comparison.prompt_version = version
        comparison.prompt_values = dict(values or {}) if version is not None else {}
        comparison.prompt_with_system = bool(with_system) and version is not None
    comparison.set_owner(owner_team or actor)
    comparison.save()
    _replace_slots(
        actor, comparison, slots if slots is not None else _default_slots(actor, owner_team)
    )
    return comparison


def _replace_slots(actor, comparison: Comparison, slots: list[SlotData]) -> None:
    if len(slots) > MAX_SLOTS:
        raise ValidationError({"slots": f"At most {MAX_SLOTS} slots."})
    existing = {slot.pk: slot for slot in comparison.slots.all()}
    keep = set()
    for position, data in enumerate(slots):
        check_credential(actor=actor, owner=comparison.owner, credential=data.credential)
        if data.id is not None:
            if data.id not in existing:
                raise ValidationError({"slots": "A slot of another comparison."})
            slot = existing[data.id]
        else:
            slot = Slot(comparison=comparison)
        slot.position = position
        slot.credential = data.credential
        slot.model = (data.model or "").strip()[:200] if data.credential is not None else ""
        slot.params = clean_params(data.params)
        slot.system_prompt = check_text(data.system_prompt, "system_prompt", MAX_SYSTEM)
        slot.save()
        keep.add(slot.pk)
    comparison.slots.exclude(pk__in=keep).delete()


@transaction.atomic
def comparison_save(
    *,
    actor,
    comparison: Comparison,
    title: str | None = None,
    system_prompt: str | None = None,
    history: list | None = None,
    prompt: str | None = None,
    slots: list[SlotData] | None = None,
) -> Comparison:
    """Change what was given (None: leave as is). `slots` replaces the slots, in order."""
    access.require(actor, comparison, Action.WRITE)
    fields = ["updated_at"]
    if title is not None:
        comparison.title = check_text(title, "title", 200).strip()
        fields.append("title")
    if system_prompt is not None:
        comparison.system_prompt = check_text(system_prompt, "system_prompt", MAX_SYSTEM)
        fields.append("system_prompt")
    if history is not None:
        comparison.history = check_history(history)
        fields.append("history")
    if prompt is not None:
        comparison.prompt = check_text(prompt, "prompt", MAX_PROMPT)
        fields.append("prompt")
    comparison.updated_at = timezone.now()
    # Only what changed: a run going on meanwhile updates the run count.
    comparison.save(update_fields=fields)
    if slots is not None:
        _replace_slots(actor, comparison, slots)
    return comparison


def _slot_data(slot: Slot) -> SlotData:
    return SlotData(slot.credential, slot.model, dict(slot.params), slot.system_prompt, slot.pk)


@transaction.atomic
def slot_add(*, actor, comparison: Comparison) -> Slot:
    """A new slot at the end, on the same model as the last one (the usual next step is to
    change one thing)."""
    access.require(actor, comparison, Action.WRITE)
    slots = comparison_slots(comparison)
    if len(slots) >= MAX_SLOTS:
        raise ValidationError(f"A comparison has at most {MAX_SLOTS} slots.")
    last = slots[-1] if slots else None
    return Slot.objects.create(
        comparison=comparison,
        position=len(slots),
        credential=last.credential if last else None,
        model=last.model if last else "",
    )


@transaction.atomic
def slot_duplicate(*, actor, comparison: Comparison, slot: Slot) -> Slot:
    access.require(actor, comparison, Action.WRITE)
    slots = comparison_slots(comparison)
    if len(slots) >= MAX_SLOTS:
        raise ValidationError(f"A comparison has at most {MAX_SLOTS} slots.")
    data = [_slot_data(s) for s in slots]
    index = next(i for i, s in enumerate(slots) if s.pk == slot.pk)
    data.insert(
        index + 1, SlotData(slot.credential, slot.model, dict(slot.params), slot.system_prompt)
    )
    _replace_slots(actor, comparison, data)
    return comparison.slots.get(position=index + 1)


@transaction.atomic
def slot_remove(*, actor, comparison: Comparison, slot: Slot) -> None:
    access.require(actor, comparison, Action.WRITE)
    slots = comparison_slots(comparison)
    if len(slots) <= MIN_SLOTS:
        raise ValidationError(f"A comparison needs at least {MIN_SLOTS} slots.")
    _replace_slots(actor, comparison, [_slot_data(s) for s in slots if s.pk != slot.pk])


@transaction.atomic
def slot_move(*, actor, comparison: Comparison, slot: Slot, offset: int) -> None:
    """Move a slot left (-1) or right (+1); at either end nothing changes."""
    access.require(actor, comparison, Action.WRITE)
    slots = comparison_slots(comparison)
    index = next(i for i, s in enumerate(slots) if s.pk == slot.pk)
    target = index + (1 if offset > 0 else -1)
    if not 0 <= target < len(slots):
        return
    slots[index], slots[target] = slots[target], slots[index]
    for position, moved in enumerate(slots):
        if moved.position != position:
            Slot.objects.filter(pk=moved.pk).update(position=position)


@transaction.atomic
def comparison_clone(*, actor, comparison: Comparison) -> Comparison:
    """A copy of the input, slots, shared-context collections and judge (not the runs), for the
    same owner."""
    access.require(actor, comparison, Action.WRITE)
    copy = comparison_create(
        actor=actor,
        owner_team=comparison.owner_team,
        title=f"Copy of {comparison.display_title}"[:200],
        system_prompt=comparison.system_prompt,
        history=comparison.history,
        prompt=comparison.prompt,
        slots=[
            SlotData(s.credential, s.model, dict(s.params), s.system_prompt)
            for s in comparison_slots(comparison)
        ],
        source_conversation=comparison.source_conversation,
        prompt_link=(
            comparison.prompt_version,
            comparison.prompt_values,
            comparison.prompt_with_system,
        ),
    )
    for collection in grounding.comparison_collections(comparison=comparison):
        try:  # one the actor can't read (or that no longer fits) stays behind
            grounding.collection_attach(actor=actor, comparison=copy, collection_id=collection.pk)
        except (Http404, ValidationError):
            continue
    if comparison.judge_credential_id and comparison.judge_model:
        copy.judge_credential_id, copy.judge_model = (
            comparison.judge_credential_id,
            comparison.judge_model,
        )
        copy.save(update_fields=["judge_credential", "judge_model"])
    return copy


def comparison_delete(*, actor, comparison: Comparison) -> None:
    access.require(actor, comparison, Action.MANAGE if comparison.owner_team_id else Action.WRITE)
    comparison.delete()


def comparison_from_conversation(*, actor, conversation, message_id, owner_team=None) -> Comparison:
    """ "Compare this conversation": the chat's path up to `message_id` becomes the input. A
    reply is compared by asking again what it answered (the history stops at its question).
    The comparison belongs to the conversation's team when the actor may use it, else to the
    actor."""
    access.require(actor, conversation, Action.READ)
    turns = chat_selectors.conversation_turns(conversation=conversation, upto_id=message_id)
    while turns and turns[-1].role != "user":
        turns.pop()
    if not turns:
        raise ValidationError("Pick a message after the first question.")
    team = conversation.owner_team
    if team is not None and not access.allows(actor, team, Action.USE):
        team = None
    slots = _default_slots(actor, team)
    usable = {c.pk for c in selectors.credentials_for_owner(user=actor, owner_team=team)}
    if conversation.credential_id in usable and conversation.model:
        # The conversation's own model first, then something else to compare it with.
        others = [
            s
            for s in slots
            if (getattr(s.credential, "pk", None), s.model)
            != (conversation.credential_id, conversation.model)
        ]
        own = SlotData(conversation.credential, conversation.model, dict(conversation.params or {}))
        slots = [own, *others[:1]]
    return comparison_create(
        actor=actor,
        owner_team=team,
        title=f"Compare: {conversation.display_title}"[:200],
        system_prompt=conversation.system_prompt,
        history=[{"role": m.role, "content": m.content} for m in turns[:-1] if m.content],
        prompt=turns[-1].content,
        slots=slots,
        source_conversation=conversation,
    )
