"""API keys stay secret (DESIGN §5): a canary key never shows up in an API response, a page, the
admin, a log record or an error — not even when the provider echoes it back in a 401. Changing
the base URL clears the key; a key that can't be decrypted is an error and is never sent; keys
are re-encrypted on rotation."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import secrets
import traceback

import anthropic  # noqa: F401 - warm SDK imports: a cold import must not count against timeouts
import groq  # noqa: F401
import ollama  # noqa: F401
import openai  # noqa: F401
import pytest
from asgiref.sync import sync_to_async
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.test import AsyncClient, Client

from accounts.models import User
from billing.models import UsageRecord
from providers.adapters.base import CompletionRequest, Message, ProviderError
from providers.gate import completion_stream
from providers.keys import mask
from providers.models import ProviderCredential

CANARY = "sk-canary-" + secrets.token_hex(16)
LOGGERS = [
    "httpx",
    "httpx2",
    "httpcore",
    "httpcore2",
    "openai",
    "anthropic",
    "groq",
    "ollama",
    "providers",
]
MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-3-5-haiku-latest",
    "groq": "llama-3.1-8b-instant",
    "ollama": "llama3.2:3b",
}


@pytest.fixture(autouse=True)
async def _close_worker_thread_connection():
    """asgiref runs this module's `sync_to_async` calls in one worker thread; close that thread's
    database connection after each test (the root conftest closes another thread's), else the
    test database can't be dropped at the end of the session (a 5 s wait and a warning)."""
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def debug_logs(caplog):
    """Every logger we and the SDKs use, at DEBUG, captured."""
    caplog.set_level(logging.DEBUG)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def assert_no_canary_in_logs(caplog) -> None:
    assert CANARY not in caplog.text
    for record in caplog.records:
        assert CANARY not in record.getMessage()
        if record.exc_info:
            assert CANARY not in "".join(traceback.format_exception(*record.exc_info))


def assert_no_canary_in_error(error: ProviderError) -> None:
    for text in (
        error.message,
        str(error),
        repr(error),
        json.dumps(error.as_dict()),
        error.partial_text,
        "".join(traceback.format_exception(error)),  # what a caller logging it would print
    ):
        assert CANARY not in text


def canary_reached(fake) -> bool:
    """The fake did receive the key (so not finding it elsewhere means something)."""
    return any(CANARY in value for r in fake.requests for value in r.headers.values())


def raw_api_key(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM providers_providercredential WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def write_raw_api_key(pk: int, value: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE providers_providercredential SET api_key = %s WHERE id = %s", [value, pk]
        )


def foreign_ciphertext(plaintext: str = CANARY) -> str:
    """A key encrypted with a Fernet key this instance doesn't have."""
    return Fernet(Fernet.generate_key()).encrypt(plaintext.encode()).decode()


def request_for(preset: str) -> CompletionRequest:
    return CompletionRequest(model=MODELS[preset], messages=(Message("user", "hello"),))


async def run_chat(user, credential, preset: str) -> None:
    async with contextlib.aclosing(
        completion_stream(user=user, credential_id=credential.pk, request=request_for(preset))
    ) as events:
        async for _ in events:
            pass


# --- Errors and logs -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("preset", list(MODELS))
async def test_a_401_echoing_the_key_leaks_it_nowhere(
    preset, fake_provider, make_credential, alice, debug_logs
):
    fake_provider.configure(echo_auth=True)
    credential = await sync_to_async(make_credential)(alice, preset, api_key=CANARY)

    with pytest.raises(ProviderError) as info:
        await run_chat(alice, credential, preset)

    assert canary_reached(fake_provider)
    error = info.value
    assert error.code == "auth_failed"
    assert_no_canary_in_error(error)
    [record] = await sync_to_async(list)(UsageRecord.objects.all())
    assert record.error_code == "auth_failed"
    assert CANARY not in record.error_message
    assert CANARY not in json.dumps(record.price_snapshot) + json.dumps(record.context)
    assert_no_canary_in_logs(debug_logs)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("preset", ["openai", "ollama"])
async def test_a_key_that_does_not_look_like_a_key_is_scrubbed_too(
    preset, fake_provider, make_credential, alice, debug_logs
):
    # No "sk-" prefix: only the adapter's own knowledge of the key can redact it.
    plain = secrets.token_hex(20)
    fake_provider.configure(echo_auth=True)
    credential = await sync_to_async(make_credential)(alice, preset, api_key=plain)

    with pytest.raises(ProviderError) as info:
        await run_chat(alice, credential, preset)

    assert any(plain in v for r in fake_provider.requests for v in r.headers.values())
    error = info.value
    assert error.code == "auth_failed"
    for text in (error.message, str(error), "".join(traceback.format_exception(error))):
        assert plain not in text
    record = await sync_to_async(UsageRecord.objects.get)()
    assert plain not in record.error_message
    assert plain not in debug_logs.text


@pytest.mark.django_db(transaction=True)
async def test_a_successful_call_logs_no_key_at_debug(
    fake_provider, make_credential, alice, debug_logs
):
    credential = await sync_to_async(make_credential)(alice, "openai", api_key=CANARY)

    await run_chat(alice, credential, "openai")

    assert canary_reached(fake_provider)
    names = {record.name.split(".")[0] for record in debug_logs.records}
    assert {"openai", "httpx2"} <= names  # the SDK's debug output really was captured
    assert_no_canary_in_logs(debug_logs)


# --- API, pages, admin -----------------------------------------------------------------------------


@pytest.fixture
def leaky(fake_provider, make_credential, alice):
    """alice's credential holding the canary, at a provider that echoes keys in its 401s."""
    fake_provider.configure(echo_auth=True)
    return make_credential(alice, "openai", api_key=CANARY, name="Leaky")


def body_of(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


@pytest.mark.django_db
def test_the_api_never_returns_the_key(leaky, alice, fake_provider, debug_logs):
    client = Client()
    client.force_login(alice)
    seen = []

    # A connection test against the echoing provider stores its outcome on the credential.
    tested = client.post(f"/api/credentials/{leaky.pk}/test/")
    assert tested.status_code == 200 and tested.json()["last_test_ok"] is False
    seen.append(tested)
    completion = client.post(
        "/api/completions",
        {
            "credential": leaky.pk,
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "hi"}],
        },
        content_type="application/json",
    )
    assert completion.status_code == 502
    assert "auth_failed" in completion.content.decode()
    seen.append(completion)
    listed = client.get("/api/credentials/")
    detail = client.get(f"/api/credentials/{leaky.pk}/")
    usage = client.get("/api/usage/")
    seen += [listed, detail, usage]

    assert canary_reached(fake_provider)
    for response in seen:
        assert response.status_code in (200, 502)
        assert CANARY not in body_of(response)
    assert detail.json()["api_key_masked"] == mask(CANARY) == f"sk-…{CANARY[-4:]}"
    assert detail.json()["has_key"] is True
    assert "api_key" not in detail.json()
    assert usage.json()["results"] and UsageRecord.objects.count() == 1
    assert_no_canary_in_logs(debug_logs)


@pytest.mark.django_db(transaction=True)
async def test_the_streaming_api_never_returns_the_key(fake_provider, make_credential, alice):
    fake_provider.configure(echo_auth=True)
    credential = await sync_to_async(make_credential)(alice, "openai", api_key=CANARY)
    client = AsyncClient()
    await client.aforce_login(alice)

    response = await client.post(
        "/api/completions",
        {
            "credential": credential.pk,
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
        },
        content_type="application/json",
    )
    body = b"".join([chunk async for chunk in response.streaming_content]).decode()

    assert canary_reached(fake_provider)
    assert "event: error" in body and "auth_failed" in body
    assert CANARY not in body


@pytest.mark.django_db
def test_settings_pages_never_render_the_key(leaky, alice, fake_provider):
    client = Client()
    client.force_login(alice)
    tested = client.post(f"/settings/providers/{leaky.pk}/test/", follow=True)  # a failing test
    pages = [
        tested,
        client.get("/settings/providers/"),
        client.get(f"/settings/providers/{leaky.pk}/"),
        client.get(f"/settings/providers/{leaky.pk}/edit/"),
    ]

    assert canary_reached(fake_provider)
    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        assert CANARY not in html
    assert mask(CANARY) in pages[2].content.decode()


@pytest.mark.django_db
def test_the_admin_never_renders_the_key(leaky, fake_provider, alice):
    admin = User.objects.create_superuser("root", "root@example.com", "pw-root-123456")
    client = Client()
    # Give the ledger a row with the provider's (echoing) error in it.
    client.force_login(alice)
    client.post(
        "/api/completions",
        {
            "credential": leaky.pk,
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "hi"}],
        },
        content_type="application/json",
    )
    client.force_login(admin)
    record = UsageRecord.objects.get()

    pages = [
        client.get(f"/admin/providers/providercredential/{leaky.pk}/change/"),
        client.get("/admin/providers/providercredential/"),
        client.get(f"/admin/billing/usagerecord/{record.pk}/change/"),
        client.get("/admin/billing/usagerecord/"),
    ]

    assert canary_reached(fake_provider)
    for page in pages:
        assert page.status_code == 200, page.request["PATH_INFO"]
        assert CANARY not in page.content.decode()
    change = pages[0].content.decode()
    assert 'name="api_key"' in change and mask(CANARY) in change


