"""Behaviour of the provider services: credentials (create, update, delete, the personal Echo),
the model catalogue (listing per wire format, prices) and connection tests — against the real
fake provider server over HTTP."""

from __future__ import annotations

import asyncio
import socket
from contextlib import aclosing
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import Http404

from billing.models import CallStatus, PriceOverride, UsageRecord
from billing.services import usage_record
from providers import selectors, services
from providers.adapters.base import CompletionRequest, Finished, Message, TextDelta
from providers.models import ProviderCredential, ProviderModel

KEY = "sk-test-key-0123456789"


def entries_by_id(user, credential) -> dict:
    return {
        entry.model.model_id: entry
        for entry in selectors.catalogue_for(user=user, credential=credential)
    }


def run_completion(**kwargs) -> tuple[str, Finished]:
    async def collect():
        parts, finished = [], None
        async with aclosing(services.completion_stream(**kwargs)) as events:
            async for event in events:
                if type(event) is TextDelta:
                    parts.append(event.text)
                elif type(event) is Finished:
                    finished = event
        return "".join(parts), finished

    return async_to_sync(collect)()


# --- credential_create ---------------------------------------------------------------------------


def test_a_user_creates_a_personal_credential_with_an_encrypted_key(alice):
    credential = services.credential_create(
        actor=alice, preset="openai", name=" Work OpenAI ", api_key=f" {KEY} "
    )

    credential.refresh_from_db()
    assert credential.owner_user == alice
    assert credential.owner_team is None
    assert credential.created_by == alice
    assert credential.name == "Work OpenAI"
    assert credential.api_key == KEY
    assert credential.effective_base_url == "https://api.openai.com/v1"
    assert credential.is_local is False
    assert credential.is_active is True
    # Encrypted at rest: the column holds no plaintext.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT api_key FROM providers_providercredential WHERE id = %s", [credential.pk]
        )
        stored = cursor.fetchone()[0]
    assert stored
    assert KEY not in stored


def test_the_name_defaults_to_the_providers_label(alice):
    credential = services.credential_create(
        actor=alice, preset="anthropic", name="", api_key="sk-ant-xyz-123456"
    )

    assert credential.name == "Anthropic"


def test_a_team_owner_creates_a_team_credential(alice, team):
    credential = services.credential_create(
        actor=alice, preset="openai", name="Acme OpenAI", api_key=KEY, owner_team=team
    )

    assert credential.owner_team == team
    assert credential.owner_user is None
    assert credential.created_by == alice


@pytest.mark.parametrize("persona", ["bob_teammate", "vera_viewer"])
def test_members_and_viewers_cannot_create_team_credentials(persona, request, team):
    user = request.getfixturevalue(persona)

    with pytest.raises(PermissionDenied):
        services.credential_create(
            actor=user, preset="openai", name="Sneaky", api_key=KEY, owner_team=team
        )

    assert not ProviderCredential.objects.filter(owner_team=team).exists()


def test_an_outsider_cannot_create_a_credential_for_a_foreign_team(team, charlie_outsider):
    with pytest.raises(Http404):
        services.credential_create(
            actor=charlie_outsider, preset="openai", name="x", api_key=KEY, owner_team=team
        )


def test_a_preset_that_needs_a_key_refuses_to_be_created_without_one(alice):
    with pytest.raises(ValidationError) as caught:
        services.credential_create(actor=alice, preset="openai", name="No key", api_key="   ")

    assert caught.value.message_dict == {"api_key": ["OpenAI needs an API key."]}
    assert not ProviderCredential.objects.exists()


def test_an_unknown_preset_is_a_validation_error(alice):
    with pytest.raises(ValidationError) as caught:
        services.credential_create(actor=alice, preset="skynet", name="x", api_key=KEY)

    assert "preset" in caught.value.message_dict


