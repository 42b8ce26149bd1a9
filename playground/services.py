"""Writes for comparisons: the input, the slots, runs, ratings and winners, and the way to chat
and back. Arena battles are in arena.py."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.http import Http404
from django.utils import timezone

from accounts import access
from accounts.access import Action
from accounts.models import Team
from chats import grounding as chat_grounding
from chats import selectors as chat_selectors
from chats import services as chat_services
from playground import estimates, grounding, selectors
from playground.models import MAX_SLOTS, MIN_SLOTS, Answer, AnswerStatus, Comparison, Run, Slot
from playground.runs import AnswerPlan
from providers.adapters.base import CompletionRequest
from providers.adapters.base import Message as Turn

PARAM_KEYS = ("temperature", "top_p", "max_tokens", "seed")
MAX_PROMPT = 200_000  # characters, like a chat message
MAX_HISTORY = 500  # turns
MAX_SYSTEM = 100_000


@dataclass(frozen=True)
class SlotData:
    """A slot as a form or the API gives it. `id` None: a new slot."""

    credential: object = None  # providers.ProviderCredential, checked by the caller's field
    model: str = ""
    params: dict = field(default_factory=dict)
    system_prompt: str = ""
    id: int | None = None


class NeedsConfirmation(Exception):
    """A soft budget limit would be passed: the user must say "run anyway"."""

    def __init__(self, estimate: estimates.Estimate):
        self.estimate = estimate
        super().__init__("This run passes a soft budget limit; confirm to run it anyway.")


# --- Checks ----------------------------------------------------------------------------------------


def clean_params(params: dict | None) -> dict:
    clean = {}
    for key in PARAM_KEYS:
        value = (params or {}).get(key)
        if value in (None, ""):
            continue
        try:
            clean[key] = int(value) if key in ("max_tokens", "seed") else float(value)
        except (TypeError, ValueError):
            raise ValidationError({key: f"{key} must be a number."}) from None
    if "temperature" in clean and not 0 <= clean["temperature"] <= 2:
        raise ValidationError({"temperature": "Temperature is between 0 and 2."})
    if "top_p" in clean and not 0 < clean["top_p"] <= 1:
        raise ValidationError({"top_p": "Top p is greater than 0 and at most 1."})
    if "max_tokens" in clean and not 1 <= clean["max_tokens"] <= 1_000_000:
        raise ValidationError({"max_tokens": "Max tokens is between 1 and 1,000,000."})
    if "seed" in clean and not -(2**63) <= clean["seed"] < 2**63:
        raise ValidationError({"seed": "The seed is a 64-bit integer."})
    return clean


def check_credential(*, actor, owner, credential) -> None:
    """A comparison runs on its owner's credentials only: the team's for a team's, personal ones
    for a personal one (the rule chat follows). As in chat: 404 for a credential the actor can't
    see (ids reveal nothing), then the ownership rule's reason, then the role (403)."""
    if credential is None:
        return
    access.require(actor, credential, Action.READ)
    if isinstance(owner, Team):
        if credential.owner_team_id != owner.pk:
            raise ValidationError(
                {
                    "model": f"“{credential.name}” isn't one of {owner.name}'s credentials; a "
                    "team comparison runs on the team's models only (the team pays for it)."
                }
            )
    elif credential.owner_user_id != owner.pk:
        raise ValidationError(
            {
                "model": f"“{credential.name}” belongs to a team; a personal comparison runs on "
                "your personal credentials only."
            }
        )
    access.require(actor, credential, Action.USE)


def _check_text(value: str, name: str, limit: int) -> str:
    value = value or ""
    if not isinstance(value, str):
        raise ValidationError({name: "Text expected."})
    if len(value) > limit:
        raise ValidationError({name: f"At most {limit:,} characters."})
    return value


def _check_history(history) -> list[dict]:
    if history in (None, ""):
        return []
    if not isinstance(history, list) or len(history) > MAX_HISTORY:
        raise ValidationError({"history": f"A list of at most {MAX_HISTORY} turns."})
    clean = []
    for index, turn in enumerate(history):
        if (
            not isinstance(turn, dict)
            or turn.get("role") not in ("user", "assistant")
            or not isinstance(turn.get("content"), str)
        ):
            raise ValidationError(
                {"history": f"Turn {index + 1}: a role (user or assistant) and text content."}
            )
        clean.append(
            {"role": turn["role"], "content": _check_text(turn["content"], "history", MAX_PROMPT)}
        )
    return clean


