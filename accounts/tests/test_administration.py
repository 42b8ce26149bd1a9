"""Running the instance in the app (issue 9): sign-up mode `approve`, the superusers' user list
(approve, disable, enable, force a password reset), the first-run checklist."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client, override_settings

from accounts.models import User
from conftest import PASSWORD
from workbench import config


@pytest.fixture
def root(db):
    return User.objects.create_superuser(
        username="root", email="root@example.com", password=PASSWORD
    )


def signup(client, username="dana"):
    return client.post(
        "/signup/",
        {
            "username": username,
            "email": f"{username}@example.com",
            "password1": "a sturdy passphrase 42",
            "password2": "a sturdy passphrase 42",
        },
    )


def login(client, username, password="a sturdy passphrase 42"):
    return client.post("/login/", {"username": username, "password": password})


@pytest.mark.parametrize(
    ("raw", "mode"),
    [
        ("approve", "approve"),
        ("OPEN", "open"),
        ("closed", "closed"),
        ("1", "open"),
        ("0", "closed"),
    ],
)
def test_the_signup_mode_reads_words_and_the_old_booleans(raw, mode, monkeypatch):
    monkeypatch.setenv("WORKBENCH_SIGNUP", raw)
    assert config.signup_mode("WORKBENCH_SIGNUP") == mode


def test_a_nonsense_signup_mode_stops_start_up(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setenv("WORKBENCH_SIGNUP", "maybe")
    with pytest.raises(ImproperlyConfigured):
        config.signup_mode("WORKBENCH_SIGNUP")


def confirmation_link(message) -> str:
    return re.search(r"http://127\.0\.0\.1:8000(/signup/confirm/\S+/)", message.body)[1]


@override_settings(WORKBENCH_SIGNUP="approve")
def test_in_approve_mode_a_confirmed_sign_up_waits_until_a_superuser_approves_it(
    root, client_for, django_capture_on_commit_callbacks
):
    visitor = Client()
    assert "An administrator approves new accounts" in visitor.get("/signup/").content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = signup(visitor)

    # The same "check your email" as in open mode (no account revealed), saying what follows.
    assert response["Location"] == "/signup/sent/"
    sent = visitor.get("/signup/sent/").content.decode()
    assert "Check your email" in sent and "an administrator of this instance approves" in sent
    assert not User.objects.filter(username="dana").exists()  # nothing before the link is used
    (confirm,) = mail.outbox
    assert confirm.to == ["dana@example.com"]
    assert "an administrator of this instance approves new accounts" in confirm.body
    link = confirmation_link(confirm)
    assert "An administrator approves new accounts" in visitor.get(link).content.decode()
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = visitor.post(link)

    assert response.status_code == 200
    assert "waits for an administrator" in response.content.decode()
    dana = User.objects.get(username="dana")
    assert (dana.is_active, dana.awaiting_approval) == (False, True)
    assert "_auth_user_id" not in visitor.session
    (notice,) = mail.outbox  # the superusers are told, with a link to the waiting list
    assert notice.to == ["root@example.com"]
    assert "http://127.0.0.1:8000/settings/users/?status=waiting" in notice.body
    # Logging in says why it doesn't work (the password is right), in any case of the name.
    for typed in ("dana", "DANA"):
        refused = login(visitor, typed)
        assert "waiting for an administrator" in refused.content.decode()
    wrong = login(visitor, "dana", "wrong password")
    assert "waiting" not in wrong.content.decode()

    admin = client_for(root)
    page = admin.get("/settings/users/", {"status": "waiting"}).content.decode()
    assert f'id="user-{dana.pk}"' in page and "1 account waiting for approval" in page
    admin.post(f"/settings/users/{dana.pk}/approve/")

    dana.refresh_from_db()
    assert (dana.is_active, dana.awaiting_approval) == (True, False)
    assert login(visitor, "dana").status_code == 302


def test_the_mode_when_the_link_is_used_decides_whether_the_account_waits(
    root, django_capture_on_commit_callbacks, settings
):
    """A sign-up asked for while sign-up was open and confirmed after the operator switched to
    `approve` waits for approval; after a switch to `closed` the link leads nowhere."""
    with django_capture_on_commit_callbacks(execute=True):
        signup(Client(), "dana")
        signup(Client(), "erin")
    dana_link, erin_link = (confirmation_link(m) for m in mail.outbox)

    settings.WORKBENCH_SIGNUP = "approve"
    assert "waits for an administrator" in Client().post(dana_link).content.decode()
    assert User.objects.get(username="dana").awaiting_approval

    settings.WORKBENCH_SIGNUP = "closed"
    assert Client().post(erin_link).status_code == 404
    assert not User.objects.filter(username="erin").exists()


def test_disabling_a_user_ends_their_sessions_and_tokens(root, alice, client_for, token_for):
    from tests.api_client import Api

    alice_client = client_for(alice)
    api = Api(token_for(alice, "read"))
    assert alice_client.get("/settings/profile/").status_code == 200
    assert api.get("/api/me/").status_code == 200

    response = client_for(root).post(f"/settings/users/{alice.pk}/disable/", follow=True)

    assert "Disabled alice" in response.content.decode()
    assert alice_client.get("/settings/profile/").status_code == 302  # back to the login page
    assert api.get("/api/me/").status_code == 401
    client_for(root).post(f"/settings/users/{alice.pk}/enable/")
    assert api.get("/api/me/").status_code == 200


def test_forcing_a_password_reset_signs_the_user_out_and_mails_a_link(root, alice, client_for):
    alice_client = client_for(alice)
    alice_client.get("/settings/profile/")

    response = client_for(root).post(f"/settings/users/{alice.pk}/password-reset/", follow=True)

    assert "A link to choose a new one went to alice@example.com." in response.content.decode()
    alice.refresh_from_db()
    assert not alice.has_usable_password()
    assert alice_client.get("/settings/profile/").status_code == 302
    assert login(Client(), "alice", PASSWORD).status_code == 200  # the old password fails
    (message,) = mail.outbox
    assert message.to == ["alice@example.com"]
    link = re.search(r"https?://[^\s]+/password/reset/[^\s]+/", message.body).group(0)
    page = Client().get(link, follow=True)
    assert page.status_code == 200 and "new password" in page.content.decode().lower()


def test_a_superuser_cant_disable_or_reset_themselves_here(root, client_for):
    client = client_for(root)
    for action in ("disable", "password-reset"):
        response = client.post(f"/settings/users/{root.pk}/{action}/", follow=True)
        assert "You can’t do that to your own account here." in response.content.decode()
    root.refresh_from_db()
    assert root.is_active and root.has_usable_password()


def test_the_user_list_and_its_actions_are_not_found_for_everyone_else(
    alice, bob_teammate, client_for
):
    client = client_for(alice)
    assert client.get("/settings/users/").status_code == 404
    assert client.post(f"/settings/users/{bob_teammate.pk}/disable/").status_code == 404
    bob_teammate.refresh_from_db()
    assert bob_teammate.is_active
    assert "Users</a>" not in client.get("/settings/profile/").content.decode()


def test_the_user_list_searches_and_filters(root, alice, bob_teammate, client_for):
    client = client_for(root)
    bob_teammate.is_active = False
    bob_teammate.save()

    found = client.get("/settings/users/", {"q": "ALI"}).content.decode()
    disabled = client.get("/settings/users/", {"status": "disabled"}).content.decode()

    assert f'id="user-{alice.pk}"' in found and f'id="user-{bob_teammate.pk}"' not in found
    assert f'id="user-{bob_teammate.pk}"' in disabled and f'id="user-{alice.pk}"' not in disabled


# --- The first-run checklist ----------------------------------------------------------------------


def checklist(client) -> str:
    html = client.get("/").content.decode()
    match = re.search(r'data-testid="checklist">(.*?)</section>', html, re.S)
    return match.group(1) if match else ""


def test_the_checklist_follows_what_a_new_user_has_done(alice, client_for, make_credential):
    client = client_for(alice)
    steps = checklist(client)
    assert "0 of 3 done." in steps
    assert 'href="/settings/providers/add/"' in steps

    make_credential(alice, "openai", name="Work")
    assert "1 of 3 done." in checklist(client)


def test_the_checklist_counts_teammates_and_usage_and_goes_away_when_done(
    alice, team, bob_teammate, client_for, make_credential
):
    from billing.models import UsageRecord

    client = client_for(alice)
    credential = make_credential(alice, "openai", name="Work")
    assert "2 of 3 done." in checklist(client)  # a provider, and bob in Acme
    UsageRecord.objects.create(user=alice, credential=credential, model="gpt-4o-mini")
    assert checklist(client) == ""


def test_hiding_the_checklist_is_for_good(alice, client_for):
    client = client_for(alice)
    assert checklist(client)

    client.post("/checklist/hide/")

    assert checklist(client) == ""
    alice.refresh_from_db()
    assert alice.checklist_hidden
