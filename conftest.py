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
def api_for(token_for):
    """`api_for(user, scope="write")` → a JSON API client with a fresh token of that user."""
    from tests.api_client import Api

    return lambda user, scope="write": Api(token_for(user, scope))


@pytest.fixture
def token_for(db):
    """`token_for(user, scope="read")` → the plaintext of a fresh API token."""

    def make(user: User, scope: str = "read", **kwargs) -> str:
        return services.token_create(user=user, name=f"{scope} token", scope=scope, **kwargs)[1]

    return make


# --- Providers --------------------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _token_encoder():
    """Load the tokenizer once, up front: a count racing its first (second-long) load would
    fall back to an estimate and make token assertions depend on timing."""
    from providers import tokens

    assert tokens.encoding() is not None


@pytest.fixture(scope="session")
def fake_provider_server():
    """One fake provider server (real HTTP on loopback) for the whole session."""
    from providers.fakeserver import FakeProvider

    server = FakeProvider().start()
    yield server
    server.stop()


@pytest.fixture
def fake_provider(fake_provider_server, settings):
    """The fake server, reset, and let through the egress guard (it lives on loopback)."""
    fake_provider_server.reset()
    settings.WORKBENCH_EGRESS_ALLOW = [
        *settings.WORKBENCH_EGRESS_ALLOW,
        f"127.0.0.1:{fake_provider_server.port}",
    ]
    settings.WORKBENCH_PROVIDER_TIMEOUTS = {"connect": 2.0, "read": 2.0, "total": 20.0}
    yield fake_provider_server
    fake_provider_server.reset()


# Where each preset's SDK expects the server (base URL as a user would type it, on the fake).
FAKE_BASE_PATHS = {
    "openai": "/v1",
    "anthropic": "",
    "groq": "",
    "gemini": "/v1beta/openai/",
    "cohere": "/compatibility/v1",
    "mistral": "/v1",
    "together": "/v1",
    "perplexity": "",
    "deepseek": "/v1",
    "openrouter": "/api/v1",
    "openai_compatible": "/v1",
    "ollama": "",
}


@pytest.fixture
def make_credential(fake_provider):
    """`make_credential(owner, preset="openai", **fields)` → a credential pointing at the fake."""
    from providers.models import ProviderCredential

    def make(owner, preset: str = "openai", **fields) -> ProviderCredential:
        from accounts.models import Team
        from providers import presets

        fields.setdefault("is_local", presets.get(preset).local)
        credential = ProviderCredential(
            name=fields.pop("name", f"{preset} test"),
            preset=preset,
            api_key=fields.pop("api_key", "sk-test-key-0123456789"),
            base_url=fields.pop(
                "base_url", f"{fake_provider.url}{FAKE_BASE_PATHS.get(preset, '')}"
            ),
            **fields,
        )
        credential.set_owner(owner)
        if isinstance(owner, Team):
            credential.created_by = owner.memberships.first().user
        credential.save()
        return credential

    return make


@pytest.fixture(autouse=True)
def _close_async_connections(request):
    """Async tests touch the database from asgiref's sync thread; close that thread's connection
    afterwards so the test database can be flushed and dropped."""
    yield
    marker = request.node.get_closest_marker("django_db")
    if (marker and marker.kwargs.get("transaction")) or "transactional_db" in request.fixturenames:
        from asgiref.sync import SyncToAsync
        from django.db import connections

        # The thread asgiref runs thread-sensitive sync code in when no outer async_to_sync
        # exists — where an async test's ORM calls ran.
        SyncToAsync.single_thread_executor.submit(connections.close_all).result()


@pytest.fixture(autouse=True)
def _fresh_token_checks():
    """Token checks are cached per process for a few seconds; each test starts without."""
    services.tokens_forget()
    yield
    services.tokens_forget()


@pytest.fixture(autouse=True)
def _fresh_price_overrides():
    """Price overrides are cached per process; a rolled-back test must not leave one behind."""
    from billing.pricing import overrides_changed

    overrides_changed()
    yield
    overrides_changed()


@pytest.fixture(autouse=True)
def _fresh_egress_allowlist():
    """The app's egress allowlist is cached per process for a few seconds; a rolled-back test
    must not leave an entry behind."""
    from providers.egress_allow import _forget

    _forget()
    yield
    _forget()


@pytest.fixture
def fresh_cache(db):
    """The failed-token throttle counts in the (database) cache; start from zero."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def one_attempt(settings):
    """The first provider error, not the gate's retries (their backoff only costs time)."""
    settings.WORKBENCH_PROVIDER_MAX_ATTEMPTS = 1
