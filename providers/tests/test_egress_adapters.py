"""The egress guard under every adapter: with an injected resolver, internal targets receive zero
requests through openai_compat, anthropic, groq and ollama — for chat (the gate) and for model
listing (catalogue_refresh) — and each refusal is a clean ProviderError plus a usage row."""

from __future__ import annotations

import contextlib

import anthropic  # noqa: F401 - imported here so a cold SDK import never counts against FAST
import groq  # noqa: F401
import ollama  # noqa: F401
import openai  # noqa: F401
import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from billing.models import UsageRecord
from conftest import FAKE_BASE_PATHS
from providers.adapters.base import CompletionRequest, Message, ProviderError, Timeouts
from providers.fakeserver import FakeProvider
from providers.gate import completion_stream
from providers.models import ProviderModel
from providers.services import catalogue_refresh
from workbench.egress import override_resolver

FAST = Timeouts(connect=1, read=0.5, total=5)
MODELS = {
    "openai": "gpt-4o-mini",  # openai_compat
    "anthropic": "claude-3-5-haiku-latest",
    "groq": "llama-3.1-8b-instant",
    "ollama": "llama3.2:3b",
}
# The injected resolver: names we control. Nothing else resolves.
NAMES = {
    "internal.test": ["127.0.0.1"],
    "private.test": ["10.0.0.5"],
    "metadata.test": ["169.254.169.254"],
    "mixed.test": ["93.184.215.14", "127.0.0.1"],  # one bad address refuses the lot
}


def resolver(host: str) -> list[str]:
    return NAMES[host]


@pytest.fixture(autouse=True)
async def _close_worker_thread_connection():
    """asgiref runs this module's `sync_to_async` calls in one worker thread; close that thread's
    database connection after each test (the root conftest closes another thread's), else the
    test database can't be dropped at the end of the session (a 5 s wait and a warning)."""
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture(scope="module")
def internal():
    """An internal service that COULD answer (a second fake on loopback, not allowlisted)."""
    with FakeProvider() as server:
        yield server


@pytest.fixture
def targets(fake_provider, internal):
    """Empty both servers' request logs; (allowed fake, internal) for the test."""
    internal.reset()
    yield fake_provider, internal
    internal.reset()


# Base URLs as users could type them. {fake}: the allowlisted fake's port, reached under a name
# that is not allowlisted; {internal}: the internal server's port (never allowlisted).
INTERNAL_URLS = {
    "name resolving to loopback (fake's port)": "http://internal.test:{fake}",
    "name resolving to loopback": "http://internal.test:{internal}",
    "another loopback address": "http://127.0.0.2:{fake}",
    "plain loopback, port not allowlisted": "http://127.0.0.1:{internal}",
    "IPv4-mapped IPv6": "http://[::ffff:127.0.0.1]:{internal}",
    "IPv4-mapped IPv6 (fake's port)": "http://[::ffff:127.0.0.1]:{fake}",
    "decimal IPv4": "http://2130706433:{internal}",
    "hex IPv4": "http://0x7f000001:{internal}",
    "short IPv4": "http://127.1:{internal}",
    "decimal 127.0.0.2": "http://2130706434:{fake}",
    "metadata address": "http://169.254.169.254",
    "name resolving to the metadata address": "http://metadata.test",
    "name resolving to a private address": "http://private.test:8000",
    "name resolving to a public and a loopback address": "http://mixed.test:{internal}",
}


def base_url(template: str, preset: str, fake: FakeProvider, internal: FakeProvider) -> str:
    return template.format(fake=fake.port, internal=internal.port) + FAKE_BASE_PATHS[preset]


async def run_chat(user, credential) -> None:
    request = CompletionRequest(
        model=MODELS[credential.preset], messages=(Message("user", "hello"),)
    )
    async with contextlib.aclosing(
        completion_stream(user=user, credential_id=credential.pk, request=request, timeouts=FAST)
    ) as events:
        async for _ in events:
            pass


@sync_to_async
def usage_rows() -> list[UsageRecord]:
    return list(UsageRecord.objects.order_by("id"))


# --- Chat through the gate -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("preset", list(MODELS))
@pytest.mark.parametrize("target", list(INTERNAL_URLS))
async def test_internal_targets_get_zero_requests_through_any_adapter(
    preset, target, targets, make_credential, alice
):
    fake, internal = targets
    url = base_url(INTERNAL_URLS[target], preset, fake, internal)
    credential = await sync_to_async(make_credential)(alice, preset, base_url=url)

    with override_resolver(resolver), pytest.raises(ProviderError) as info:
        await run_chat(alice, credential)

    error = info.value
    assert error.code == "egress_denied", error.message
    assert "allowlist" in error.message
    assert fake.requests == [] and internal.requests == []
    [record] = await usage_rows()
    assert error.usage_id == record.pk
    assert record.status == "error" and record.error_code == "egress_denied"
    assert record.attempts == 1  # a refusal is final: never retried
    assert record.input_tokens == record.output_tokens == 0 and record.cost == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("preset", list(MODELS))
