"""Totals outside the Usage dashboard say what they leave out (issue 10, cost honesty): a
conversation's cost, its visible path, the chat list, a shared path — "$0.50 + 2 unpriced
calls", never a silent sum."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from chats import frames, services, sharing
from chats.models import Conversation, Message
from providers import services as provider_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def priced_and_unpriced(alice):
    """alice's conversation: a priced reply ($0.50) and, on the visible path, an unpriced one,
    plus an unpriced reply on another branch."""
    echo = provider_services.credentials_ensure_echo(user=alice)
    conversation = services.conversation_start(
        actor=alice, credential=echo, model="echo", title="Mixed prices"
    )

    def reply(parent, text, cost, source):
        return Message.objects.create(
            conversation=conversation,
            parent=parent,
            role="assistant",
            content=text,
            model="some-model",
            cost=cost,
            cost_source=source,
        )

    q1 = Message.objects.create(conversation=conversation, role="user", content="Q1", author=alice)
    a1 = reply(q1, "priced", Decimal("0.5"), "provider")
    q2 = Message.objects.create(
        conversation=conversation, parent=a1, role="user", content="Q2", author=alice
    )
    reply(q2, "other branch", None, "unpriced")
    a2 = reply(q2, "unpriced", None, "unpriced")
    Message.objects.filter(pk=q1.pk).update(active_child=a1)
    Message.objects.filter(pk=a1.pk).update(active_child=q2)
    Message.objects.filter(pk=q2.pk).update(active_child=a2)
    Conversation.objects.filter(pk=conversation.pk).update(
        active_root=q1, cost_total=Decimal("0.5"), has_unpriced=True, message_count=5
    )
    conversation.refresh_from_db()
    return conversation


def test_the_conversation_header_counts_the_unpriced_replies_beside_each_total(
    alice, client_for, priced_and_unpriced
):
    html = client_for(alice).get(f"/chat/{priced_and_unpriced.pk}/").content.decode()

    assert "This conversation cost <strong" in html
    assert "$0.50 + 2 unpriced calls</strong>" in html  # every branch
    assert 'data-testid="path-cost">$0.50 + 1 unpriced call</strong>' in html  # the path
    assert 'data-cost-source="unpriced"' in html  # what the page's script counts


def test_the_total_sent_after_a_reply_counts_the_unpriced_replies_too(priced_and_unpriced):
    reply = priced_and_unpriced.messages.filter(role="assistant").last()
    cost_html = frames.final_fields(reply.pk)["conversation"]["cost_html"]
    assert "$0.50 + 2 unpriced calls" in cost_html


def test_a_conversation_without_unpriced_replies_shows_its_plain_total(alice, client_for):
    echo = provider_services.credentials_ensure_echo(user=alice)
    conversation = services.conversation_start(actor=alice, credential=echo, model="echo")
    Conversation.objects.filter(pk=conversation.pk).update(cost_total=Decimal("0.25"))
    html = client_for(alice).get(f"/chat/{conversation.pk}/").content.decode()
    assert "$0.25</strong>" in html and "unpriced" not in html.split("chat-cost")[1][:400]


def test_the_chat_list_marks_a_conversation_whose_total_leaves_calls_out(
    alice, client_for, priced_and_unpriced
):
    html = client_for(alice).get("/chat/").content.decode()
    item = html.split(f'id="conversation-{priced_and_unpriced.pk}"')[1][:600]
    assert "$0.50" in item and "+ unpriced" in item


def test_a_shared_path_with_costs_counts_its_unpriced_replies(alice, priced_and_unpriced):
    link = sharing.share_link_create(actor=alice, conversation=priced_and_unpriced, show_costs=True)
    html = Client().get(f"/chat/shared/{link.token}/").content.decode()
    assert "This path cost $0.50 + 1 unpriced call." in html


def test_vera_viewer_sees_the_same_honest_total_on_a_team_conversation(
    alice, team, vera_viewer, client_for, priced_and_unpriced
):
    Conversation.objects.filter(pk=priced_and_unpriced.pk).update(owner_user=None, owner_team=team)
    html = client_for(vera_viewer).get(f"/chat/{priced_and_unpriced.pk}/").content.decode()
    assert "$0.50 + 2 unpriced calls" in html