@pytest.mark.django_db
def test_saving_the_admin_form_with_an_empty_key_keeps_the_stored_key(leaky):
    admin = User.objects.create_superuser("root", "root@example.com", "pw-root-123456")
    client = Client()
    client.force_login(admin)
    page = client.get(f"/admin/providers/providercredential/{leaky.pk}/change/")
    form = page.context["adminform"].form
    data = {
        name: ("" if value is None else value)
        for name, value in form.initial.items()
        if name in form.fields and not isinstance(value, (list, dict))
    }
    data.update(
        {
            "name": "Renamed",
            "api_key": "",
            "metadata": "{}",
            "owner_user": leaky.owner_user_id,
            "owner_team": "",
            "created_by": "",
            "preset": "openai",
            "is_active": "on",
            "models-TOTAL_FORMS": "0",
            "models-INITIAL_FORMS": "0",
            "models-MIN_NUM_FORMS": "0",
            "models-MAX_NUM_FORMS": "1000",
        }
    )
    data = {k: v for k, v in data.items() if v is not False}

    response = client.post(f"/admin/providers/providercredential/{leaky.pk}/change/", data)

    assert response.status_code == 302, response.content.decode()[:2000]
    leaky.refresh_from_db()
    assert leaky.name == "Renamed" and leaky.api_key == CANARY


