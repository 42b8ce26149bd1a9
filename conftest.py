"""Personas shared by every test (DESIGN §4).

- alice: owns the team "Acme"
- bob_teammate: member of Acme
- vera_viewer: viewer in Acme
- charlie_outsider: in no team of alice's (he owns his own team "Outside")
"""

from __future__ import annotations

import pytest
from django.test import Client

from accounts import services
from accounts.models import Role, User

PASSWORD = "correct horse battery staple"
PERSONAS = ("alice", "bob_teammate", "vera_viewer", "charlie_outsider")


def make_user(username: str) -> User:
    return User.objects.create_user(
        username=username, email=f"{username}@example.com", password=PASSWORD
    )


@pytest.fixture
def alice(db) -> User:
    return make_user("alice")


@pytest.fixture
def team(alice):
    """Acme, owned by alice."""
    return services.team_create(user=alice, name="Acme")


@pytest.fixture
def bob_teammate(team) -> User:
    user = make_user("bob_teammate")
    team.memberships.create(user=user, role=Role.MEMBER)
    return user


@pytest.fixture
def vera_viewer(team) -> User:
    user = make_user("vera_viewer")
    team.memberships.create(user=user, role=Role.VIEWER)
    return user


@pytest.fixture
def charlie_outsider(db) -> User:
    user = make_user("charlie_outsider")
    services.team_create(user=user, name="Outside")
    return user


@pytest.fixture
def everyone(alice, team, bob_teammate, vera_viewer, charlie_outsider) -> dict[str, User]:
    return {
        "alice": alice,
        "bob_teammate": bob_teammate,
        "vera_viewer": vera_viewer,
        "charlie_outsider": charlie_outsider,
    }


@pytest.fixture
def client_for():
    """`client_for(user)` → a test client logged in as that user (None: anonymous)."""

    def make(user: User | None) -> Client:
        client = Client()
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def token_for(db):
    """`token_for(user, scope="read")` → the plaintext of a fresh API token."""

    def make(user: User, scope: str = "read", **kwargs) -> str:
        return services.token_create(user=user, name=f"{scope} token", scope=scope, **kwargs)[1]

    return make