def test_an_openai_compatible_server_needs_a_base_url(alice):
    with pytest.raises(ValidationError) as caught:
        services.credential_create(
            actor=alice, preset="openai_compatible", name="vLLM", base_url="  "
        )

    [message] = caught.value.message_dict["base_url"]
    assert "needs a base URL" in message
    assert not ProviderCredential.objects.exists()


@pytest.mark.parametrize(
    ("base_url", "reason"),
    [
        ("ftp://gpu-box/v1", "only http and https URLs are allowed"),
        ("http://gpu box:8000/v1", "whitespace"),
        ("http://user:secret@gpu-box:8000/v1", "credentials in the URL are not allowed"),
        ("http://gpu-box:99999/v1", "the port is out of range"),
        ("not a url", "Invalid URL"),
    ],
)
def test_a_malformed_base_url_is_refused_with_a_clear_message(alice, base_url, reason):
    with pytest.raises(ValidationError) as caught:
        services.credential_create(
            actor=alice, preset="openai_compatible", name="vLLM", base_url=base_url
        )

    [message] = caught.value.message_dict["base_url"]
    assert message.startswith("Invalid URL: ")
    assert reason in message
    assert "secret" not in message  # the URL (and what it carries) is never echoed
    assert not ProviderCredential.objects.exists()


@pytest.mark.parametrize(
    ("preset", "api_key", "expected"),
    [
        ("openai_compatible", "", True),
        ("ollama", "", True),
        ("echo", "", True),
        ("openai", KEY, False),
        ("groq", "gsk_abcdef123456", False),
    ],
)
def test_is_local_defaults_from_the_preset(alice, preset, api_key, expected):
    base_url = "http://gpu-box:8000/v1" if preset == "openai_compatible" else ""
    credential = services.credential_create(
        actor=alice, preset=preset, name=preset, api_key=api_key, base_url=base_url
    )

    assert credential.is_local is expected


def test_is_local_can_be_overridden_for_a_paid_openai_compatible_service(alice):
    credential = services.credential_create(
        actor=alice,
        preset="openai_compatible",
        name="Hosted vLLM",
        base_url="https://llm.example.com/v1",
        is_local=False,
    )

    assert credential.is_local is False


# --- credential_update ---------------------------------------------------------------------------


@pytest.fixture
def openai_credential(alice):
    credential = services.credential_create(actor=alice, preset="openai", name="Work", api_key=KEY)
    credential.last_test_ok = True
    credential.save()
    return credential


@pytest.fixture
def team_credential(alice, team):
    return services.credential_create(
        actor=alice, preset="openai", name="Acme OpenAI", api_key=KEY, owner_team=team
    )


def test_an_empty_api_key_keeps_the_stored_key(alice, openai_credential):
    services.credential_update(
        actor=alice,
        credential=openai_credential,
        name="Renamed",
        api_key="",
        organization=" org-1 ",
    )

    openai_credential.refresh_from_db()
    assert openai_credential.name == "Renamed"
    assert openai_credential.organization == "org-1"
    assert openai_credential.api_key == KEY
    assert openai_credential.last_test_ok is True


def test_a_new_key_replaces_the_old_and_resets_the_connection_status(alice, openai_credential):
    services.credential_update(
        actor=alice, credential=openai_credential, api_key=" sk-new-key-999999999 "
    )

    openai_credential.refresh_from_db()
    assert openai_credential.api_key == "sk-new-key-999999999"
    assert openai_credential.last_test_ok is None


def test_a_new_base_url_clears_the_key_and_the_connection_status(alice, openai_credential):
    services.credential_update(
        actor=alice,
        credential=openai_credential,
        base_url="https://proxy.example.com/v1",
        api_key="",
    )

    openai_credential.refresh_from_db()
    assert openai_credential.base_url == "https://proxy.example.com/v1"
    assert openai_credential.api_key == ""
    assert openai_credential.last_test_ok is None


