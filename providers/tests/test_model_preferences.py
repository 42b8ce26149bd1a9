"""What the model pickers offer (issue 9, bug 16 and the picker): the owner's models with their
credential, context window and price; favourites, last used, and a default per user and per team
— each with the team/credential rules a conversation follows (a chat runs on its owner's keys).
Statuses per persona for the two routes are in tests/test_access_matrix.py."""

from __future__ import annotations

import json
import re

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from chats import services as chat_services
from chats.models import Conversation
from chats.templatetags.chat import model_detail, tokens_short
from providers import selectors, services
from providers.models import DefaultModel, ModelPreference, ProviderModel


@pytest.fixture
def two_keys(alice, make_credential):
    """Two personal OpenAI keys of alice's that both list gpt-4o (bug 16: indistinguishable)."""
    work = make_credential(alice, "openai", name="Work")
    home = make_credential(alice, "openai", name="Home")
    for credential in (work, home):
        ProviderModel.objects.create(credential=credential, model_id="gpt-4o", kind="chat")
        ProviderModel.objects.create(
            credential=credential, model_id="text-embedding-3-small", kind="embedding"
        )
    return work, home


@pytest.fixture
def acme_key(team, make_credential):
    acme = make_credential(team, "openai", name="Acme OpenAI")
    ProviderModel.objects.create(credential=acme, model_id="gpt-4o-mini", kind="chat")
    return acme


def test_the_same_model_on_two_keys_is_told_apart_by_credential_with_context_and_price(
    alice,
    two_keys,  # both list gpt-4o
):
    choices = selectors.model_choices_for(user=alice).choices
    details = {c.credential.name: model_detail(c) for c in choices if c.model == "gpt-4o"}
    assert details["Work"].startswith("Work · OpenAI · 128k context · $")
    assert details["Home"].startswith("Home · OpenAI · ")
    assert re.search(r"\$\d+\.\d\d in / \$\d+\.\d\d out per 1M tokens$", details["Work"])
    assert "E+" not in details["Work"]
    # Chat models only: an embedding model can't run a conversation.
    assert {c.model for c in choices} == {"gpt-4o"}


def test_a_local_credential_is_named_once_and_free(alice):
    services.credentials_ensure_echo(user=alice)
    echo = ProviderModel.objects.get(model_id="echo")
    assert echo.credential.display_label == "Echo (local)"  # not "Echo (local) (local)"
    (choice,) = selectors.model_choices_for(user=alice).choices
    assert model_detail(choice) == "Echo (local) · local, free"


def test_token_counts_are_short(db):
    assert [tokens_short(n) for n in (512, 8192, 128000, 131072, 200000, 1048576, 2000000)] == [
        "512",
        "8k",
        "128k",
        "128k",
        "200k",
        "1M",
        "2M",
    ]


def test_a_team_chat_is_offered_the_teams_models_and_a_personal_one_alices_own(
    alice, team, two_keys, acme_key
):
    personal = selectors.model_choices_for(user=alice)
    teamwide = selectors.model_choices_for(user=alice, team=team)
    assert {c.credential.name for c in personal.choices} == {"Work", "Home"}
    assert {c.credential.name for c in teamwide.choices} == {"Acme OpenAI"}


def test_new_chats_start_on_the_default_else_the_model_last_used_else_the_first(alice, two_keys):
    work, home = two_keys
    first = selectors.model_choices_for(user=alice)
    assert first.start == first.choices[0]
    assert [c.credential.name for c in first.choices] == ["Home", "Work"]  # by name

    chat_services.conversation_start(actor=alice, credential=home, model="gpt-4o")
    start = selectors.model_choices_for(user=alice).start
    assert (start.credential, start.model) == (home, "gpt-4o")

    services.model_default_set(user=alice, credential=work, model="gpt-4o")
    choices = selectors.model_choices_for(user=alice)
    assert choices.start.credential == work
    assert choices.last_used.credential == home  # still remembered, below the default

    services.model_default_clear(user=alice)
    assert selectors.model_choices_for(user=alice).start.credential == home


def test_changing_a_conversations_model_is_remembered_as_last_used(alice, two_keys):
    work, home = two_keys
    conversation = chat_services.conversation_start(actor=alice, credential=work, model="gpt-4o")
    chat_services.conversation_update(
        actor=alice, conversation=conversation, credential=home, model="gpt-4o"
    )
    assert selectors.model_choices_for(user=alice).last_used.credential == home
    # Per user: bob's pickers know nothing of alice's habits.
    assert ModelPreference.objects.filter(user=alice).count() == 2