# --- Base URL changes ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_changing_the_base_url_through_the_api_clears_the_key(make_credential, alice):
    credential = make_credential(alice, "openai", api_key=CANARY)
    client = Client()
    client.force_login(alice)

    renamed = client.patch(
        f"/api/credentials/{credential.pk}/", {"name": "Same host"}, content_type="application/json"
    )
    assert renamed.status_code == 200 and renamed.json()["has_key"] is True

    moved = client.patch(
        f"/api/credentials/{credential.pk}/",
        {"base_url": "https://elsewhere.example.com/v1"},
        content_type="application/json",
    )

    assert moved.status_code == 200
    assert moved.json()["has_key"] is False and moved.json()["api_key_masked"] == ""
    assert CANARY not in moved.content.decode()
    credential.refresh_from_db()
    assert credential.api_key == "" and credential.base_url == "https://elsewhere.example.com/v1"
    assert client.get(f"/api/credentials/{credential.pk}/").json()["has_key"] is False


# --- Keys that can't be decrypted ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_an_unreadable_key_is_an_error_and_nothing_is_sent(
    fake_provider, make_credential, alice, debug_logs
):
    credential = await sync_to_async(make_credential)(alice, "openai", api_key=CANARY)
    ciphertext = foreign_ciphertext()
    await sync_to_async(write_raw_api_key)(credential.pk, ciphertext)

    with pytest.raises(ProviderError) as info:
        await run_chat(alice, credential, "openai")

    error = info.value
    assert error.code == "key_unreadable"
    assert "re-enter" in error.message.lower()
    assert ciphertext not in error.message
    assert fake_provider.requests == []  # neither the ciphertext nor anything else went out
    [record] = await sync_to_async(list)(UsageRecord.objects.all())
    assert record.status == "error" and record.error_code == "key_unreadable"
    assert record.input_tokens == record.output_tokens == 0 and record.cost == 0
    assert ciphertext not in debug_logs.text