def test_the_same_base_url_again_keeps_the_key(alice, openai_credential):
    services.credential_update(actor=alice, credential=openai_credential, base_url="", name="Same")

    openai_credential.refresh_from_db()
    assert openai_credential.api_key == KEY
    assert openai_credential.last_test_ok is True


def test_a_new_base_url_with_a_new_key_keeps_the_new_key(alice, openai_credential):
    services.credential_update(
        actor=alice,
        credential=openai_credential,
        base_url="https://proxy.example.com/v1",
        api_key="sk-proxy-key-424242",
    )

    openai_credential.refresh_from_db()
    assert openai_credential.base_url == "https://proxy.example.com/v1"
    assert openai_credential.api_key == "sk-proxy-key-424242"


def test_a_malformed_base_url_on_update_changes_nothing(alice, openai_credential):
    with pytest.raises(ValidationError) as caught:
        services.credential_update(
            actor=alice, credential=openai_credential, base_url="javascript:alert(1)"
        )

    assert "only http and https" in caught.value.message_dict["base_url"][0]
    openai_credential.refresh_from_db()
    assert openai_credential.base_url == ""
    assert openai_credential.api_key == KEY


def test_an_empty_name_is_refused(alice, openai_credential):
    with pytest.raises(ValidationError) as caught:
        services.credential_update(actor=alice, credential=openai_credential, name="   ")

    assert "name" in caught.value.message_dict


def test_fields_outside_the_editable_set_are_refused(alice, openai_credential):
    with pytest.raises(ValidationError):
        services.credential_update(actor=alice, credential=openai_credential, preset="anthropic")


def test_only_managers_may_update_a_team_credential(
    alice, team_credential, bob_teammate, vera_viewer, charlie_outsider
):
    with pytest.raises(PermissionDenied):
        services.credential_update(actor=bob_teammate, credential=team_credential, name="Bob's now")
    with pytest.raises(PermissionDenied):
        services.credential_update(actor=vera_viewer, credential=team_credential, name="Vera's now")
    with pytest.raises(Http404):
        services.credential_update(
            actor=charlie_outsider, credential=team_credential, name="Charlie's now"
        )

    services.credential_update(actor=alice, credential=team_credential, name="Acme main")
    team_credential.refresh_from_db()
    assert team_credential.name == "Acme main"


def test_nobody_else_may_update_a_personal_credential(openai_credential, bob_teammate):
    with pytest.raises(Http404):
        services.credential_update(actor=bob_teammate, credential=openai_credential, name="Mine")


# --- credential_delete ---------------------------------------------------------------------------


def _usage_row(user, credential, **fields) -> UsageRecord:
    return usage_record(
        user=user,
        team_id=credential.owner_team_id,
        credential=credential,
        credential_name=credential.name,
        preset=credential.preset,
        provider_id="openai",
        model="gpt-4o-mini",
        status=CallStatus.OK,
        input_tokens=10,
        output_tokens=5,
        cost=Decimal("0.000004500"),
        cost_source="provider",
        **fields,
    )


def test_deleting_a_credential_keeps_its_usage_rows(alice, openai_credential):
    row = _usage_row(alice, openai_credential)
    ProviderModel.objects.create(credential=openai_credential, model_id="gpt-4o-mini")

    services.credential_delete(actor=alice, credential=openai_credential)

    assert not ProviderCredential.objects.filter(pk=openai_credential.pk).exists()
    assert not ProviderModel.objects.exists()
    row.refresh_from_db()
    assert row.credential is None
    assert row.credential_name == "Work"
    assert row.input_tokens == 10


def test_only_managers_may_delete_a_team_credential(
    team_credential, bob_teammate, charlie_outsider
):
    with pytest.raises(PermissionDenied):
        services.credential_delete(actor=bob_teammate, credential=team_credential)
    with pytest.raises(Http404):
        services.credential_delete(actor=charlie_outsider, credential=team_credential)

    assert ProviderCredential.objects.filter(pk=team_credential.pk).exists()


