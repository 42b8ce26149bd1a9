"""Provider error bodies never reach users (issue 7): scrubbing is pattern-based, and a body that
echoes the key reversed, in base64, spaced out or re-cased got through to members — and to
viewers via usage rows. Users now get our code and a short message on every path (REST — JSON
and SSE share the message —, usage rows, chat, connection tests, pages); the provider's words, scrubbed, are kept for
admins only (the usage row's admin page, the log)."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from accounts.models import User
from billing.models import UsageRecord
from chats import services as chat_services
from chats.models import Message

KEY = "sk-live-AbCdEf0123456789XyZ"
VARIANTS = {
    "reversed": KEY[::-1],
    "base64": base64.b64encode(KEY.encode()).decode(),
    "spaced": " ".join(KEY),
    "without its prefix, lower-cased": KEY[3:].lower(),
}
PROVIDER_SAYS = "Invalid request from key {reversed} ({base64}; {spaced}; {lower})".format(
    reversed=VARIANTS["reversed"],
    base64=VARIANTS["base64"],
    spaced=VARIANTS["spaced"],
    lower=VARIANTS["without its prefix, lower-cased"],
)


def assert_no_key(text: str, where: str) -> None:
    for name, variant in {"as is": KEY, **VARIANTS}.items():
        assert variant not in text, f"the key {name} reached {where}"
    assert "Invalid request from key" not in text, f"the provider's words reached {where}"


@pytest.fixture
def team_key(team, make_credential, one_attempt):
    return make_credential(team, "openai", name="Acme OpenAI", api_key=KEY)


def _completion(credential, **extra) -> dict:
    return {
        "credential": credential.pk,
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
        **extra,
    }


@pytest.mark.django_db
def test_members_and_viewers_never_see_what_the_provider_said(
    team, bob_teammate, vera_viewer, team_key, fake_provider, api_for, client_for, caplog
):
    fake_provider.configure(status=400, error_message=PROVIDER_SAYS)
    bob = api_for(bob_teammate)

    caplog.set_level(logging.WARNING, logger="providers.gate")
    rest = bob.post("/api/completions", _completion(team_key))
    assert rest.status_code == 400 and rest.json()["error"]["code"] == "bad_request"
    assert "rejected the request (HTTP 400)" in rest.json()["error"]["message"]
    assert_no_key(rest.content.decode(), "a REST error")

    fake_provider.configure(status=401, error_message=PROVIDER_SAYS)
    tested = bob.post(f"/api/credentials/{team_key.pk}/test/")
    assert tested.json()["last_test_ok"] is False
    assert_no_key(tested.content.decode(), "a connection test")

    for user in (bob_teammate, vera_viewer):
        rows = api_for(user).get("/api/usage/", {"team": team.pk}).json()["results"]
        assert len(rows) == 1 and all("provider_detail" not in row for row in rows)
        assert_no_key(json.dumps(rows), f"{user.username}'s usage rows")
        page = client_for(user).get(f"/settings/providers/{team_key.pk}/")
        assert_no_key(page.content.decode(), f"{user.username}'s credential page")

    # Admins (and the log) have the provider's words, scrubbed of what looks like a key.
    row = UsageRecord.objects.order_by("id").first()
    assert row.provider_detail.startswith("Invalid request from key")
    assert KEY not in row.provider_detail
    assert "Invalid request from key" in caplog.text
    admin = User.objects.create_superuser("root", "root@example.com", "pw-for-the-admin-1")
    admin_client = client_for(admin)
    assert (
        "Invalid request from key"
        in admin_client.get(f"/admin/billing/usagerecord/{row.pk}/change/").content.decode()
    )


@pytest.mark.django_db(transaction=True)
async def test_a_chat_reply_that_failed_shows_our_message_not_the_providers(
    team, bob_teammate, vera_viewer, team_key, fake_provider
):
    from asgiref.sync import sync_to_async

    from chats.tests.test_consumers import chat_path, receive_until
    from tests.websocket import connect

    fake_provider.configure(status=400, error_message=PROVIDER_SAYS)
    conversation = await sync_to_async(chat_services.conversation_start)(
        actor=bob_teammate, owner_team=team, credential=team_key, model="gpt-4o-mini"
    )
    async with connect(chat_path(conversation), user=bob_teammate) as (ws, connected):
        assert connected
        await ws.receive_json_from(timeout=5)
        await ws.send_json_to({"type": "send", "content": "hello"})
        frames = await receive_until(ws, "final")
    assert_no_key(json.dumps(frames), "chat frames")
    reply = await Message.objects.aget(role="assistant")
    assert reply.error_code == "bad_request"
    assert_no_key(reply.error_message, "the saved reply")

    def page_for(user):
        from django.test import Client

        client = Client()
        client.force_login(user)
        return client.get(f"/chat/{conversation.pk}/").content.decode()

    assert_no_key(await sync_to_async(page_for)(vera_viewer), "vera's chat page")
