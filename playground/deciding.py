"""Deciding after a run: ratings (which count for the library prompt that made the answer),
the winner, and taking answers on into chat (grounded like they were)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts import access
from accounts.access import Action
from chats import grounding as chat_grounding
from chats import services as chat_services
from playground import grounding, selectors
from playground.inputs import check_text
from playground.models import Answer, AnswerStatus, Run


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
    answer.note = check_text(note, "note", 1000).strip()
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
