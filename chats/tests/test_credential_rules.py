"""Which credentials a conversation may run on (issue 9, bug 3): whoever owns a conversation pays
for it and sees it, so a team conversation runs only on that team's credentials and a personal
one only on its owner's personal credentials. The picker offers only those; the services refuse
anything else with a clear reason — never a 404 for something the user can see, never a generic
provider error halfway through a reply."""

from __future__ import annotations

import re

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from accounts import services as account_services
from chats import services, streaming
from chats.models import Conversation, Message, MessageStatus
from chats.tests.test_consumers import (  # noqa: F401 - the fixture is used by the async tests
    TIMEOUT,
    _no_reply_left_running,
    chat_path,
    db_state,
    receive_until,
    wait_for_reply,
)
from providers import services as provider_services
from providers.models import ProviderModel
from tests.websocket import connect


def legacy_team_chat_on(credential, team, alice) -> Conversation:
    """A team conversation pinned to `credential` as the old picker allowed (saved directly)."""
    conversation = Conversation(credential=credential, model="echo", created_by=alice)
    conversation.set_owner(team)
    conversation.save()
    return conversation


# --- The services --------------------------------------------------------------------------------


def test_a_team_conversation_refuses_a_personal_key_with_a_clear_reason(
    alice, team, echo, team_echo
):
    with pytest.raises(ValidationError) as refused:
        services.conversation_start(actor=alice, owner_team=team, credential=echo, model="echo")
    assert "personal key can't run a conversation of team “Acme”" in " ".join(
        refused.value.messages
    )
    assert Conversation.objects.count() == 0

    conversation = services.conversation_start(
        actor=alice, owner_team=team, credential=team_echo, model="echo"
    )
    with pytest.raises(ValidationError) as refused:
        services.conversation_update(
            actor=alice, conversation=conversation, credential=echo, model="echo"
        )
    assert "Pick one of Acme's models" in " ".join(refused.value.messages)
    conversation.refresh_from_db()
    assert conversation.credential == team_echo


def test_a_conversation_of_one_team_refuses_another_teams_credential(alice, team, team_echo):
    other = account_services.team_create(user=alice, name="Bravo")
    bravo_echo = provider_services.credential_create(
        actor=alice, preset="echo", name="Bravo echo", owner_team=other
    )
    conversation = services.conversation_start(
        actor=alice, owner_team=team, credential=team_echo, model="echo"
    )
    with pytest.raises(ValidationError) as refused:
        services.conversation_update(
            actor=alice, conversation=conversation, credential=bravo_echo, model="echo"
        )
    assert "belongs to another team" in " ".join(refused.value.messages)
    # And the other way round: Bravo's chat can't run on Acme's key (Acme would pay for a chat
    # it can't see).
    with pytest.raises(ValidationError):
        services.conversation_start(actor=alice, owner_team=other, credential=team_echo, model="e")


def test_a_personal_conversation_refuses_a_team_credential(alice, team_echo):
    with pytest.raises(ValidationError) as refused:
        services.conversation_start(actor=alice, credential=team_echo, model="echo")
    assert "belongs to team “Acme”" in " ".join(refused.value.messages)


def test_a_credential_outside_the_tenant_is_still_a_404_and_a_viewer_still_a_403(
    alice, team, team_echo, bob_teammate, vera_viewer, charlie_outsider, echo
):
    conversation = services.conversation_start(
        actor=alice, owner_team=team, credential=team_echo, model="echo"
    )
    with pytest.raises(Http404):  # bob can't see alice's personal key: its id reveals nothing
        services.conversation_update(
            actor=bob_teammate, conversation=conversation, credential=echo, model="echo"
        )
    with pytest.raises(PermissionDenied):
        services.conversation_update(
            actor=vera_viewer, conversation=conversation, credential=team_echo, model="echo"
        )
    with pytest.raises(Http404):
        services.conversation_start(actor=charlie_outsider, credential=echo, model="echo")


@pytest.mark.parametrize("persona", ["alice", "bob_teammate"])
def test_sending_in_a_team_chat_pinned_to_a_personal_key_is_refused_before_anything_is_saved(
    persona, request, alice, team, echo, bob_teammate
):
    conversation = legacy_team_chat_on(echo, team, alice)
    actor = request.getfixturevalue(persona)
    with pytest.raises(ValidationError) as refused:
        services.message_send(actor=actor, conversation=conversation, parent_id=None, content="hi")
    assert "A personal key can't run a conversation of team “Acme”" in " ".join(
        refused.value.messages
    )
    assert Message.objects.count() == 0


def test_continue_is_refused_when_the_reply_was_written_on_a_key_the_chat_may_not_use(
    alice, team, echo, bob_teammate, team_echo
):
    conversation = services.conversation_start(
        actor=alice, owner_team=team, credential=team_echo, model="echo"
    )
    question = Message.objects.create(conversation=conversation, role="user", content="q")
    stopped = Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        content="partial",
        status=MessageStatus.STOPPED,
        credential=echo,  # written on alice's personal key before the rule existed
        model="echo",
    )
    with pytest.raises(ValidationError):
        services.message_continue(
            actor=bob_teammate, conversation=conversation, message_id=stopped.pk
        )
    stopped.refresh_from_db()
    assert stopped.status == MessageStatus.STOPPED


