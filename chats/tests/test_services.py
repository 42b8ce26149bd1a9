"""chats.services, selectors and exports: conversations, the message tree, reply persistence,
search and the list, exports. No network: Echo credentials, and replies finished by hand with
`reply_finish` (what the runner calls)."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chats import exports, replies, selectors, services
from chats.models import Conversation, Message, MessageStatus
from providers import services as provider_services
from providers.adapters.base import Message as Turn

pytestmark = pytest.mark.django_db


# --- Helpers ---------------------------------------------------------------------------------------


def finish(plan_or_id, text: str, status: str = MessageStatus.COMPLETE, **fields) -> Message:
    message_id = getattr(plan_or_id, "message_id", plan_or_id)
    return replies.reply_finish(message_id=message_id, text=text, status=status, **fields)


def exchange(actor, conversation, parent_id, question: str, answer: str, **fields):
    """A question and its finished answer; returns (question, answer) messages."""
    plan = services.message_send(
        actor=actor, conversation=conversation, parent_id=parent_id, content=question
    )
    answer_message = finish(plan, answer, **fields)
    return Message.objects.get(pk=plan.created[0]), answer_message


def fresh(obj):
    obj.refresh_from_db()
    return obj


def visible_ids(conversation) -> list[int]:
    conversation = Conversation.objects.get(pk=conversation.pk)
    return [e.message.pk for e in selectors.conversation_view(conversation=conversation).entries]


def visible_texts(conversation) -> list[str]:
    conversation = Conversation.objects.get(pk=conversation.pk)
    return [
        e.message.content for e in selectors.conversation_view(conversation=conversation).entries
    ]


# --- conversation_start / conversation_update -------------------------------------------------------


def test_a_conversation_starts_personal_with_clean_parameters(alice, echo):
    conversation = services.conversation_start(
        actor=alice,
        credential=echo,
        model="echo",
        system_prompt="Be brief.",
        params={"temperature": "0.5", "top_p": 1, "max_tokens": "64", "seed": "7", "junk": 1},
    )
    conversation.refresh_from_db()
    assert conversation.owner_user == alice and conversation.owner_team is None
    assert conversation.params == {"temperature": 0.5, "top_p": 1.0, "max_tokens": 64, "seed": 7}
    assert conversation.title == "" and conversation.title_source == "auto"
    assert conversation.system_prompt == "Be brief."


@pytest.mark.parametrize(
    "params",
    [
        {"temperature": -0.1},
        {"temperature": 2.5},
        {"top_p": 0},
        {"top_p": 1.5},
        {"max_tokens": 0},
        {"max_tokens": 2_000_000},
        {"temperature": "warm"},
        {"seed": "x"},
    ],
)
def test_parameters_out_of_range_are_refused(params, alice, echo, conversation):
    with pytest.raises(ValidationError):
        services.conversation_start(actor=alice, credential=echo, model="echo", params=params)
    with pytest.raises(ValidationError):
        services.conversation_update(actor=alice, conversation=conversation, params=params)
    assert fresh(conversation).params == {}


def test_parameters_at_the_edges_of_their_ranges_are_accepted(alice, conversation):
    services.conversation_update(
        actor=alice,
        conversation=conversation,
        params={"temperature": 0, "top_p": 1, "max_tokens": 1},
    )
    assert fresh(conversation).params == {"temperature": 0.0, "top_p": 1.0, "max_tokens": 1}
    services.conversation_update(actor=alice, conversation=conversation, params={"temperature": 2})
    assert fresh(conversation).params == {"temperature": 2.0}


def test_a_credential_without_a_model_is_refused(alice, echo, conversation):
    with pytest.raises(ValidationError) as info:
        services.conversation_start(actor=alice, credential=echo, model="")
    assert "model" in info.value.message_dict
    with pytest.raises(ValidationError):
        services.conversation_update(actor=alice, conversation=conversation, model="")
    assert fresh(conversation).model == "echo"


def test_a_conversation_without_a_model_may_start(alice):
    conversation = services.conversation_start(actor=alice)
    assert conversation.credential is None and conversation.model == ""


def test_someone_elses_credential_cannot_be_used(charlie_outsider, echo):
    with pytest.raises(Http404):
        services.conversation_start(actor=charlie_outsider, credential=echo, model="echo")


def test_a_team_conversation_needs_use_on_the_team(
    team, bob_teammate, vera_viewer, charlie_outsider
):
    conversation = services.conversation_start(actor=bob_teammate, owner_team=team)
    assert conversation.owner_team == team and conversation.owner_user is None
    with pytest.raises(PermissionDenied):
        services.conversation_start(actor=vera_viewer, owner_team=team)
    with pytest.raises(Http404):
        services.conversation_start(actor=charlie_outsider, owner_team=team)
    assert Conversation.objects.count() == 1


def test_viewers_cannot_update_a_team_conversation(vera_viewer, team_conversation):
    for changes in ({"title": "Mine now"}, {"system_prompt": "x"}, {"params": {"seed": 1}}):
        with pytest.raises(PermissionDenied):
            services.conversation_update(
                actor=vera_viewer, conversation=team_conversation, **changes
            )
    team_conversation.refresh_from_db()
    assert team_conversation.title == "" and team_conversation.system_prompt == ""


def test_members_can_update_a_team_conversation(bob_teammate, team_conversation):
    services.conversation_update(
        actor=bob_teammate, conversation=team_conversation, title="  Plans  ", system_prompt="Hi"
    )
    team_conversation.refresh_from_db()
    assert team_conversation.title == "Plans" and team_conversation.title_source == "user"
    assert team_conversation.system_prompt == "Hi"


def test_outsiders_cannot_update_a_conversation(charlie_outsider, conversation):
    with pytest.raises(Http404):
        services.conversation_update(actor=charlie_outsider, conversation=conversation, title="x")


# --- message_send ------------------------------------------------------------------------------------


def test_send_creates_the_question_and_a_streaming_placeholder(alice, conversation):
    plan = services.message_send(
        actor=alice, conversation=conversation, parent_id=None, content="Hello?"
    )
    question, placeholder = Message.objects.order_by("id")
    assert plan.created == (question.pk, placeholder.pk)
    assert plan.message_id == placeholder.pk and plan.branch_from is None
    assert question.role == "user" and question.content == "Hello?" and question.parent is None
    assert placeholder.role == "assistant" and placeholder.status == MessageStatus.STREAMING
    assert placeholder.parent_id == question.pk and placeholder.model == "echo"
    assert placeholder.heartbeat_at is not None
    assert fresh(conversation).message_count == 2
    assert visible_ids(conversation) == [question.pk, placeholder.pk]


def test_the_history_is_the_system_prompt_and_the_path_only(alice, echo):
    conversation = services.conversation_start(
        actor=alice,
        credential=echo,
        model="echo",
        system_prompt="Be brief.",
        params={"temperature": 0.3, "seed": 4},
    )
    _q1, a1 = exchange(alice, conversation, None, "First question", "First answer")
    # Another branch beside a1 (a regenerated answer), then back to the first answer's branch.
    other = services.message_regenerate(actor=alice, conversation=conversation, message_id=a1.pk)
    finish(other, "OTHER BRANCH ANSWER")
    _q_other, _ = exchange(alice, conversation, other.message_id, "OTHER BRANCH QUESTION", "z")

    plan = services.message_send(
        actor=alice, conversation=conversation, parent_id=a1.pk, content="Second question"
    )

    request = plan.request
    assert request.system == "Be brief."
    assert request.model == "echo" and request.temperature == 0.3 and request.seed == 4
    assert list(request.messages) == [
        Turn("user", "First question"),
        Turn("assistant", "First answer"),
        Turn("user", "Second question"),
    ]
    assert request.all_messages()[0] == Turn("system", "Be brief.")
    assert plan.branch_from == a1.pk


def test_answering_a_reply_on_another_branch_makes_that_branch_the_visible_one(alice, conversation):
    """E.g. REST with a parent_id, or a `?leaf=` link, then Send: after a reload the message
    just sent is on the visible path (every ancestor choice that differed is rewritten)."""
    _q1, a1 = exchange(alice, conversation, None, "First question", "First answer")
    other = services.message_regenerate(actor=alice, conversation=conversation, message_id=a1.pk)
    finish(other, "OTHER BRANCH ANSWER")  # now the visible branch

    services.message_send(
        actor=alice, conversation=conversation, parent_id=a1.pk, content="Second question"
    )

    assert visible_texts(conversation)[:3] == ["First question", "First answer", "Second question"]


def test_a_send_reads_twice_and_writes_both_messages_and_the_count_in_one_statement(
    alice, conversation
):
    q1, a1 = exchange(alice, conversation, None, "First question", "First answer")
    conversation = selectors.conversation_for_reply(user=alice, pk=conversation.pk)
    before = Conversation.objects.get(pk=conversation.pk)

    with CaptureQueriesContext(connection) as queries:
        plan = services.message_send(
            actor=alice, conversation=conversation, parent_id=a1.pk, content="Second"
        )

    # The tree with the path's texts, then one write; no BEGIN/COMMIT around them.
    assert len(queries) == 2, [q["sql"][:60] for q in queries]
    asked, reply = Message.objects.filter(pk__in=plan.created).order_by("created_at", "id")
    assert (asked.parent_id, asked.role, asked.content) == (a1.pk, "user", "Second")
    assert "<p>Second</p>" in asked.content_html and asked.author_id == alice.pk
    assert (reply.parent_id, reply.role, reply.status) == (asked.pk, "assistant", "streaming")
    assert reply.pk == plan.message_id and reply.heartbeat_at is not None
    assert reply.credential_name == conversation.credential.name and reply.model == "echo"
    after = Conversation.objects.get(pk=conversation.pk)
    assert after.message_count == before.message_count + 2
    assert after.updated_at > before.updated_at
    assert list(plan.request.messages) == [
        Turn("user", "First question"),
        Turn("assistant", "First answer"),
        Turn("user", "Second"),
    ]
    assert [m.pk for m in plan.messages] == [asked.pk, reply.pk]
    assert plan.positions[asked.pk].count == 1 and q1.pk not in plan.created


def test_the_final_save_returns_the_position_and_the_conversations_totals(alice, conversation):
    _q1, a1 = exchange(alice, conversation, None, "Q", "A", cost=Decimal("0.01"))
    other = services.message_regenerate(actor=alice, conversation=conversation, message_id=a1.pk)

    with CaptureQueriesContext(connection) as queries:
        saved = finish(other, "B", cost=Decimal("0.02"), question="Q")

    assert len(queries) == 1
    assert (saved.position.index, saved.position.count) == (2, 2)
    assert saved.position.previous_id == a1.pk and saved.position.next_id is None
    stored = Conversation.objects.get(pk=conversation.pk)
    assert saved.conversation.cost_total == stored.cost_total == Decimal("0.03")
    assert saved.conversation.display_title == stored.title == "Q"
    assert (saved.content, saved.cost, saved.heartbeat_at) == ("B", Decimal("0.02"), None)


def test_the_final_save_of_a_deleted_conversations_reply_says_it_is_gone(alice, conversation):
    plan = services.message_send(
        actor=alice, conversation=conversation, parent_id=None, content="Q"
    )
    conversation.delete()

    with pytest.raises(Message.DoesNotExist):
        finish(plan, "A")


def test_a_failed_reply_without_text_is_left_out_of_the_history(alice, conversation):
    _q1, a1 = exchange(alice, conversation, None, "Q", "", status=MessageStatus.ERROR)
    plan = services.message_send(
        actor=alice, conversation=conversation, parent_id=a1.pk, content="Q2"
    )
    assert list(plan.request.messages) == [Turn("user", "Q"), Turn("user", "Q2")]


def test_a_parent_from_another_conversation_is_404_and_nothing_is_created(
    alice, echo, conversation
):
    elsewhere = services.conversation_start(actor=alice, credential=echo, model="echo")
    foreign, _ = exchange(alice, elsewhere, None, "private", "reply")
    before = Message.objects.count()
    with pytest.raises(Http404):
        services.message_send(
            actor=alice, conversation=conversation, parent_id=foreign.pk, content="x"
        )
    for bad in ("abc", 10**12):
        with pytest.raises(Http404):
            services.message_send(
                actor=alice, conversation=conversation, parent_id=bad, content="x"
            )
    assert Message.objects.count() == before
    assert fresh(conversation).message_count == 0


def test_a_reply_still_streaming_cannot_be_answered(alice, conversation):
    plan = services.message_send(
        actor=alice, conversation=conversation, parent_id=None, content="Q"
    )
    with pytest.raises(ValidationError):
        services.message_send(
            actor=alice, conversation=conversation, parent_id=plan.message_id, content="Q2"
        )
    assert Message.objects.count() == 2


def test_sending_needs_a_model(alice):
    conversation = services.conversation_start(actor=alice)
    with pytest.raises(ValidationError) as info:
        services.message_send(actor=alice, conversation=conversation, parent_id=None, content="Q")
    assert "model" in info.value.message_dict
    assert not Message.objects.exists()


@pytest.mark.parametrize("content", ["", "   \n", None, "x" * (services.MAX_CONTENT + 1)])
def test_empty_or_huge_messages_are_refused(content, alice, conversation):
    with pytest.raises(ValidationError):
        services.message_send(
            actor=alice, conversation=conversation, parent_id=None, content=content
        )
    assert not Message.objects.exists()


def test_viewers_cannot_send_into_a_team_conversation(vera_viewer, team_conversation):
    with pytest.raises(PermissionDenied):
        services.message_send(
            actor=vera_viewer, conversation=team_conversation, parent_id=None, content="hi"
        )
    assert not Message.objects.exists()


# --- message_edit / message_regenerate / message_continue ------------------------------------------


def test_editing_a_question_makes_a_sibling_and_a_new_reply(alice, conversation):
    q1, a1 = exchange(alice, conversation, None, "Original", "A1")
    q2, _a2 = exchange(alice, conversation, a1.pk, "Follow-up", "A2")

    plan = services.message_edit(
        actor=alice, conversation=conversation, message_id=q2.pk, content="Edited follow-up"
    )

    edited, reply = Message.objects.filter(pk__in=plan.created).order_by("id")
    assert edited.parent_id == a1.pk and edited.content == "Edited follow-up"
    assert reply.parent_id == edited.pk and reply.status == MessageStatus.STREAMING
    assert fresh(q2).content == "Follow-up"  # the original stays, as a sibling
    assert visible_ids(conversation) == [q1.pk, a1.pk, edited.pk, reply.pk]
    assert list(plan.request.messages)[-1] == Turn("user", "Edited follow-up")
    assert Turn("user", "Follow-up") not in plan.request.messages
    entry = selectors.entry_for(message=edited)
    assert (entry.position.index, entry.position.count) == (2, 2)
    assert entry.position.previous_id == q2.pk


def test_editing_the_first_question_makes_a_new_root(alice, conversation):
    q1, _ = exchange(alice, conversation, None, "First", "A")
    plan = services.message_edit(
        actor=alice, conversation=conversation, message_id=q1.pk, content="First, edited"
    )
    edited = Message.objects.get(pk=plan.created[0])
    assert edited.parent_id is None
    assert visible_ids(conversation) == [edited.pk, plan.message_id]
    assert list(plan.request.messages) == [Turn("user", "First, edited")]


def test_only_questions_can_be_edited(alice, conversation):
    _, a1 = exchange(alice, conversation, None, "Q", "A")
    with pytest.raises(ValidationError):
        services.message_edit(actor=alice, conversation=conversation, message_id=a1.pk, content="x")


def test_regenerate_makes_a_sibling_reply_with_the_current_model(alice, echo, conversation):
    other = provider_services.credential_create(actor=alice, preset="echo", name="second echo")
    q1, a1 = exchange(alice, conversation, None, "Question", "First answer")
    services.conversation_update(
        actor=alice, conversation=conversation, credential=other, model="other-model"
    )

    plan = services.message_regenerate(actor=alice, conversation=conversation, message_id=a1.pk)

    sibling = Message.objects.get(pk=plan.message_id)
    assert plan.created == (sibling.pk,) and plan.branch_from == q1.pk
    assert sibling.parent_id == q1.pk and sibling.status == MessageStatus.STREAMING
    assert sibling.model == "other-model" and sibling.credential_id == other.pk
    assert sibling.credential_name == "second echo"
    assert plan.credential_id == other.pk and plan.request.model == "other-model"
    assert list(plan.request.messages) == [Turn("user", "Question")]
    a1.refresh_from_db()
    assert a1.model == "echo" and a1.credential_id == echo.pk  # the first reply keeps its model
    assert visible_ids(conversation) == [q1.pk, sibling.pk]
    assert fresh(conversation).message_count == 3


def test_only_replies_can_be_regenerated(alice, conversation):
    q1, _ = exchange(alice, conversation, None, "Q", "A")
    with pytest.raises(ValidationError):
        services.message_regenerate(actor=alice, conversation=conversation, message_id=q1.pk)


def test_continue_extends_an_interrupted_reply_with_its_partial_text(alice, conversation):
    _q1, a1 = exchange(
        alice,
        conversation,
        None,
        "Tell a story",
        "Once upon a",
        status=MessageStatus.INTERRUPTED,
        error_code="stream_interrupted",
        input_tokens=3,
        output_tokens=3,
        cost=Decimal("0.001"),
    )

    plan = services.message_continue(actor=alice, conversation=conversation, message_id=a1.pk)

    assert plan.message_id == a1.pk and plan.created == ()
    assert plan.prefix == "Once upon a"
    assert plan.prior_cost == Decimal("0.001") and plan.prior_tokens == (3, 3, 0, 0, 0)
    assert list(plan.request.messages) == [
        Turn("user", "Tell a story"),
        Turn("assistant", "Once upon a"),
    ]
    a1.refresh_from_db()
    assert a1.status == MessageStatus.STREAMING and a1.error_code == ""
    assert a1.content == "Once upon a"  # kept until the continuation is saved
    # Once streaming again it can't be continued a second time.
    with pytest.raises(ValidationError):
        services.message_continue(actor=alice, conversation=conversation, message_id=a1.pk)


def test_a_stopped_reply_with_text_can_be_continued(alice, conversation):
    _, a1 = exchange(alice, conversation, None, "Q", "Partial", status=MessageStatus.STOPPED)
    plan = services.message_continue(actor=alice, conversation=conversation, message_id=a1.pk)
    assert plan.prefix == "Partial"


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (MessageStatus.COMPLETE, "Done"),
        (MessageStatus.ERROR, "Some"),
        (MessageStatus.INTERRUPTED, ""),
        (MessageStatus.STOPPED, ""),
    ],
)
def test_only_interrupted_or_stopped_replies_with_text_can_be_continued(
    status, text, alice, conversation
):
    q1, a1 = exchange(alice, conversation, None, "Q", text, status=status)
    for message_id in (a1.pk, q1.pk):
        with pytest.raises(ValidationError):
            services.message_continue(actor=alice, conversation=conversation, message_id=message_id)
    assert fresh(a1).status == status


# --- branch_select -----------------------------------------------------------------------------------


def _two_answers(actor, conversation):
    q1, a1 = exchange(actor, conversation, None, "Q", "Answer one")
    plan = services.message_regenerate(actor=actor, conversation=conversation, message_id=a1.pk)
    a2 = finish(plan, "Answer two")
    return q1, a1, a2


def test_a_writer_switching_branches_persists_the_choice(bob_teammate, team_conversation):
    _q1, a1, _a2 = _two_answers(bob_teammate, team_conversation)
    assert visible_texts(team_conversation) == ["Q", "Answer two"]

    leaf = services.branch_select(
        actor=bob_teammate, conversation=team_conversation, message_id=a1.pk
    )

    assert leaf == a1.pk
    assert visible_texts(team_conversation) == ["Q", "Answer one"]


def test_a_viewer_switching_branches_sees_it_without_changing_it_for_everyone(
    bob_teammate, vera_viewer, team_conversation
):
    _q1, a1, _a2 = _two_answers(bob_teammate, team_conversation)

    leaf = services.branch_select(
        actor=vera_viewer, conversation=team_conversation, message_id=a1.pk
    )

    assert leaf == a1.pk
    assert visible_texts(team_conversation) == ["Q", "Answer two"]


def test_a_writer_switching_deep_inside_a_hidden_branch_persists_the_whole_path(
    alice, conversation
):
    q1, a1 = exchange(alice, conversation, None, "Q", "A1")
    q2, b1 = exchange(alice, conversation, a1.pk, "Q2", "B1")
    b2 = finish(
        services.message_regenerate(actor=alice, conversation=conversation, message_id=b1.pk), "B2"
    )
    a2 = finish(
        services.message_regenerate(actor=alice, conversation=conversation, message_id=a1.pk), "A2"
    )
    assert visible_ids(conversation) == [q1.pk, a2.pk]

    leaf = services.branch_select(actor=alice, conversation=conversation, message_id=b1.pk)

    assert leaf == b1.pk
    assert visible_ids(conversation) == [q1.pk, a1.pk, q2.pk, b1.pk]
    services.branch_select(actor=alice, conversation=conversation, message_id=b2.pk)
    assert visible_ids(conversation) == [q1.pk, a1.pk, q2.pk, b2.pk]


def test_switching_to_a_message_of_another_conversation_is_404(alice, echo, conversation):
    elsewhere = services.conversation_start(actor=alice, credential=echo, model="echo")
    foreign, _ = exchange(alice, elsewhere, None, "private", "reply")
    with pytest.raises(Http404):
        services.branch_select(actor=alice, conversation=conversation, message_id=foreign.pk)


def test_the_visible_path_shows_sibling_positions(alice, conversation):
    q1, a1, a2 = _two_answers(alice, conversation)
    view = selectors.conversation_view(conversation=fresh(conversation))
    assert [e.message.pk for e in view.entries] == [q1.pk, a2.pk]
    assert (view.entries[1].position.index, view.entries[1].position.count) == (2, 2)
    assert view.entries[1].position.previous_id == a1.pk
    through_a1 = selectors.conversation_view(conversation=conversation, leaf_id=a1.pk)
    assert [e.message.pk for e in through_a1.entries] == [q1.pk, a1.pk]


# --- conversation_fork -------------------------------------------------------------------------------


def test_fork_copies_the_path_up_to_a_message_and_not_the_spend(bob_teammate, team_conversation):
    q1, a1 = exchange(
        bob_teammate,
        team_conversation,
        None,
        "Q1",
        "A1",
        cost=Decimal("0.5"),
        cost_source="provider",
    )
    other = services.message_regenerate(
        actor=bob_teammate, conversation=team_conversation, message_id=a1.pk
    )
    finish(other, "OTHER BRANCH", cost=Decimal("0.25"))
    q2, _a2 = exchange(bob_teammate, team_conversation, a1.pk, "Q2", "A2", cost=Decimal("0.125"))

    fork = services.conversation_fork(
        actor=bob_teammate, conversation=team_conversation, message_id=q2.pk
    )

    fork.refresh_from_db()
    assert fork.pk != team_conversation.pk
    assert fork.owner_team_id == team_conversation.owner_team_id and fork.owner_user_id is None
    assert fork.forked_from_id == q2.pk and fork.message_count == 3
    assert fork.model == "echo" and fork.credential_id == team_conversation.credential_id
    assert fork.cost_total == 0
    copies = list(fork.messages.order_by("id"))
    assert [m.content for m in copies] == ["Q1", "A1", "Q2"]
    assert [m.role for m in copies] == ["user", "assistant", "user"]
    assert copies[0].parent_id is None and copies[1].parent_id == copies[0].pk
    assert copies[2].parent_id == copies[1].pk
    assert all(m.cost is None for m in copies)
    assert {m.pk for m in copies}.isdisjoint({q1.pk, a1.pk, q2.pk})
    assert visible_texts(fork) == ["Q1", "A1", "Q2"]
    # The original is untouched.
    assert team_conversation.messages.count() == 5
    assert fresh(team_conversation).cost_total == Decimal("0.875")


def test_a_personal_fork_stays_personal(alice, conversation):
    q1, _ = exchange(alice, conversation, None, "Q", "A")
    fork = services.conversation_fork(actor=alice, conversation=conversation, message_id=q1.pk)
    assert fork.owner_user_id == alice.pk and fork.owner_team_id is None


def test_viewers_cannot_fork(bob_teammate, vera_viewer, team_conversation):
    q1, _ = exchange(bob_teammate, team_conversation, None, "Q", "A")
    with pytest.raises(PermissionDenied):
        services.conversation_fork(
            actor=vera_viewer, conversation=team_conversation, message_id=q1.pk
        )
    assert Conversation.objects.count() == 1


# --- reply_finish / replies_mark_stale ----------------------------------------------------------------


def test_finishing_replies_folds_their_cost_into_the_conversation_total(alice, conversation):
    _, a1 = exchange(alice, conversation, None, "Q", "A", cost=Decimal("0.010000001"))
    exchange(alice, conversation, a1.pk, "Q2", "B", cost=Decimal("0.02"), cost_source="provider")
    exchange(alice, conversation, None, "Q3", "C", cost=None, cost_source="unpriced")
    conversation.refresh_from_db()
    assert conversation.cost_total == Decimal("0.030000001")
    assert conversation.has_unpriced


def test_finish_renders_and_records_the_usage(alice, conversation):
    plan = services.message_send(
        actor=alice, conversation=conversation, parent_id=None, content="Q"
    )
    message = finish(
        plan,
        "Some **bold** text",
        input_tokens=5,
        output_tokens=7,
        cost=Decimal("0.002"),
        cost_source="provider",
        ttft_ms=12.5,
        tokens_per_second=40.0,
    )
    message.refresh_from_db()
    assert message.status == MessageStatus.COMPLETE and message.heartbeat_at is None
    assert "<strong>bold</strong>" in message.content_html
    assert (message.input_tokens, message.output_tokens, message.cost) == (5, 7, Decimal("0.002"))
    assert message.ttft_ms == 12.5 and message.tokens_per_second == 40.0


def test_the_first_question_becomes_the_title_without_markdown(alice, conversation):
    _q1, a1 = exchange(
        alice, conversation, None, "## How do I *parse* `JSON` in __Python__?\nMore", "A"
    )
    assert fresh(conversation).title == "How do I parse JSON in Python?"
    exchange(alice, conversation, a1.pk, "A later question", "B")
    assert fresh(conversation).title == "How do I parse JSON in Python?"


def test_a_long_first_question_is_cut_at_a_word(alice, conversation):
    words = "word " * 30
    exchange(alice, conversation, None, words, "A")
    title = fresh(conversation).title
    assert title.endswith("…") and len(title) <= 61
    assert title[:-1].split() == ["word"] * len(title[:-1].split())


def test_a_title_the_user_chose_is_kept(alice, echo):
    conversation = services.conversation_start(
        actor=alice, credential=echo, model="echo", title="My title"
    )
    exchange(alice, conversation, None, "A question", "A")
    assert fresh(conversation).title == "My title"


def test_clearing_the_title_brings_back_the_automatic_one(alice, conversation):
    exchange(alice, conversation, None, "*Why* is the sky blue?", "Rayleigh")
    services.conversation_update(actor=alice, conversation=conversation, title="Sky")
    assert (fresh(conversation).title, conversation.title_source) == ("Sky", "user")
    services.conversation_update(actor=alice, conversation=conversation, title="  ")
    conversation.refresh_from_db()
    assert (conversation.title, conversation.title_source) == ("Why is the sky blue?", "auto")


def _streaming(conversation, *, age: timedelta, content="partial") -> Message:
    question = Message.objects.create(conversation=conversation, role="user", content="Q")
    return Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        content=content,
        status=MessageStatus.STREAMING,
        heartbeat_at=timezone.now() - age,
    )


def test_only_stale_streaming_replies_not_running_here_are_marked_interrupted(
    alice, echo, conversation
):
    old = _streaming(conversation, age=timedelta(seconds=60), content="kept text")
    fresh_reply = _streaming(conversation, age=timedelta(seconds=1))
    running_here = _streaming(conversation, age=timedelta(seconds=60))
    elsewhere = services.conversation_start(actor=alice, credential=echo, model="echo")
    other_conversation = _streaming(elsewhere, age=timedelta(seconds=60))
    done = Message.objects.create(conversation=conversation, role="assistant", content="x")
    Message.objects.filter(pk=done.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=60))

    marked = replies.replies_mark_stale(conversation_id=conversation.pk, running={running_here.pk})

    assert marked == 1
    old.refresh_from_db()
    assert old.status == MessageStatus.INTERRUPTED and old.content == "kept text"
    assert old.error_code == "interrupted" and old.heartbeat_at is None
    assert fresh(fresh_reply).status == MessageStatus.STREAMING
    assert fresh(running_here).status == MessageStatus.STREAMING
    assert fresh(other_conversation).status == MessageStatus.STREAMING
    assert fresh(done).status == MessageStatus.COMPLETE
    # Without a conversation: every stale one (at start-up).
    assert replies.replies_mark_stale(running=frozenset({running_here.pk})) == 1
    assert fresh(other_conversation).status == MessageStatus.INTERRUPTED


# --- The list and search ------------------------------------------------------------------------------


def test_search_finds_titles_and_message_text_case_insensitively(alice, echo):
    by_title = services.conversation_start(
        actor=alice, credential=echo, model="echo", title="Rust lifetimes"
    )
    by_text = services.conversation_start(actor=alice, credential=echo, model="echo", title="Misc")
    exchange(alice, by_text, None, "What does the QUICK brown fox do?", "It jumps.")
    services.conversation_start(actor=alice, credential=echo, model="echo", title="Other")

    def found(q):
        return {c.pk for c in selectors.conversations_for_user(user=alice, q=q)}

    assert found("rust") == {by_title.pk}
    assert found("LIFETIMES") == {by_title.pk}
    assert found("quick Brown") == {by_text.pk}
    assert found("JUMPS") == {by_text.pk}  # a reply's text too
    assert found("no such thing") == set()
    assert found("%") == set()  # no wildcard
    assert len(found("")) == 3


def test_search_never_finds_other_peoples_conversations(alice, charlie_outsider, echo):
    charlie_echo = provider_services.credential_create(
        actor=charlie_outsider, preset="echo", name="c"
    )
    theirs = services.conversation_start(
        actor=charlie_outsider, credential=charlie_echo, model="echo", title="secret plans"
    )
    exchange(charlie_outsider, theirs, None, "secret question", "secret answer")
    assert not selectors.conversations_for_user(user=alice, q="secret").exists()


def test_the_list_shows_own_and_the_current_teams_conversations(
    alice, team, bob_teammate, vera_viewer, charlie_outsider, echo, team_echo
):
    personal = services.conversation_start(actor=alice, credential=echo, model="echo")
    team_one = services.conversation_start(actor=alice, owner_team=team)
    bobs = services.conversation_start(actor=bob_teammate)
    charlies = services.conversation_start(actor=charlie_outsider)
    charlie_team = charlie_outsider.memberships.get().team

    def listed(user, current=None):
        return {c.pk for c in selectors.conversations_for_user(user=user, team=current)}

    assert listed(alice) == {personal.pk}
    assert listed(alice, team) == {personal.pk, team_one.pk}
    assert listed(bob_teammate, team) == {bobs.pk, team_one.pk}
    assert listed(vera_viewer, team) == {team_one.pk}
    assert listed(charlie_outsider) == {charlies.pk}
    # A team he isn't in, passed as "current", shows him nothing of it.
    assert listed(charlie_outsider, team) == {charlies.pk}
    assert listed(alice, charlie_team) == {personal.pk}


def test_the_list_is_newest_activity_first(alice, echo):
    first = services.conversation_start(actor=alice, credential=echo, model="echo")
    second = services.conversation_start(actor=alice, credential=echo, model="echo")
    exchange(alice, first, None, "new activity", "A")
    assert [c.pk for c in selectors.conversations_for_user(user=alice)] == [first.pk, second.pk]


# --- Exports ------------------------------------------------------------------------------------------


@pytest.fixture
def keyed(alice):
    return provider_services.credential_create(
        actor=alice, preset="openai", name="alice openai", api_key="sk-live-SECRET-0123456789abcdef"
    )


def _branched(alice, credential):
    conversation = services.conversation_start(
        actor=alice, credential=credential, model="gpt-4o-mini", system_prompt="Be nice."
    )
    q1, a1 = exchange(
        alice, conversation, None, "Question one", "Visible answer", cost=Decimal("0.01")
    )
    hidden = services.message_regenerate(actor=alice, conversation=conversation, message_id=a1.pk)
    finish(hidden, "Hidden answer")
    services.branch_select(actor=alice, conversation=conversation, message_id=a1.pk)
    return fresh(conversation), q1, a1, Message.objects.get(pk=hidden.message_id)


def test_the_json_export_has_every_branch_with_parents_and_no_secrets(alice, keyed):
    conversation, q1, a1, hidden = _branched(alice, keyed)

    data = exports.as_json(conversation)

    assert data["format"] == "workbench.conversation" and data["version"] == 1
    assert data["system_prompt"] == "Be nice."
    by_id = {m["id"]: m for m in data["messages"]}
    assert set(by_id) == {q1.pk, a1.pk, hidden.pk}
    assert by_id[q1.pk]["parent"] is None
    assert by_id[a1.pk]["parent"] == q1.pk and by_id[hidden.pk]["parent"] == q1.pk
    assert by_id[hidden.pk]["content"] == "Hidden answer"
    assert by_id[a1.pk]["usage"]["cost_usd"] == "0.01"
    assert by_id[q1.pk]["usage"] is None
    assert data["visible_path"] == [q1.pk, a1.pk]
    text = json.dumps(data)
    assert "SECRET" not in text and "sk-live" not in text
    assert "api_key" not in text and "9abcdef" not in text


def test_the_markdown_export_has_the_visible_path(alice, keyed):
    conversation, *_ = _branched(alice, keyed)

    text = exports.as_markdown(conversation)

    assert text.startswith("# Question one\n")
    assert "Be nice." in text
    assert "Question one" in text and "Visible answer" in text
    assert "Hidden answer" not in text
    assert "## You" in text and "## gpt-4o-mini" in text
    assert "SECRET" not in text
