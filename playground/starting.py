"""Starting a run: what it would cost (the estimate), whether it may run, and the run and its
answers written with the plans that start them (playground.runs streams them)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts import access
from accounts.access import Action
from playground import estimates, grounding, selectors
from playground.inputs import check_credential, comparison_slots
from playground.models import MAX_SLOTS, MIN_SLOTS, Answer, AnswerStatus, Comparison, Run, Slot
from playground.runs import AnswerPlan
from providers.adapters.base import CompletionRequest
from providers.adapters.base import Message as Turn


class NeedsConfirmation(Exception):
    """A soft budget limit would be passed: the user must say "run anyway"."""

    def __init__(self, estimate: estimates.Estimate):
        self.estimate = estimate
        super().__init__("This run passes a soft budget limit; confirm to run it anyway.")


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
    slots = comparison_slots(comparison)
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
    slots = comparison_slots(comparison)
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