def test_every_member_gets_the_teams_echo_so_a_team_chat_always_has_a_model(
    alice, team, bob_teammate, vera_viewer
):
    made = provider_services.credentials_ensure_echo(user=bob_teammate, team=team)
    again = provider_services.credentials_ensure_echo(user=alice, team=team)
    assert made == again and made.owner_team == team and made.preset == "echo"
    assert ProviderModel.objects.filter(credential=made, model_id="echo").exists()
    with pytest.raises(PermissionDenied):  # a viewer may not use the team, so makes nothing
        provider_services.credentials_ensure_echo(user=vera_viewer, team=team)


# --- The page's picker -----------------------------------------------------------------------------


def picker_values(html: str) -> list[str]:
    select = re.search(r'<select id="model-picker".*?</select>', html, re.S)
    return re.findall(r'<option value="([^"]*)"', select.group(0)) if select else []


def test_the_picker_of_a_team_chat_offers_only_the_teams_models_to_every_member(
    alice, team, team_echo, bob_teammate, vera_viewer, charlie_outsider, echo, client_for
):
    bob_echo = provider_services.credentials_ensure_echo(user=bob_teammate)
    conversation = services.conversation_start(
        actor=alice, owner_team=team, credential=team_echo, model="echo"
    )
    for user in (alice, bob_teammate):
        html = client_for(user).get(f"/chat/{conversation.pk}/").content.decode()
        assert picker_values(html) == [f"{team_echo.pk}|echo"], user
    assert str(echo.pk) + "|" not in html and str(bob_echo.pk) + "|" not in html
    viewer_page = client_for(vera_viewer).get(f"/chat/{conversation.pk}/").content.decode()
    assert picker_values(viewer_page) == []
    assert client_for(charlie_outsider).get(f"/chat/{conversation.pk}/").status_code == 404


def test_the_picker_of_a_personal_chat_offers_only_the_owners_own_models(
    alice, team, team_echo, echo, client_for
):
    conversation = services.conversation_start(actor=alice, credential=echo, model="echo")
    html = client_for(alice).get(f"/chat/{conversation.pk}/").content.decode()
    personal_echo = provider_services.credentials_ensure_echo(user=alice)
    assert set(picker_values(html)) == {f"{echo.pk}|echo", f"{personal_echo.pk}|echo"}


def test_a_team_chat_pinned_to_a_personal_key_says_why_and_asks_for_a_team_model(
    alice, team, echo, bob_teammate, client_for
):
    conversation = legacy_team_chat_on(echo, team, alice)
    html = client_for(bob_teammate).get(f"/chat/{conversation.pk}/").content.decode()
    assert 'data-testid="model-refusal"' in html
    assert "A personal key can&#x27;t run a conversation of team “Acme”" in html
    assert picker_values(html)[0] == ""  # "Pick a model…", then Acme's (its Echo, made now)


def test_the_settings_form_refuses_a_personal_key_for_a_team_chat_and_says_why(
    alice, team, team_echo, echo, client_for
):
    conversation = services.conversation_start(
        actor=alice, owner_team=team, credential=team_echo, model="echo"
    )
    response = client_for(alice).post(
        f"/chat/{conversation.pk}/settings/",
        {"model_choice": f"{echo.pk}|echo"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 400
    assert "A personal key can&#x27;t run a conversation of team" in response.content.decode()
    conversation.refresh_from_db()
    assert conversation.credential == team_echo


# --- The websocket and the runner -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_member_sending_on_a_chat_pinned_to_a_teammates_key_gets_the_reason_not_a_404(
    alice, team, bob_teammate
):
    echo = await sync_to_async(provider_services.credentials_ensure_echo)(user=alice)
    conversation = await sync_to_async(legacy_team_chat_on)(echo, team, alice)
    before = await db_state()
    async with connect(chat_path(conversation), user=bob_teammate) as (ws, connected):
        assert connected
        await ws.receive_json_from(timeout=TIMEOUT)  # hello
        await ws.send_json_to({"type": "send", "parent_id": None, "content": "hi", "ref": "b1"})
        frame = await ws.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "error" and frame["code"] == "invalid" and frame["ref"] == "b1"
    assert "A personal key can't run a conversation of team “Acme”" in frame["message"]
    assert await db_state() == before


@pytest.mark.django_db(transaction=True)
async def test_a_credential_lost_between_send_and_call_ends_the_reply_as_access_denied(
    alice, team, bob_teammate
):
    team_echo = await sync_to_async(provider_services.credentials_ensure_echo)(
        user=alice, team=team
    )
    conversation = await sync_to_async(services.conversation_start)(
        actor=alice, owner_team=team, credential=team_echo, model="echo"
    )
    plan = await sync_to_async(services.message_send)(
        actor=bob_teammate, conversation=conversation, parent_id=None, content="hi"
    )
    # Bob leaves the team after the send was accepted, before the call starts.
    await sync_to_async(team.memberships.filter(user=bob_teammate).delete)()
    async with connect(chat_path(conversation), user=alice) as (ws, connected):
        assert connected
        await ws.receive_json_from(timeout=TIMEOUT)
        await streaming.begin(plan, started={"type": "started", "after": None, "reply": 0})
        frames = await receive_until(ws, "final")
    await wait_for_reply(plan.message_id)
    reply = await sync_to_async(Message.objects.get)(pk=plan.message_id)
    assert frames[-1]["status"] == MessageStatus.ERROR == reply.status
    assert reply.error_code == "access_denied"
    assert "can no longer use this conversation's model" in reply.error_message