def test_favourites_are_per_user_and_only_for_listed_chat_models(
    alice, team, bob_teammate, two_keys, acme_key
):
    work, _ = two_keys
    services.model_favourite_set(user=alice, credential=work, model="gpt-4o", favourite=True)
    services.model_favourite_set(
        user=bob_teammate, credential=acme_key, model="gpt-4o-mini", favourite=True
    )
    starred = {
        c.credential.name: c.favourite for c in selectors.model_choices_for(user=alice).choices
    }
    assert starred == {"Work": True, "Home": False}
    assert not any(c.favourite for c in selectors.model_choices_for(user=alice, team=team).choices)
    services.model_favourite_set(user=alice, credential=work, model="gpt-4o", favourite=False)
    assert not any(c.favourite for c in selectors.model_choices_for(user=alice).choices)

    with pytest.raises(ValidationError, match="isn't one of “Work”'s chat models"):
        services.model_favourite_set(
            user=alice, credential=work, model="text-embedding-3-small", favourite=True
        )


def test_a_viewer_cannot_star_a_team_model(team, vera_viewer, acme_key):
    with pytest.raises(PermissionDenied):
        services.model_favourite_set(
            user=vera_viewer, credential=acme_key, model="gpt-4o-mini", favourite=True
        )


def test_a_teams_default_is_set_by_its_admins_on_the_teams_own_keys(
    alice, team, bob_teammate, two_keys, acme_key
):
    work, _ = two_keys
    with pytest.raises(PermissionDenied):
        services.model_default_set(
            user=bob_teammate, credential=acme_key, model="gpt-4o-mini", team=team
        )
    with pytest.raises(ValidationError, match="must be one of the team's credentials"):
        services.model_default_set(user=alice, credential=work, model="gpt-4o", team=team)
    with pytest.raises(ValidationError, match="must be one of your own credentials"):
        services.model_default_set(user=alice, credential=acme_key, model="gpt-4o-mini")

    services.model_default_set(user=alice, credential=acme_key, model="gpt-4o-mini", team=team)
    # Every member's new team chats start on it.
    start = selectors.model_choices_for(user=bob_teammate, team=team).start
    assert (start.credential, start.model) == (acme_key, "gpt-4o-mini")
    assert DefaultModel.objects.get().set_by == alice


def test_the_preference_routes_answer_json_with_a_reason(alice, client_for, two_keys):
    work, _ = two_keys
    client = client_for(alice)
    response = client.post(
        reverse("providers:model_favourite"),
        {"credential": work.pk, "model": "gpt-4o", "favourite": "on"},
    )
    assert response.status_code == 200
    assert response.json() == {"credential": work.pk, "model": "gpt-4o", "favourite": True}

    response = client.post(
        reverse("providers:model_favourite"), {"credential": work.pk, "model": "x" * 201}
    )
    assert response.status_code == 400
    assert "at most 200 characters" in response.json()["error"]["message"]

    response = client.post(
        reverse("providers:model_default"), {"credential": work.pk, "model": "nope"}
    )
    assert response.status_code == 400
    assert "isn't one of “Work”'s chat models" in json.loads(response.content)["error"]["message"]

    response = client.post(reverse("providers:model_default"), {})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Pick a model, or clear the default."

    response = client.post(
        reverse("providers:model_default"), {"credential": work.pk, "model": "gpt-4o"}
    )
    assert response.json() == {"team": None, "default": {"credential": work.pk, "model": "gpt-4o"}}
    response = client.post(reverse("providers:model_default"), {"clear": "on"})
    assert response.json() == {"team": None, "default": None}
    assert not DefaultModel.objects.exists()


def test_the_new_chat_page_preselects_the_owners_start(alice, client_for, two_keys):
    _, home = two_keys
    services.model_default_set(user=alice, credential=home, model="gpt-4o")
    html = client_for(alice).get("/chat/").content.decode()
    selected = re.findall(r'<option value="([^"]+)"[^>]* selected>', html)
    assert selected == [f"{home.pk}|gpt-4o"]
    assert "data-default" in re.search(rf'<option value="{home.pk}\|gpt-4o"[^>]*>', html).group(0)
    # The conversation the form makes runs on it.
    client_for(alice).post("/chat/new/", {"owner_team": "", "content": "Hi"})
    assert Conversation.objects.get().credential == home