# --- The personal Echo credential ----------------------------------------------------------------


def test_ensuring_the_echo_credential_is_idempotent(alice, team):
    first = services.credentials_ensure_echo(user=alice)
    second = services.credentials_ensure_echo(user=alice)

    assert first.pk == second.pk
    assert ProviderCredential.objects.filter(preset="echo").count() == 1
    assert first.owner_user == alice
    assert first.name == "Echo (local)"
    assert first.is_local is True
    assert first.api_key == ""


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to resolve a name or open an IP connection fails the test."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError(f"network used: {args!r}")

    real_connect = socket.socket.connect

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            refuse(address)
        return real_connect(self, address)

    async def create_connection(self, *args, **kwargs):
        refuse(*args)

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(asyncio.BaseEventLoop, "create_connection", create_connection)
    return calls


def test_the_echo_credential_answers_with_no_network(alice, no_network, settings):
    settings.WORKBENCH_EGRESS_ALLOW = []
    echo = services.credentials_ensure_echo(user=alice)

    text, finished = run_completion(
        user=alice,
        credential_id=echo.pk,
        request=CompletionRequest(
            model="echo",
            system="You are terse.",
            messages=(Message("user", "Hello there"),),
            temperature=0.5,
        ),
    )

    assert "You are terse." in text
    assert "Hello there" in text
    assert '"temperature": 0.5' in text
    assert finished.cost_source == "local"
    assert Decimal(finished.cost) == 0
    row = UsageRecord.objects.get(pk=finished.usage_id)
    assert row.status == CallStatus.OK
    assert row.credential == echo

    rows = services.catalogue_refresh(actor=alice, credential=echo)
    assert [r.model_id for r in rows] == ["echo"]
    ok, message = services.credential_test(actor=alice, credential=echo)
    assert ok, message
    assert no_network == []


# --- The model catalogue -------------------------------------------------------------------------


def test_refreshing_an_openai_credential_stores_its_listed_models(
    alice, make_credential, fake_provider
):
    credential = make_credential(alice, "openai")

    rows = services.catalogue_refresh(actor=alice, credential=credential)

    assert sorted(r.model_id for r in rows) == ["gpt-4o", "gpt-4o-mini", "text-embedding-3-small"]
    kinds = dict(credential.models.values_list("model_id", "kind"))
    assert kinds == {"gpt-4o": "chat", "gpt-4o-mini": "chat", "text-embedding-3-small": "embedding"}
    credential.refresh_from_db()
    assert credential.models_fetched_at is not None
    [listing] = fake_provider.requests
    assert (listing.method, listing.path) == ("GET", "/v1/models")
    assert listing.headers["authorization"] == f"Bearer {KEY}"


def test_refreshing_an_anthropic_credential_stores_its_listed_models(
    alice, make_credential, fake_provider
):
    credential = make_credential(alice, "anthropic")

    services.catalogue_refresh(actor=alice, credential=credential)

    assert sorted(credential.models.values_list("model_id", flat=True)) == [
        "claude-3-5-haiku-latest",
        "claude-sonnet-4-5",
    ]
    assert set(credential.models.values_list("family", flat=True)) == {"claude"}
    headers = fake_provider.requests[0].headers
    assert "anthropic-version" in headers
    assert KEY in (headers.get("x-api-key", "") + headers.get("authorization", ""))


def test_refreshing_an_ollama_credential_stores_size_family_and_context_window(
    alice, make_credential, fake_provider
):
    credential = make_credential(alice, "ollama", api_key="")

    services.catalogue_refresh(actor=alice, credential=credential)

    llama = credential.models.get(model_id="llama3.2:3b")
    assert llama.kind == "chat"
    assert llama.family == "llama"
    assert llama.size_bytes == 2019393189
    assert llama.context_window == 131072  # from /api/show
    assert llama.details["parameter_size"] == "3.2B"
    embed = credential.models.get(model_id="nomic-embed-text:latest")
    assert embed.kind == "embedding"
    assert embed.size_bytes == 274302450
    paths = [r.path for r in fake_provider.requests]
    assert paths[0] == "/api/tags"
    assert "/api/show" in paths