# --- Comparisons -----------------------------------------------------------------------------------


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
        title=_check_text(title, "title", 200).strip(),
        created_by=actor,
        system_prompt=_check_text(system_prompt, "system_prompt", MAX_SYSTEM),
        history=_check_history(history),
        prompt=_check_text(prompt, "prompt", MAX_PROMPT),
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
        slot.system_prompt = _check_text(data.system_prompt, "system_prompt", MAX_SYSTEM)
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
        comparison.title = _check_text(title, "title", 200).strip()
        fields.append("title")
    if system_prompt is not None:
        comparison.system_prompt = _check_text(system_prompt, "system_prompt", MAX_SYSTEM)
        fields.append("system_prompt")
    if history is not None:
        comparison.history = _check_history(history)
        fields.append("history")
    if prompt is not None:
        comparison.prompt = _check_text(prompt, "prompt", MAX_PROMPT)
        fields.append("prompt")
    comparison.updated_at = timezone.now()
    # Only what changed: a run going on meanwhile updates the run count.
    comparison.save(update_fields=fields)
    if slots is not None:
        _replace_slots(actor, comparison, slots)
    return comparison


def _slot_data(slot: Slot) -> SlotData:
    return SlotData(slot.credential, slot.model, dict(slot.params), slot.system_prompt, slot.pk)


def _slots(comparison: Comparison) -> list[Slot]:
    return list(comparison.slots.select_related("credential").order_by("position", "id"))


@transaction.atomic
def slot_add(*, actor, comparison: Comparison) -> Slot:
    """A new slot at the end, on the same model as the last one (the usual next step is to
    change one thing)."""
    access.require(actor, comparison, Action.WRITE)
    slots = _slots(comparison)
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
    slots = _slots(comparison)
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
    slots = _slots(comparison)
    if len(slots) <= MIN_SLOTS:
        raise ValidationError(f"A comparison needs at least {MIN_SLOTS} slots.")
    _replace_slots(actor, comparison, [_slot_data(s) for s in slots if s.pk != slot.pk])


@transaction.atomic
def slot_move(*, actor, comparison: Comparison, slot: Slot, offset: int) -> None:
    """Move a slot left (-1) or right (+1); at either end nothing changes."""
    access.require(actor, comparison, Action.WRITE)
    slots = _slots(comparison)
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
            for s in _slots(comparison)
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


# --- Runs ------------------------------------------------------------------------------------------


def _turns(history: list[dict], prompt: str) -> list[tuple[str, str]]:
    return [(t["role"], t["content"]) for t in history] + [("user", prompt)]


def slot_inputs(comparison: Comparison, slots: list[Slot]) -> list[estimates.SlotInput]:
    return [
        estimates.SlotInput(
            position=slot.position,
            credential=slot.credential,
            model=slot.model,
            system_prompt=slot.system_prompt or comparison.system_prompt,
            max_tokens=(slot.params or {}).get("max_tokens"),
        )
        for slot in slots
    ]


def comparison_estimate(*, actor, comparison: Comparison) -> estimates.Estimate:
    slots = _slots(comparison)
    return estimates.estimate(
        actor=actor,
        slots=slot_inputs(comparison, slots),
        turns=_turns(comparison.history, comparison.prompt),
    )


def _check_runnable(actor, comparison: Comparison, slots: list[Slot]) -> None:
    if not comparison.prompt.strip():
        raise ValidationError({"prompt": "Write a prompt first."})
    if not MIN_SLOTS <= len(slots) <= MAX_SLOTS:
        raise ValidationError(f"A comparison runs {MIN_SLOTS} to {MAX_SLOTS} slots.")
    for number, slot in enumerate(slots, start=1):
        if slot.credential is None or not slot.model:
            raise ValidationError({"model": f"Slot {number}: pick a model."})
        if not slot.credential.is_active:
            raise ValidationError(
                {"model": f"Slot {number}: “{slot.credential.name}” is deactivated."}
            )
        check_credential(actor=actor, owner=comparison.owner, credential=slot.credential)


def answer_request(*, model: str, params: dict, system: str, turns) -> CompletionRequest:
    return CompletionRequest(
        model=model,
        messages=tuple(Turn(role, content) for role, content in turns),
        system=system,
        temperature=params.get("temperature"),
        top_p=params.get("top_p"),
        max_tokens=params.get("max_tokens"),
        seed=params.get("seed"),
    )