async def test_an_octal_ipv4_base_url_is_refused_as_egress_denied(
    preset, targets, make_credential, alice
):
    # 0177.0.0.1 is 127.0.0.1 to libc. Nothing reaches it (httpx refuses to parse it), but the
    # error must say why in the gate's terms, like every other refused address.
    fake, internal = targets
    url = base_url("http://0177.0.0.1:{internal}", preset, fake, internal)
    credential = await sync_to_async(make_credential)(alice, preset, base_url=url)

    with override_resolver(resolver), pytest.raises(ProviderError) as info:
        await run_chat(alice, credential)

    assert fake.requests == [] and internal.requests == []
    [record] = await usage_rows()
    assert record.status == "error" and record.error_code == info.value.code
    assert info.value.code == "egress_denied", info.value.message


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("preset", list(MODELS))
async def test_a_redirect_to_an_internal_target_is_not_followed(
    preset, targets, make_credential, alice
):
    fake, internal = targets
    path = {
        "anthropic": "/v1/messages",
        "ollama": "/api/chat",
        "groq": "/openai/v1/chat/completions",
    }
    fake.configure(
        redirect_to=f"http://internal.test:{internal.port}{path.get(preset, '/v1/chat/completions')}"
    )
    credential = await sync_to_async(make_credential)(alice, preset)

    with override_resolver(resolver), pytest.raises(ProviderError) as info:
        await run_chat(alice, credential)

    assert info.value.code == "provider_error"
    assert "redirect" in info.value.message.lower()
    assert internal.requests == []
    assert len(fake.requests) == 1  # the allowed host was asked once; the redirect went nowhere
    [record] = await usage_rows()
    assert record.status == "error" and record.error_code == "provider_error"


@pytest.mark.django_db(transaction=True)
async def test_an_injected_resolver_in_the_egress_options_is_used_too(
    targets, make_credential, alice
):
    # The gate's `egress` test hook: a per-call resolver and allowlist, no global override.
    _, internal = targets
    credential = await sync_to_async(make_credential)(
        alice, "openai", base_url=f"http://api.example.test:{internal.port}/v1"
    )
    request = CompletionRequest(model="gpt-4o-mini", messages=(Message("user", "hello"),))

    with pytest.raises(ProviderError) as info:
        async with contextlib.aclosing(
            completion_stream(
                user=alice,
                credential_id=credential.pk,
                request=request,
                timeouts=FAST,
                egress={"allow": [], "resolver": {"api.example.test": ["127.0.0.1"]}.__getitem__},
            )
        ) as events:
            async for _ in events:
                pass

    assert info.value.code == "egress_denied"
    assert internal.requests == []


# --- Model listing ---------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("preset", list(MODELS))
@pytest.mark.parametrize(
    "target",
    [
        "name resolving to loopback (fake's port)",
        "name resolving to loopback",
        "IPv4-mapped IPv6",
        "decimal IPv4",
        "hex IPv4",
        "metadata address",
        "name resolving to a private address",
    ],
)
def test_model_listing_never_reaches_an_internal_target(
    preset, target, targets, make_credential, alice
):
    fake, internal = targets
    url = base_url(INTERNAL_URLS[target], preset, fake, internal)
    credential = make_credential(alice, preset, base_url=url)

    with override_resolver(resolver), pytest.raises(ProviderError) as info:
        catalogue_refresh(actor=alice, credential=credential)

    assert info.value.code == "egress_denied", info.value.message
    assert fake.requests == [] and internal.requests == []
    assert not ProviderModel.objects.filter(credential=credential).exists()
    assert not UsageRecord.objects.exists()  # listing models is not a model call


@pytest.mark.django_db
@pytest.mark.parametrize("preset", ["openai", "ollama"])
def test_model_listing_does_not_follow_a_redirect_to_an_internal_target(
    preset, targets, make_credential, alice
):
    fake, internal = targets
    fake.configure(redirect_to=f"http://internal.test:{internal.port}/v1/models")
    credential = make_credential(alice, preset)

    with override_resolver(resolver), pytest.raises(ProviderError) as info:
        catalogue_refresh(actor=alice, credential=credential)

    assert info.value.code == "provider_error"
    assert internal.requests == []
    assert not ProviderModel.objects.filter(credential=credential).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("preset", ["openai", "ollama"])
def test_model_listing_works_for_the_allowlisted_fake(preset, targets, make_credential, alice):
    # The control: the same path, allowed, does reach the fake and fills the catalogue.
    fake, internal = targets
    credential = make_credential(alice, preset)

    with override_resolver(resolver):
        rows = catalogue_refresh(actor=alice, credential=credential)

    assert {row.model_id for row in rows} >= {MODELS[preset]}
    assert fake.requests and internal.requests == []
