"""Read-only share links (issue 9): the token is the only key, outsiders read the visible path,
revoking works at once, costs and credential names stay hidden unless the owner opts in."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client

from chats import services, sharing
from chats.models import Message, ShareLink
from providers import services as provider_services


@pytest.fixture
def conversation(alice):
    echo = provider_services.credentials_ensure_echo(user=alice)
    conversation = services.conversation_start(
        actor=alice, credential=echo, model="echo", title="Trip to Kyoto"
    )
    question = Message.objects.create(
        conversation=conversation, role="user", content="What to **pack**?", author=alice
    )
    Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        content="An umbrella.",
        model="gpt-4o-mini",
        credential_name="Work OpenAI key",
        cost=Decimal("0.0042"),
        cost_source="provider",
    )
    return conversation


def shared_page(token: str, client=None):
    return (client or Client()).get(f"/chat/shared/{token}/")


def test_an_outsider_reads_the_visible_path_without_costs_or_key_names(alice, conversation):
    link = sharing.share_link_create(actor=alice, conversation=conversation)

    response = shared_page(link.token)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Trip to Kyoto" in html
    assert "<strong>pack</strong>" in html  # rendered Markdown, sanitized
    assert "An umbrella." in html and "gpt-4o-mini" in html
    assert "Work OpenAI key" not in html
    assert "$0.0042" not in html and "cost" not in html.lower().replace("costs", "")
    assert f"/chat/{conversation.pk}/" not in html  # no ids, no way into the app
    assert 'name="robots" content="noindex' in html
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_costs_and_key_names_show_when_the_owner_opts_in(alice, conversation):
    link = sharing.share_link_create(
        actor=alice, conversation=conversation, show_costs=True, show_key_names=True
    )

    html = shared_page(link.token).content.decode()

    assert "Work OpenAI key" in html
    assert "$0.0042" in html


def test_revoking_ends_the_link_and_a_new_link_replaces_the_old(alice, conversation, client_for):
    client = client_for(alice)
    client.post(f"/chat/{conversation.pk}/share/")
    first = ShareLink.objects.get()
    client.post(f"/chat/{conversation.pk}/share/", {"show_costs": "on"})
    second = ShareLink.objects.filter(revoked_at__isnull=True).get()

    assert second.token != first.token and second.show_costs
    assert shared_page(first.token).status_code == 404
    assert shared_page(second.token).status_code == 200

    page = client.get(f"/chat/{conversation.pk}/share/").content.decode()
    assert f"/chat/shared/{second.token}/" in page
    client.post(f"/chat/{conversation.pk}/share/revoke/")
    assert shared_page(second.token).status_code == 404
    assert shared_page(second.token, client).status_code == 404  # for its creator too
    assert 'data-testid="no-link"' in client.get(f"/chat/{conversation.pk}/share/").content.decode()


@pytest.mark.parametrize("token", ["x", "a" * 65, "not-a-real-token-but-long-enough", "../../etc"])
def test_unknown_or_malformed_tokens_are_not_found(token, db):
    assert Client().get(f"/chat/shared/{token}/").status_code == 404


def test_tokens_are_long_random_and_unique(alice, conversation):
    tokens = {
        sharing.share_link_create(actor=alice, conversation=conversation).token for _ in range(5)
    }
    assert len(tokens) == 5
    assert all(len(t) >= 32 and re.fullmatch(r"[A-Za-z0-9_-]+", t) for t in tokens)


def test_only_the_owner_or_a_team_admin_may_share(alice, team, bob_teammate, vera_viewer):
    team_chat = services.conversation_start(actor=bob_teammate, owner_team=team, title="Team")
    for person in (bob_teammate, vera_viewer):
        with pytest.raises(PermissionDenied):
            sharing.share_link_create(actor=person, conversation=team_chat)
    link = sharing.share_link_create(actor=alice, conversation=team_chat)  # alice owns the team
    assert link.is_active
    with pytest.raises(PermissionDenied):
        sharing.share_link_revoke(actor=bob_teammate, conversation=team_chat)


def test_the_shared_page_follows_the_visible_path_as_it_is_now(alice, conversation):
    link = sharing.share_link_create(actor=alice, conversation=conversation)
    last = conversation.messages.get(role="assistant")
    Message.objects.create(
        conversation=conversation, parent=last, role="user", content="And shoes?", author=alice
    )

    assert "And shoes?" in shared_page(link.token).content.decode()