def test_perplexity_has_a_static_model_list_and_asks_nobody(alice, make_credential, fake_provider):
    credential = make_credential(alice, "perplexity")

    services.catalogue_refresh(actor=alice, credential=credential)

    assert list(credential.models.order_by("model_id").values_list("model_id", flat=True)) == [
        "sonar",
        "sonar-pro",
        "sonar-reasoning",
        "sonar-reasoning-pro",
    ]
    assert fake_provider.requests == []


def test_a_refresh_replaces_stale_models(alice, make_credential, fake_provider):
    credential = make_credential(alice, "openai")
    ProviderModel.objects.create(credential=credential, model_id="gpt-3-retired")
    services.catalogue_refresh(actor=alice, credential=credential)
    assert not credential.models.filter(model_id="gpt-3-retired").exists()

    fake_provider.configure(models={"openai": ["gpt-4o-mini", "o9-preview"]})
    services.catalogue_refresh(actor=alice, credential=credential)

    assert sorted(credential.models.values_list("model_id", flat=True)) == [
        "gpt-4o-mini",
        "o9-preview",
    ]


def test_a_failed_refresh_keeps_the_old_catalogue(alice, make_credential, fake_provider):
    from providers.adapters.base import ProviderError

    credential = make_credential(alice, "openai")
    services.catalogue_refresh(actor=alice, credential=credential)
    fake_provider.configure(status=503)

    with pytest.raises(ProviderError):
        services.catalogue_refresh(actor=alice, credential=credential)

    assert credential.models.count() == 3


def test_a_member_may_refresh_but_a_viewer_and_an_outsider_may_not(
    alice, team, bob_teammate, vera_viewer, charlie_outsider, make_credential, fake_provider
):
    """Refreshing calls the provider with the team's key: it needs `use` (issue 7)."""
    credential = make_credential(team, "openai")

    with pytest.raises(PermissionDenied):
        services.catalogue_refresh(actor=vera_viewer, credential=credential)
    with pytest.raises(Http404):
        services.catalogue_refresh(actor=charlie_outsider, credential=credential)
    assert fake_provider.requests == []  # the provider never heard of them
    services.catalogue_refresh(actor=bob_teammate, credential=credential)
    assert credential.models.count() == 3


def test_the_catalogue_shows_genai_prices_for_known_models_and_unpriced_for_unknown_ones(
    alice, make_credential, fake_provider
):
    fake_provider.configure(models={"openai": ["gpt-4o-mini", "mystery-model-x"]})
    credential = make_credential(alice, "openai")
    services.catalogue_refresh(actor=alice, credential=credential)

    entries = entries_by_id(alice, credential)

    mini = entries["gpt-4o-mini"]
    assert (mini.input_per_mtok, mini.output_per_mtok) == ("0.15", "0.6")
    assert mini.price_source == "genai-prices"
    assert mini.local is False
    assert mini.context_window  # genai-prices knows it
    mystery = entries["mystery-model-x"]
    assert (mystery.input_per_mtok, mystery.output_per_mtok) == (None, None)
    assert mystery.price_source == "unpriced"


@pytest.mark.parametrize("preset", ["ollama", "openai_compatible", "echo"])
def test_local_credentials_show_local_prices(alice, make_credential, fake_provider, preset):
    credential = make_credential(
        alice, preset, api_key="", is_local=True
    )  # as created from the preset
    if preset == "echo":
        credential.base_url = ""
        credential.save()
    services.catalogue_refresh(actor=alice, credential=credential)

    entries = selectors.catalogue_for(user=alice, credential=credential)

    assert entries
    for entry in entries:
        assert entry.local is True
        assert entry.price_source == "local"
        assert entry.input_per_mtok is None


