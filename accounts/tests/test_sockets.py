"""Account events close open websockets (real Channels sockets through the whole ASGI stack):
password change, password reset, an admin setting a password, deactivation and deletion close every
socket of the user, whatever its session; logout and team removal are covered in chats."""

from __future__ import annotations

import re

import pytest
from asgiref.sync import sync_to_async
from django.core import mail
from django.test import Client

from accounts.models import User
from conftest import PASSWORD, make_user
from tests.websocket import connect

pytestmark = pytest.mark.django_db(transaction=True)

NEW_PASSWORD = "a-Long-unusual-passphrase-91"
TIMEOUT = 3
CLOSED = {"type": "websocket.close", "code": 4401}


async def _closed(ws) -> dict:
    return await ws.receive_output(timeout=TIMEOUT)


async def _still_open(ws) -> bool:
    await ws.send_json_to({"type": "ping"})
    return (await ws.receive_json_from(timeout=TIMEOUT))["type"] == "pong"


def _logged_in(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


async def test_changing_the_password_closes_every_socket_of_the_user(alice, charlie_outsider):
    browser = await sync_to_async(_logged_in)(alice)
    async with (
        connect("/ws/ping/", user=alice) as (mine, ok1),
        connect("/ws/ping/", user=charlie_outsider) as (theirs, ok2),
    ):
        assert ok1 and ok2
        response = await sync_to_async(browser.post)(
            "/password/change/",
            {
                "old_password": PASSWORD,
                "new_password1": NEW_PASSWORD,
                "new_password2": NEW_PASSWORD,
            },
        )
        assert response.status_code == 302

        assert await _closed(mine) == CLOSED
        assert await _still_open(theirs)


async def test_a_password_reset_closes_the_users_sockets(alice):
    async with connect("/ws/ping/", user=alice) as (ws, connected):
        assert connected

        def reset():
            client = Client()
            client.post("/password/reset/", {"email": "alice@example.com"})
            link = re.search(r"http://[^/\s]+(/password/reset/\S+/)", mail.outbox[-1].body)[1]
            form_url = client.get(link)["Location"]
            done = client.post(
                form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
            )
            assert done.status_code == 302, done.content

        await sync_to_async(reset)()

        assert await _closed(ws) == CLOSED


async def test_an_admin_setting_a_password_closes_the_users_sockets(alice, team):
    def admin_sets_password():
        admin = User.objects.create_superuser("root", "root@example.com", PASSWORD)
        client = Client()
        client.force_login(admin)
        response = client.post(
            f"/admin/accounts/user/{alice.pk}/password/",
            {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
        )
        assert response.status_code == 302, response.content

    async with connect(f"/ws/chat/{await _team_chat(alice, team)}/", user=alice) as (
        ws,
        connected,
    ):
        assert connected
        await ws.receive_json_from(timeout=TIMEOUT)  # hello
        await sync_to_async(admin_sets_password)()

        assert await _closed(ws) == CLOSED


async def test_deactivating_the_account_closes_its_sockets(alice, bob_teammate):
    async with (
        connect("/ws/ping/", user=alice) as (alices, ok1),
        connect("/ws/ping/", user=bob_teammate) as (bobs, ok2),
    ):
        assert ok1 and ok2

        def deactivate():
            user = User.objects.get(pk=alice.pk)  # as the admin's change form loads it
            user.is_active = False
            user.save()

        await sync_to_async(deactivate)()

        assert await _closed(alices) == CLOSED
        assert await _still_open(bobs)


async def test_deleting_the_account_closes_its_sockets(alice, bob_teammate):
    """An admin deleting an account (the admin's bulk delete goes through a queryset, never
    through a save) ends its open sockets as a deactivation does."""
    async with (
        connect("/ws/ping/", user=alice) as (alices, ok1),
        connect("/ws/ping/", user=bob_teammate) as (bobs, ok2),
    ):
        assert ok1 and ok2

        await sync_to_async(User.objects.filter(pk=alice.pk).delete)()

        assert await _closed(alices) == CLOSED
        assert await _still_open(bobs)


async def test_saving_names_or_logging_in_leaves_sockets_open(alice):
    async with connect("/ws/ping/", user=alice) as (ws, connected):
        assert connected

        def everyday_saves():
            user = User.objects.get(pk=alice.pk)
            user.first_name = "Alice"
            user.save()
            assert Client().login(username="alice", password=PASSWORD)  # writes last_login
            make_user("someone_new")

        await sync_to_async(everyday_saves)()

        assert await _still_open(ws)


@sync_to_async
def _team_chat(alice, team) -> int:
    from chats import services as chat_services
    from providers import services as provider_services

    credential = provider_services.credential_create(
        actor=alice, preset="echo", name="Team echo", owner_team=team
    )
    conversation = chat_services.conversation_start(
        actor=alice, owner_team=team, credential=credential, model="echo"
    )
    return conversation.pk
