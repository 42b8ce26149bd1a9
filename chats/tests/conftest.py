"""Conversations the chat tests share: alice's personal one and the Acme team's, on Echo."""

import pytest

from chats import services
from providers import services as provider_services
from rag.tests.conftest import embedder, ingest  # noqa: F401 - files attached in chat are read


@pytest.fixture
def echo(alice):
    return provider_services.credential_create(actor=alice, preset="echo", name="alice echo")


@pytest.fixture
def team_echo(alice, team):
    return provider_services.credential_create(
        actor=alice, preset="echo", name="Acme echo", owner_team=team
    )


@pytest.fixture
def conversation(alice, echo):
    return services.conversation_start(actor=alice, credential=echo, model="echo")


@pytest.fixture
def team_conversation(alice, team, team_echo, bob_teammate, vera_viewer):
    return services.conversation_start(
        actor=alice, owner_team=team, credential=team_echo, model="echo"
    )