def test_a_price_override_wins_over_genai_prices(alice, make_credential, fake_provider):
    credential = make_credential(alice, "openai")
    services.catalogue_refresh(actor=alice, credential=credential)
    PriceOverride.objects.create(
        provider_id="openai",
        model="gpt-4o-mini",
        input_per_mtok=Decimal("1.25"),
        output_per_mtok=Decimal("2.5"),
    )

    entries = entries_by_id(alice, credential)

    mini = entries["gpt-4o-mini"]
    assert (mini.input_per_mtok, mini.output_per_mtok, mini.price_source) == (
        "1.25",
        "2.5",
        "override",
    )
    assert entries["gpt-4o"].price_source == "genai-prices"


def test_an_openai_compatible_server_marked_not_local_is_priced_like_a_paid_service(
    alice, fake_provider
):
    """BUG: the preset's help says “Untick ‘local’ if it is a paid service”, but the catalogue
    (and the gate's cost) use `credential.is_local or preset.local`, so unticking does nothing
    for openai_compatible/ollama: a paid host is shown — and charged — as "local · $0"."""
    credential = services.credential_create(
        actor=alice,
        preset="openai_compatible",
        name="Hosted vLLM",
        base_url=f"{fake_provider.url}/v1",
        is_local=False,
    )
    services.catalogue_refresh(actor=alice, credential=credential)
    PriceOverride.objects.create(
        provider_id="openai_compatible",
        model="gpt-4o-mini",
        input_per_mtok=Decimal("1"),
        output_per_mtok=Decimal("2"),
    )

    entries = entries_by_id(alice, credential)

    assert entries["gpt-4o-mini"].local is False
    assert (entries["gpt-4o-mini"].price_source, entries["gpt-4o-mini"].input_per_mtok) == (
        "override",
        "1",
    )
    assert (entries["gpt-4o"].price_source, entries["gpt-4o"].input_per_mtok) == ("unpriced", None)
    _, finished = run_completion(
        user=alice,
        credential_id=credential.pk,
        request=CompletionRequest(model="gpt-4o-mini", messages=(Message("user", "Hi"),)),
    )
    assert finished.cost_source != "local"
    assert Decimal(finished.cost) > 0


def test_an_outsider_cannot_read_the_catalogue(alice, charlie_outsider, make_credential):
    credential = make_credential(alice, "openai")

    with pytest.raises(Http404):
        selectors.catalogue_for(user=charlie_outsider, credential=credential)


# --- credential_test -----------------------------------------------------------------------------


def test_a_successful_connection_test_is_recorded(alice, make_credential, fake_provider):
    credential = make_credential(alice, "openai")

    ok, message = services.credential_test(actor=alice, credential=credential)

    assert ok is True
    assert message.startswith("Connected in ")
    assert message.endswith("3 models available.")
    credential.refresh_from_db()
    assert credential.last_test_ok is True
    assert credential.last_test_message == message
    assert credential.last_tested_at is not None
    assert credential.models.count() == 3


def test_a_rejected_key_is_recorded_as_a_failed_test_without_the_key(
    alice, make_credential, fake_provider
):
    fake_provider.configure(echo_auth=True)  # the fake's 401 body repeats the key back
    credential = make_credential(alice, "openai")

    ok, message = services.credential_test(actor=alice, credential=credential)

    assert ok is False
    assert message.startswith("auth_failed: ")
    assert "0123456789" not in message
    credential.refresh_from_db()
    assert credential.last_test_ok is False
    assert credential.last_test_message == message
    assert credential.last_tested_at is not None


def test_a_viewer_may_not_run_a_connection_test(team, vera_viewer, make_credential):
    credential = make_credential(team, "openai")

    with pytest.raises(PermissionDenied):
        services.credential_test(actor=vera_viewer, credential=credential)