@pytest.mark.django_db
def test_an_unreadable_key_shows_as_unreadable_and_fails_the_connection_test(
    fake_provider, make_credential, alice
):
    credential = make_credential(alice, "openai", api_key=CANARY)
    ciphertext = foreign_ciphertext()
    write_raw_api_key(credential.pk, ciphertext)
    client = Client()
    client.force_login(alice)

    detail = client.get(f"/api/credentials/{credential.pk}/").json()
    tested = client.post(f"/api/credentials/{credential.pk}/test/").json()
    page = client.get(f"/settings/providers/{credential.pk}/").content.decode()

    assert detail["api_key_masked"] == "unreadable — re-enter"
    assert tested["last_test_ok"] is False and "key_unreadable" in tested["last_test_message"]
    assert "unreadable — re-enter" in page
    assert ciphertext not in page and ciphertext not in json.dumps(detail)
    assert fake_provider.requests == []


# --- Rotation: manage.py reencrypt_keys ------------------------------------------------------------


@pytest.fixture
def rotated(monkeypatch):
    """A new Fernet key put first in front of the configured ones, as an operator rotating
    FIELD_ENCRYPTION_KEY would. Returns the new key's Fernet."""
    new = Fernet(Fernet.generate_key())
    old = [Fernet(key) for key in settings.FIELD_ENCRYPTION_KEY]
    monkeypatch.setattr("encrypted_model_fields.fields.CRYPTER", MultiFernet([new, *old]))
    return new, old


@pytest.mark.django_db
def test_reencrypt_keys_re_encrypts_with_the_newest_key(make_credential, alice, monkeypatch):
    credential = make_credential(alice, "openai", api_key=CANARY)
    other = make_credential(alice, "anthropic", api_key="sk-ant-second-key-abcdef")
    before = raw_api_key(credential.pk)
    old = [Fernet(key) for key in settings.FIELD_ENCRYPTION_KEY]
    new = Fernet(Fernet.generate_key())
    monkeypatch.setattr("encrypted_model_fields.fields.CRYPTER", MultiFernet([new, *old]))
    out = io.StringIO()

    call_command("reencrypt_keys", stdout=out)

    assert "Re-encrypted 2 key(s)" in out.getvalue()
    after = raw_api_key(credential.pk)
    assert after != before and CANARY not in after
    assert new.decrypt(after.encode()).decode() == CANARY  # the new key alone reads it
    for fernet in old:
        with pytest.raises(InvalidToken):
            fernet.decrypt(after.encode())
    assert new.decrypt(raw_api_key(other.pk).encode()).decode() == "sk-ant-second-key-abcdef"
    credential.refresh_from_db()
    assert credential.api_key == CANARY


@pytest.mark.django_db
def test_reencrypt_keys_counts_only_credentials_that_have_a_key(make_credential, alice, rotated):
    # BUG: `exclude(api_key="")` can't match on an encrypted column ("" is stored encrypted),
    # so keyless credentials (Echo, Ollama) are "re-encrypted" and counted as keys.
    make_credential(alice, "openai", api_key=CANARY)
    make_credential(alice, "echo", api_key="")
    make_credential(alice, "ollama", api_key="")
    out = io.StringIO()

    call_command("reencrypt_keys", stdout=out)

    assert "Re-encrypted 1 key(s)" in out.getvalue()


@pytest.mark.django_db
def test_reencrypt_keys_fails_listing_the_unreadable_ones(make_credential, alice, rotated):
    new, _ = rotated
    readable = make_credential(alice, "openai", api_key=CANARY, name="Readable")
    lost = make_credential(alice, "openai", api_key="sk-lost-0123456789", name="Lost key")
    write_raw_api_key(lost.pk, foreign_ciphertext("sk-lost-0123456789"))
    lost_before = raw_api_key(lost.pk)

    with pytest.raises(CommandError) as info:
        call_command("reencrypt_keys", stdout=io.StringIO())

    message = str(info.value)
    assert f"{lost.pk}: Lost key" in message and "Readable" not in message
    assert "re-enter" in message.lower()
    assert raw_api_key(lost.pk) == lost_before  # left as it was
    # The readable one was still re-encrypted with the new key.
    assert new.decrypt(raw_api_key(readable.pk).encode()).decode() == CANARY
    assert ProviderCredential.objects.get(pk=readable.pk).api_key == CANARY
