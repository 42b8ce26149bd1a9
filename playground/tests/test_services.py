"""Comparisons, slots, estimates, deciding, and the way to chat and back (playground.services)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from billing import pricing
from chats import services as chat_services
from chats.models import Message
from playground import estimates, selectors, services
from playground.models import Answer, Comparison, Run
from playground.services import SlotData
from providers import services as provider_services
from providers import tokens
from providers.adapters.base import Message as Turn

pytestmark = pytest.mark.django_db


def test_a_new_comparison_starts_with_two_of_the_owners_models(alice, openai_fake):
    comparison = services.comparison_create(actor=alice)
    slots = list(comparison.slots.order_by("position"))
    assert [(s.credential_id, s.model) for s in slots] == [
        (openai_fake.pk, "gpt-4o"),
        (openai_fake.pk, "gpt-4o-mini"),
    ]
    assert comparison.owner_user == alice


def test_a_team_comparison_runs_only_on_the_teams_credentials(
    alice, team, bob_teammate, models_on, openai_fake
):
    team_credential = models_on(team, "openai", "gpt-4o", name="Acme OpenAI")
    comparison = services.comparison_create(actor=bob_teammate, owner_team=team)
    assert {s.credential_id for s in comparison.slots.all()} == {team_credential.pk}
    # alice's personal key can't be put into the team's comparison, nor a team's into hers.
    with pytest.raises(ValidationError, match="team comparison runs on the team's models"):
        services.comparison_save(
            actor=alice,
            comparison=comparison,
            slots=[SlotData(openai_fake, "gpt-4o"), SlotData(team_credential, "gpt-4o")],
        )
    mine = services.comparison_create(actor=alice, slots=[SlotData(openai_fake, "gpt-4o")] * 2)
    with pytest.raises(ValidationError, match="personal comparison runs on your personal"):
        services.comparison_save(
            actor=alice, comparison=mine, slots=[SlotData(team_credential, "gpt-4o")] * 2
        )
    # bob may not even use alice's personal credential: 404, not a hint that it exists.
    with pytest.raises(Http404):
        services.comparison_save(
            actor=bob_teammate, comparison=comparison, slots=[SlotData(openai_fake, "gpt-4o")] * 2
        )


def test_a_viewer_cannot_change_or_run_a_team_comparison(alice, team, vera_viewer, models_on):
    credential = models_on(team, "openai", "gpt-4o", name="Acme OpenAI")
    comparison = services.comparison_create(
        actor=alice, owner_team=team, prompt="hi", slots=[SlotData(credential, "gpt-4o")] * 2
    )
    with pytest.raises(PermissionDenied):
        services.comparison_save(actor=vera_viewer, comparison=comparison, title="mine now")
    with pytest.raises(PermissionDenied):
        services.run_start(actor=vera_viewer, comparison=comparison)
    with pytest.raises(PermissionDenied):
        services.comparison_create(actor=vera_viewer, owner_team=team)


def test_slots_are_added_duplicated_moved_and_removed_within_two_to_eight(alice, comparison):
    first, second = comparison.slots.order_by("position")
    services.comparison_save(
        actor=alice,
        comparison=comparison,
        slots=[
            SlotData(
                first.credential, "gpt-4o-mini", {"temperature": "0.3"}, "Be terse.", first.pk
            ),
            SlotData(second.credential, "gpt-4o", {}, "", second.pk),
        ],
    )
    copy = services.slot_duplicate(
        actor=alice, comparison=comparison, slot=comparison.slots.get(pk=first.pk)
    )
    assert (copy.position, copy.model, copy.params, copy.system_prompt) == (
        1,
        "gpt-4o-mini",
        {"temperature": 0.3},
        "Be terse.",
    )
    services.slot_move(actor=alice, comparison=comparison, slot=copy, offset=1)
    assert [s.pk for s in comparison.slots.order_by("position")] == [first.pk, second.pk, copy.pk]
    services.slot_move(actor=alice, comparison=comparison, slot=copy, offset=1)  # at the end
    assert [s.pk for s in comparison.slots.order_by("position")] == [first.pk, second.pk, copy.pk]
    while comparison.slots.count() < 8:
        services.slot_add(actor=alice, comparison=comparison)
    with pytest.raises(ValidationError, match="at most 8"):
        services.slot_add(actor=alice, comparison=comparison)
    with pytest.raises(ValidationError, match="at most 8"):
        services.slot_duplicate(actor=alice, comparison=comparison, slot=copy)
    for slot in list(comparison.slots.order_by("-position"))[:6]:
        services.slot_remove(actor=alice, comparison=comparison, slot=slot)
    with pytest.raises(ValidationError, match="at least 2"):
        services.slot_remove(actor=alice, comparison=comparison, slot=comparison.slots.first())
    assert [s.position for s in comparison.slots.order_by("position")] == [0, 1]


def test_bad_parameters_are_refused_with_the_fields_name(alice, comparison, openai_fake):
    for params, message in (
        ({"temperature": 3}, "Temperature"),
        ({"top_p": 0}, "Top p"),
        ({"max_tokens": 0}, "Max tokens"),
        ({"seed": "x"}, "seed must be a number"),
    ):
        with pytest.raises(ValidationError, match=message):
            services.comparison_save(
                actor=alice,
                comparison=comparison,
                slots=[SlotData(openai_fake, "gpt-4o", params)] * 2,
            )


def test_the_estimate_is_prompt_tokens_plus_max_tokens_at_each_models_price(
    alice, openai_fake, models_on
):
    local = models_on(alice, "ollama", "llama3.2:3b", name="Local")
    comparison = services.comparison_create(
        actor=alice,
        system_prompt="Be brief.",
        prompt="Explain entropy.",
        slots=[
            SlotData(openai_fake, "gpt-4o", {"max_tokens": 200}),
            SlotData(openai_fake, "gpt-4o-mini"),
            SlotData(local, "llama3.2:3b"),
        ],
    )
    estimate = services.comparison_estimate(actor=alice, comparison=comparison)
    prompt = tokens.count_messages([Turn("system", "Be brief."), Turn("user", "Explain entropy.")])
    gpt4o, mini, llama = estimate.slots
    assert gpt4o.prompt_tokens == prompt and gpt4o.output_tokens == 200
    assert not gpt4o.output_assumed and mini.output_assumed
    assert mini.output_tokens == estimates.DEFAULT_OUTPUT
    expected = pricing.cost_for(
        provider_id="openai",
        preset="openai",
        model="gpt-4o",
        local=False,
        tokens=pricing.Tokens(input=prompt, output=200, estimated=True),
    ).amount
    assert gpt4o.cost == expected > 0
    assert (llama.cost, llama.source) == (Decimal(0), "local")
    assert estimate.total == gpt4o.cost + mini.cost
    assert not estimate.needs_confirmation


def test_a_very_long_prompt_is_estimated_without_counting_every_token(alice, comparison):
    # 255,000 characters in all: past the counter's cap (the prompt alone may hold 200,000).
    assert tokens.EXACT_CAP < 255_000
    words = 15_000 + 36_000
    services.comparison_save(
        actor=alice, comparison=comparison, system_prompt="note " * 15_000, prompt="word " * 36_000
    )
    estimate = services.comparison_estimate(actor=alice, comparison=comparison)
    assert not estimate.counted_exactly
    assert words * 0.9 <= estimate.slots[0].prompt_tokens <= words * 1.5


def test_a_run_copies_what_it_was_made_with(alice, comparison):
    run, plans = services.run_start(actor=alice, comparison=comparison)
    services.comparison_save(actor=alice, comparison=comparison, prompt="changed later")
    run.refresh_from_db()
    assert (run.number, run.prompt, run.comparison_id) == (
        1,
        "Write a haiku about tea.",
        comparison.pk,
    )
    assert [a.model for a in run.answers.order_by("position")] == ["gpt-4o-mini", "gpt-4o"]
    assert [p.request.messages[-1].content for p in plans] == ["Write a haiku about tea."] * 2
    assert all(a.status == "streaming" and a.heartbeat_at for a in run.answers.all())
    assert run.estimate > 0
    second, _ = services.run_start(actor=alice, comparison=comparison)
    assert second.number == 2
    comparison.refresh_from_db()
    assert comparison.run_count == 2


def test_a_run_needs_a_prompt_and_a_model_in_every_slot(alice, comparison, openai_fake):
    services.comparison_save(actor=alice, comparison=comparison, prompt="  ")
    with pytest.raises(ValidationError, match="Write a prompt"):
        services.run_start(actor=alice, comparison=comparison)
    services.comparison_save(
        actor=alice,
        comparison=comparison,
        prompt="hi",
        slots=[SlotData(openai_fake, "gpt-4o"), SlotData()],
    )
    with pytest.raises(ValidationError, match="Slot 2: pick a model"):
        services.run_start(actor=alice, comparison=comparison)
    openai_fake.is_active = False
    openai_fake.save()
    services.comparison_save(
        actor=alice, comparison=comparison, slots=[SlotData(openai_fake, "gpt-4o")] * 2
    )
    with pytest.raises(ValidationError, match="deactivated"):
        services.run_start(actor=alice, comparison=comparison)
    assert not Run.objects.exists()


def _finished_run(comparison) -> Run:
    run = Run.objects.create(
        comparison=comparison, owner_user=comparison.owner_user, prompt=comparison.prompt
    )
    for i, slot in enumerate(comparison.slots.order_by("position")):
        Answer.objects.create(
            run=run,
            position=i,
            slot=slot,
            credential=slot.credential,
            credential_name=slot.credential.name,
            preset="openai",
            model=slot.model,
            text=f"answer {i}",
            status="complete",
            input_tokens=10,
            output_tokens=20,
            cost=Decimal("0.001"),
            cost_source="provider",
            ttft_ms=100,
            duration_ms=900,
            system_prompt="Be kind.",
            params={"temperature": 0.5},
        )
    return run


def test_ratings_and_the_winner_belong_to_this_run(alice, comparison, openai_fake):
    run = _finished_run(comparison)
    answer = run.answers.get(position=1)
    services.answer_rate(actor=alice, answer=answer, rating="4", note="  crisp  ")
    answer.refresh_from_db()
    assert (answer.rating, answer.note) == (4, "crisp")
    for bad in (0, 6, "x"):
        with pytest.raises(ValidationError):
            services.answer_rate(actor=alice, answer=answer, rating=bad)
    services.run_pick_winner(actor=alice, run=run, answer_id=answer.pk)
    assert Run.objects.get(pk=run.pk).winner_id == answer.pk
    other = _finished_run(
        services.comparison_create(actor=alice, slots=[SlotData(openai_fake, "gpt-4o")] * 2)
    )
    with pytest.raises(Http404):
        services.run_pick_winner(actor=alice, run=run, answer_id=other.answers.first().pk)
    services.run_pick_winner(actor=alice, run=run, answer_id=None)
    assert Run.objects.get(pk=run.pk).winner_id is None


def test_continue_in_chat_opens_the_history_and_the_chosen_answer(alice, comparison):
    comparison.history = [
        {"role": "user", "content": "Earlier question"},
        {"role": "assistant", "content": "Earlier answer"},
    ]
    comparison.save()
    run = _finished_run(comparison)
    run.history = comparison.history
    run.save()
    answer = run.answers.get(position=1)
    conversation = services.answer_continue_in_chat(actor=alice, answer=answer)
    messages = list(Message.objects.filter(conversation=conversation).order_by("created_at", "id"))
    assert [(m.role, m.content) for m in messages] == [
        ("user", "Earlier question"),
        ("assistant", "Earlier answer"),
        ("user", "Write a haiku about tea."),
        ("assistant", "answer 1"),
    ]
    last = messages[-1]
    assert (last.model, last.output_tokens, last.cost) == ("gpt-4o", 20, None)  # spend stays put
    assert (conversation.model, conversation.credential_id) == ("gpt-4o", answer.credential_id)
    assert conversation.system_prompt == "Be kind." and conversation.params == {"temperature": 0.5}
    assert conversation.owner_user == alice
    # The chat continues from there: the next reply sees the whole path.
    from chats import selectors as chat_selectors

    view = chat_selectors.conversation_view(conversation=conversation)
    assert [e.message.pk for e in view.entries] == [m.pk for m in messages]
    conversations = services.run_continue_in_chat(actor=alice, run=run)
    assert len(conversations) == 2


def test_compare_this_conversation_takes_the_path_up_to_the_chosen_message(
    alice, openai_fake, models_on
):
    other = models_on(alice, "anthropic", "claude-3-5-haiku-latest", name="Claude")
    conversation = chat_services.conversation_start(
        actor=alice, credential=openai_fake, model="gpt-4o", system_prompt="Sys"
    )
    turns = chat_services.conversation_from_turns(
        actor=alice,
        credential=openai_fake,
        model="gpt-4o",
        turns=[
            {"role": "user", "content": "Q1"},
            {"role": "assistant", "content": "A1"},
            {"role": "user", "content": "Q2"},
            {"role": "assistant", "content": "A2"},
        ],
    )
    a2 = turns.messages.get(content="A2")
    comparison = services.comparison_from_conversation(
        actor=alice, conversation=turns, message_id=a2.pk
    )
    assert comparison.history == [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
    ]
    assert comparison.prompt == "Q2"
    slots = list(comparison.slots.order_by("position"))
    assert (slots[0].credential_id, slots[0].model) == (openai_fake.pk, "gpt-4o")
    assert (slots[1].credential_id, slots[1].model) != (openai_fake.pk, "gpt-4o")
    assert other.pk in {s.credential_id for s in slots} or slots[1].model == "gpt-4o-mini"
    assert comparison.source_conversation == turns
    q1 = turns.messages.get(content="Q1")
    first = services.comparison_from_conversation(actor=alice, conversation=turns, message_id=q1.pk)
    assert (first.history, first.prompt) == ([], "Q1")
    with pytest.raises(Http404):
        services.comparison_from_conversation(
            actor=alice, conversation=turns, message_id=conversation.pk + 10_000
        )


def test_clone_copies_input_and_slots_not_runs(alice, comparison):
    _finished_run(comparison)
    copy = services.comparison_clone(actor=alice, comparison=comparison)
    assert copy.title == "Copy of Haiku test" and copy.prompt == comparison.prompt
    assert [(s.credential_id, s.model) for s in copy.slots.order_by("position")] == [
        (s.credential_id, s.model) for s in comparison.slots.order_by("position")
    ]
    assert not copy.runs.exists()


def test_lists_show_mine_and_the_current_teams(
    alice, team, bob_teammate, charlie_outsider, comparison
):
    echo = provider_services.credential_create(
        actor=alice, preset="echo", name="Acme echo", owner_team=team
    )
    shared = services.comparison_create(
        actor=bob_teammate, owner_team=team, slots=[SlotData(echo, "echo")] * 2
    )
    assert list(selectors.comparisons_for_user(user=alice)) == [comparison]
    assert set(selectors.comparisons_for_user(user=alice, team=team)) == {comparison, shared}
    assert list(selectors.comparisons_for_user(user=charlie_outsider, team=team)) == []
    assert Comparison.objects.count() == 2


def test_answers_of_a_dead_process_are_interrupted_and_their_run_closed(alice, comparison):
    from datetime import timedelta

    from django.utils import timezone

    from playground import runs

    run, _plans = services.run_start(actor=alice, comparison=comparison)
    Answer.objects.filter(run=run).update(
        text="partial", heartbeat_at=timezone.now() - timedelta(seconds=30)
    )
    live = Answer.objects.filter(run=run).order_by("position").last()
    Answer.objects.filter(pk=live.pk).update(heartbeat_at=timezone.now())  # still beating
    assert runs.answers_mark_stale() == 1
    run.refresh_from_db()
    assert run.finished_at is None  # one answer still streams
    Answer.objects.filter(pk=live.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=30))
    assert runs.answers_mark_stale(run_id=run.pk) == 1
    run.refresh_from_db()
    assert run.finished_at is not None
    assert {(a.status, a.text, a.error_code) for a in run.answers.all()} == {
        ("interrupted", "partial", "interrupted")
    }
