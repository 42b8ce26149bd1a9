"""Ratings of replies (issue 9, message actions): thumbs up/down with an optional note, per user,
kept in the general table the playground and evaluations reuse (`providers.ratings`)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404
from django.urls import reverse

from chats import services
from chats.models import Message
from providers import ratings
from providers.models import Rating, RatingScale


@pytest.fixture
def chat(alice, team):
    from providers import services as provider_services

    echo = provider_services.credentials_ensure_echo(user=alice, team=team)
    conversation = services.conversation_start(
        actor=alice, owner_team=team, credential=echo, model="echo"
    )
    question = Message.objects.create(
        conversation=conversation, role="user", content="Hi", author=alice
    )
    reply = Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        content="Hello",
        model="echo",
        preset="echo",
        credential=echo,
        status="complete",
    )
    return conversation, question, reply


def rate(actor, conversation, message, value, note=None):
    return services.message_rate(
        actor=actor, conversation=conversation, message_id=message.pk, value=value, note=note
    )


def test_each_member_rates_a_reply_for_themselves_and_a_viewer_too(
    alice, bob_teammate, vera_viewer, chat
):
    conversation, _, reply = chat
    rate(alice, conversation, reply, "up", "Spot on")
    rate(bob_teammate, conversation, reply, "down")
    rate(vera_viewer, conversation, reply, "up")
    mine = Rating.objects.get(user=alice)
    assert (mine.value, mine.note, mine.scale, mine.model, mine.preset) == (
        1,
        "Spot on",
        "thumbs",
        "echo",
        "echo",
    )
    assert mine.credential == reply.credential
    assert Rating.objects.get(user=bob_teammate).value == -1

    # A new thumb keeps the note; taking the rating back removes it.
    rate(alice, conversation, reply, "down")
    assert Rating.objects.get(user=alice).note == "Spot on"
    rate(alice, conversation, reply, "")
    assert not Rating.objects.filter(user=alice).exists()
    assert Rating.objects.count() == 2


def test_only_finished_replies_of_that_conversation_are_rated_and_outsiders_get_404(
    alice, charlie_outsider, chat
):
    conversation, question, reply = chat
    with pytest.raises(Http404):
        rate(charlie_outsider, conversation, reply, "up")
    with pytest.raises(Http404):
        rate(alice, conversation, question, "up")  # a question isn't a model output
    other = services.conversation_start(actor=alice, credential=None, model="")
    with pytest.raises(Http404):
        rate(alice, other, reply, "up")
    Message.objects.filter(pk=reply.pk).update(status="streaming")
    with pytest.raises(ValidationError, match="once it is finished"):
        rate(alice, conversation, reply, "up")
    with pytest.raises(ValidationError, match="at most 1000"):
        Message.objects.filter(pk=reply.pk).update(status="complete")
        rate(alice, conversation, reply, "up", "x" * 1001)
    assert not Rating.objects.exists()


def test_ratings_add_up_per_model_across_thumbs_and_stars(alice, bob_teammate, chat):
    """The playground's 1–5 answers and the chat's thumbs count in one summary."""
    conversation, question, reply = chat
    rate(alice, conversation, reply, "up")
    rate(bob_teammate, conversation, reply, "down")
    second = Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        content="Hey",
        model="echo",
        preset="echo",
        status="complete",
    )
    ratings.rating_set(user=alice, output=second, value=5, scale=RatingScale.STARS)
    (summary,) = ratings.ratings_by_model(Rating.objects.all())
    assert (summary.preset, summary.model, summary.count, summary.up, summary.down) == (
        "echo",
        "echo",
        3,
        2,
        1,
    )
    assert summary.score == pytest.approx(2 / 3)
    with pytest.raises(ValidationError):
        ratings.rating_set(user=alice, output=second, value=0)
    with pytest.raises(ValidationError):
        ratings.rating_set(user=alice, output=second, value=6, scale=RatingScale.STARS)


def test_the_page_shows_my_rating_and_not_my_teammates(alice, bob_teammate, chat, client_for):
    conversation, _, reply = chat
    rate(bob_teammate, conversation, reply, "down", "Too short")
    client = client_for(alice)
    url = reverse("chats:rate", args=[conversation.pk, reply.pk])
    response = client.post(url, {"value": "up"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'aria-pressed="true" title="You rated this reply good' in html
    assert "Add a note" in html and " open>" in html  # the note is offered at once
    page = client.get(reverse("chats:detail", args=[conversation.pk])).content.decode()
    assert 'aria-pressed="true" title="You rated this reply good' in page
    assert "Too short" not in page
    response = client.post(url, {"value": "sideways"}, headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    # Without htmx: back to the reply.
    response = client.post(url, {"value": "up", "note": "Great"})
    assert response.status_code == 302
    assert response.url.endswith(f"#message-{reply.pk}")
    assert Rating.objects.get(user=alice).note == "Great"