def _run_judge(actor, comparison: Comparison) -> tuple[int, str] | None:
    """The judge a grounded run is scored by: the comparison's (its owner rule was checked when
    it was picked). Whether the runner may still use it is the gate's check at each judge call
    — a refusal is each answer's judge error, never a run that won't start."""
    if comparison.judge_credential_id is None or not comparison.judge_model:
        return None
    return comparison.judge_credential_id, comparison.judge_model


@transaction.atomic
def run_start(
    *, actor, comparison: Comparison, confirm: bool = False
) -> tuple[Run, list[AnswerPlan]]:
    """Create a run with an answer per slot, all `streaming`, and the plans to start them.

    Raises NeedsConfirmation when a soft budget limit would be passed and `confirm` is False.
    A hard limit is not an error here: that slot's call is refused by the gate (its own error,
    naming the budget) and the other slots run."""
    access.require(actor, comparison, Action.USE)
    comparison = Comparison.objects.select_for_update().get(pk=comparison.pk)
    slots = _slots(comparison)
    _check_runnable(actor, comparison, slots)
    estimate = estimates.estimate(
        actor=actor,
        slots=slot_inputs(comparison, slots),
        turns=_turns(comparison.history, comparison.prompt),
    )
    if estimate.needs_confirmation and not confirm:
        raise NeedsConfirmation(estimate)
    link = selectors.prompt_link(comparison=comparison)
    version = link.version if link is not None and link.holds else None
    # The same context keys as prompts.rendering.Rendered.usage_context (the ledger's key).
    usage_context = (
        (("prompt_template", version.template_id), ("prompt_version", version.pk))
        if version is not None
        else ()
    )
    now = timezone.now()
    run = Run(
        comparison=comparison,
        number=comparison.run_count + 1,
        created_by=actor,
        system_prompt=comparison.system_prompt,
        history=comparison.history,
        prompt=comparison.prompt,
        prompt_version=version,
        estimate=estimate.total,
        created_at=now,
        owner_user_id=comparison.owner_user_id,
        owner_team_id=comparison.owner_team_id,
    )
    grounding_ids = grounding.run_collection_ids(comparison=comparison)
    judge = _run_judge(actor, comparison) if grounding_ids else None
    if judge is not None:
        run.judge_credential_id, run.judge_model = judge
    run.save()
    by_position = {row.position: row for row in estimate.slots}
    answers = Answer.objects.bulk_create(
        [
            Answer(
                run=run,
                position=position,
                slot=slot,
                credential=slot.credential,
                credential_name=slot.credential.name,
                preset=slot.credential.preset,
                model=slot.model,
                params=slot.params,
                system_prompt=slot.system_prompt or comparison.system_prompt,
                status=AnswerStatus.STREAMING,
                estimate=getattr(by_position.get(slot.position), "cost", None),
                created_at=now,
                heartbeat_at=now,
            )
            for position, slot in enumerate(slots)
        ]
    )
    Comparison.objects.filter(pk=comparison.pk).update(run_count=F("run_count") + 1, updated_at=now)
    turns = _turns(comparison.history, comparison.prompt)
    plans = [
        AnswerPlan(
            answer_id=answer.pk,
            run_id=run.pk,
            topic=comparison.pk,
            user_id=actor.pk,
            user=actor,
            credential_id=answer.credential_id,
            request=answer_request(
                model=answer.model, params=answer.params, system=answer.system_prompt, turns=turns
            ),
            grounding_ids=grounding_ids,
            judge=judge,
            usage_context=usage_context,
        )
        for answer in answers
    ]
    return run, plans


def answers_to_stop(*, actor, run: Run, answer_id=None) -> list[int]:
    """The answers of *this* run a Stop applies to: one, or all still streaming."""
    access.require(actor, run, Action.USE)
    if answer_id is not None:
        return [selectors.answer_in(run=run, pk=answer_id).pk]
    return list(run.answers.filter(status=AnswerStatus.STREAMING).values_list("pk", flat=True))


# --- Deciding --------------------------------------------------------------------------------------


def answer_rate(*, actor, answer: Answer, rating, note: str = "") -> Answer:
    """1–5 (None clears it) and a note."""
    access.require(actor, answer.run, Action.WRITE)
    if rating in ("", None):
        rating = None
    else:
        try:
            rating = int(rating)
        except (TypeError, ValueError):
            raise ValidationError({"rating": "A rating is 1 to 5."}) from None
        if not 1 <= rating <= 5:
            raise ValidationError({"rating": "A rating is 1 to 5."})
    answer.rating = rating
    answer.note = _check_text(note, "note", 1000).strip()
    with transaction.atomic():
        answer.save(update_fields=["rating", "note"])
        _prompt_feedback(actor=actor, answer=answer)
    return answer


def _prompt_feedback(*, actor, answer: Answer) -> None:
    """A rating of an answer a library prompt made counts for that version (its page shows
    playground ratings): five stars as (n - 1) / 4. An answer has one rating (the last
    rater's), so it has one score too (no user on it): re-rating replaces, clearing removes."""
    from prompts import services as prompt_services
    from prompts.models import FeedbackSource

    version_id = answer.run.prompt_version_id
    if version_id is None:
        return
    key = f"answer:{answer.pk}"
    if answer.rating is None:
        prompt_services.feedback_forget(
            version_id=version_id, source=FeedbackSource.PLAYGROUND, key=key, user=None
        )
        return
    prompt_services.feedback_record(
        version=answer.run.prompt_version,
        source=FeedbackSource.PLAYGROUND,
        key=key,
        score=(answer.rating - 1) / 4,
        user=None,
    )


def run_pick_winner(*, actor, run: Run, answer_id) -> Run:
    """The answer that won this run (None: no winner)."""
    access.require(actor, run, Action.WRITE)
    run.winner = selectors.answer_in(run=run, pk=answer_id) if answer_id not in (None, "") else None
    run.save(update_fields=["winner"])
    return run


def answer_continue_in_chat(*, actor, answer: Answer):
    """A conversation with the run's input and this answer, on the answer's model, owned like
    the run — ready for the next question."""
    run = answer.run
    access.require(actor, run, Action.USE)
    if answer.status == AnswerStatus.STREAMING:
        raise ValidationError("Wait for this answer to finish.")
    credential = answer.credential
    if credential is not None and not access.allows(actor, credential, Action.USE):
        credential = None
    turns = [{"role": t["role"], "content": t["content"]} for t in run.history]
    turns.append({"role": "user", "content": run.prompt})
    turns.append(
        {
            "role": "assistant",
            "content": answer.text,
            "model": answer.model,
            "credential": credential,
            "credential_name": answer.credential_name,
            "preset": answer.preset,
            "params": answer.params,
            "input_tokens": answer.input_tokens,
            "output_tokens": answer.output_tokens,
            "tokens_estimated": answer.tokens_estimated,
            "cost_source": answer.cost_source,
            "ttft_ms": answer.ttft_ms,
            "tokens_per_second": answer.tokens_per_second,
            "duration_ms": answer.duration_ms,
        }
    )
    title = (run.comparison.display_title if run.comparison_id else "Arena") + f" · {answer.model}"
    conversation = chat_services.conversation_from_turns(
        actor=actor,
        owner_team=run.owner_team,
        credential=credential,
        model=answer.model if credential is not None else "",
        system_prompt=answer.system_prompt,
        params=answer.params,
        title=title[:200],
        turns=turns,
    )
    grounded_in = _run_grounding(run)
    if grounded_in:
        # The next question is grounded like the answer was (what `actor` may read only).
        chat_grounding.collections_carry(
            actor=actor, conversation=conversation, collection_ids=grounded_in
        )
    return conversation


def _run_grounding(run: Run) -> list[int]:
    """The collections a run was grounded in: its comparison's (those a run would search now)
    and any its sources came from. None for a run without shared context."""
    if run.retrieval is None:
        return []
    ids = list(grounding.run_collection_ids(comparison=run.comparison)) if run.comparison else []
    for source in run.retrieval.get("sources") or []:
        if isinstance(source.get("collection"), int):
            ids.append(source["collection"])
    return list(dict.fromkeys(ids))


def run_continue_in_chat(*, actor, run: Run) -> list:
    """One conversation per answer that has text."""
    access.require(actor, run, Action.USE)
    answers = [a for a in run.answers.order_by("position") if a.text and not a.is_streaming]
    if not answers:
        raise ValidationError("No answer to continue yet.")
    return [answer_continue_in_chat(actor=actor, answer=a) for a in answers]
