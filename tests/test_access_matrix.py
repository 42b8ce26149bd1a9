"""The access matrix (DESIGN §5): every route, websocket route and id-bearing field has a case,
and every case holds for every persona. Adding a route without a case fails
`test_every_route_has_a_case`."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import get_resolver, path, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts import services
from providers import services as provider_services
from tests.access_cases_prompts import (
    PROMPT_CASES,
    PROMPT_FIELD_CASES,
    PROMPT_WORLD_KEYS,
    prompts_world,
)
from tests.access_cases_rag import RAG_CASES, RAG_FIELD_CASES, rag_world
from tests.access_cases_usage import USAGE_CASES, USAGE_FIELD_CASES
from tests.access_matrix import (
    PERSONAS,
    Case,
    FieldCase,
    SocketCase,
    SocketFieldCase,
    World,
    id_bearing_fields,
    input_classes,
    iter_routes,
    our_modules,
    socket_id_fields,
    uncovered_routes,
    uncovered_sockets,
)
from tests.websocket import connect
from workbench.routing import websocket_urlpatterns


def everyone_gets(status: int, anonymous: int = 302) -> dict[str, int]:
    return {"anonymous": anonymous, **{p: status for p in PERSONAS if p != "anonymous"}}


def team_rule(
    *, alice: int, bob: int, vera: int, anonymous: int = 302, charlie: int = 404
) -> dict[str, int]:
    return {
        "anonymous": anonymous,
        "alice": alice,
        "bob_teammate": bob,
        "vera_viewer": vera,
        "charlie_outsider": charlie,
    }


def only_alice(status: int, anonymous: int = 302) -> dict[str, int]:
    return {
        "anonymous": anonymous,
        "alice": status,
        "bob_teammate": 404,
        "vera_viewer": 404,
        "charlie_outsider": 404,
    }


def only_charlie(status: int, anonymous: int = 302) -> dict[str, int]:
    """An invitation addressed to charlie: its invitee and nobody else (the inviting team's
    managers reach it through the team's own routes)."""
    return {
        "anonymous": anonymous,
        "alice": 404,
        "bob_teammate": 404,
        "vera_viewer": 404,
        "charlie_outsider": status,
    }


PUBLIC = {p: 200 for p in PERSONAS}
team_kw = lambda w: {"pk": w["team"].pk}  # noqa: E731
api_team_kw = lambda w: {"team_pk": w["team"].pk}  # noqa: E731
bob_membership_kw = lambda w: {"pk": w["team"].pk, "membership_pk": w["bob_membership"].pk}  # noqa: E731
api_bob_membership_kw = lambda w: {"team_pk": w["team"].pk, "pk": w["bob_membership"].pk}  # noqa: E731
token_kw = lambda w: {"pk": w["alice_token"].pk}  # noqa: E731
api_invitation_kw = lambda w: {"team_pk": w["team"].pk, "pk": w["invitation"].pk}  # noqa: E731

CASES: list[Case] = [
    # --- pages without ids -------------------------------------------------------------------
    Case("home", everyone_gets(200)),
    Case("chats:index", everyone_gets(200)),
    Case("playground:index", everyone_gets(200)),
    Case("prompts:index", everyone_gets(200)),
    Case("rag:index", everyone_gets(200)),
    Case("evals:index", everyone_gets(200)),
    Case("billing:index", everyone_gets(200)),
    Case(
        "accounts:login",
        {**PUBLIC, **{p: 302 for p in PERSONAS if p != "anonymous"}},
        note="logged-in users are sent home",
    ),
    Case("accounts:logout", everyone_gets(302, anonymous=302), method="POST"),
    Case("accounts:signup", {**{p: 302 for p in PERSONAS}, "anonymous": 200}),
    Case("accounts:signup_sent", PUBLIC),
    Case(
        "accounts:signup_confirm",
        PUBLIC,
        kwargs=lambda w: {"token": "not-a-token"},
        note="an unknown link shows the expired page to anyone",
    ),
    Case("accounts:password_change", everyone_gets(200)),
    Case("accounts:password_change_done", everyone_gets(200)),
    Case("accounts:password_reset", PUBLIC),
    Case("accounts:password_reset_done", PUBLIC),
    Case(
        "accounts:password_reset_confirm",
        PUBLIC,
        kwargs=lambda w: {
            "uidb64": urlsafe_base64_encode(force_bytes(w["alice"].pk)),
            "token": "bad-token",
        },
        note="a wrong token shows the expired page to anyone",
    ),
    Case("accounts:password_reset_complete", PUBLIC),
    Case("accounts:profile", everyone_gets(200)),
    Case(
        "accounts:email_change",
        everyone_gets(400),
        method="POST",
        data=lambda w: {"email": "new@example.com", "current_password": "not it"},
        note="always the person's own account; a wrong password changes nothing",
    ),
    Case("accounts:team_list", everyone_gets(200)),
    Case("accounts:token_list", everyone_gets(200)),
    Case("accounts:personal_switch", everyone_gets(302), method="POST"),
    # --- alice's team --------------------------------------------------------------------------
    Case("accounts:team_detail", team_rule(alice=200, bob=200, vera=200), kwargs=team_kw),
    Case(
        "accounts:team_rename",
        team_rule(alice=302, bob=403, vera=403),
        method="POST",
        kwargs=team_kw,
        data=lambda w: {"name": "Renamed"},
    ),
    Case("accounts:team_delete", team_rule(alice=200, bob=403, vera=403), kwargs=team_kw),
    Case(
        "accounts:team_delete",
        team_rule(alice=302, bob=403, vera=403),
        method="POST",
        kwargs=team_kw,
    ),
    Case(
        "accounts:team_switch",
        team_rule(alice=302, bob=302, vera=302),
        method="POST",
        kwargs=team_kw,
    ),
    Case(
        "accounts:invitation_create",
        team_rule(alice=302, bob=403, vera=403),
        method="POST",
        kwargs=team_kw,
        data=lambda w: {"user": "somebody", "role": "viewer"},
    ),
    Case(
        "accounts:invitation_revoke",
        team_rule(alice=302, bob=404, vera=404),
        method="POST",
        kwargs=lambda w: {"pk": w["team"].pk, "invitation_pk": w["invitation"].pk},
        note="invitations: the team's managers and the invitee only",
    ),
    Case("accounts:invitation_list", everyone_gets(200)),
    Case(
        "accounts:invitation_accept",
        everyone_gets(404),
        method="POST",
        kwargs=lambda w: {"pk": w["invitation"].pk},
        note="newcomer's invitation: nobody else's, not even the inviter's",
    ),
    Case(
        "accounts:invitation_decline",
        everyone_gets(404),
        method="POST",
        kwargs=lambda w: {"pk": w["invitation"].pk},
        note="newcomer's invitation",
    ),
    Case(
        "accounts:member_role",
        team_rule(alice=302, bob=403, vera=403),
        method="POST",
        kwargs=bob_membership_kw,
        data=lambda w: {"role": "viewer"},
    ),
    Case(
        "accounts:member_remove",
        team_rule(alice=302, bob=302, vera=403),
        method="POST",
        kwargs=bob_membership_kw,
        note="bob may leave",
    ),
    # --- alice's token -------------------------------------------------------------------------
    Case("accounts:token_revoke", only_alice(302), method="POST", kwargs=token_kw),
    # --- REST API ------------------------------------------------------------------------------
    Case("api-me", everyone_gets(200, anonymous=401), api=True),
    Case("api-team-list", everyone_gets(200, anonymous=401), api=True),
    Case(
        "api-team-list",
        everyone_gets(201, anonymous=401),
        method="POST",
        api=True,
        data=lambda w: {"name": "New"},
    ),
    Case(
        "api-team-detail",
        team_rule(alice=200, bob=200, vera=200, anonymous=401),
        kwargs=team_kw,
        api=True,
    ),
    Case(
        "api-team-detail",
        team_rule(alice=200, bob=403, vera=403, anonymous=401),
        method="PATCH",
        kwargs=team_kw,
        api=True,
        data=lambda w: {"name": "X"},
    ),
    Case(
        "api-team-detail",
        team_rule(alice=204, bob=403, vera=403, anonymous=401),
        method="DELETE",
        kwargs=team_kw,
        api=True,
    ),
    Case(
        "api-member-list",
        team_rule(alice=200, bob=200, vera=200, anonymous=401),
        kwargs=api_team_kw,
        api=True,
    ),
    Case(
        "api-team-invitation-list",
        team_rule(alice=200, bob=403, vera=403, anonymous=401),
        kwargs=api_team_kw,
        api=True,
    ),
    Case(
        "api-team-invitation-list",
        team_rule(alice=201, bob=403, vera=403, anonymous=401),
        method="POST",
        kwargs=api_team_kw,
        api=True,
        data=lambda w: {"user": "somebody", "role": "member"},
    ),
    Case(
        "api-team-invitation-detail",
        team_rule(alice=200, bob=404, vera=404, anonymous=401),
        kwargs=api_invitation_kw,
        api=True,
    ),
    Case(
        "api-team-invitation-detail",
        team_rule(alice=204, bob=404, vera=404, anonymous=401),
        method="DELETE",
        kwargs=api_invitation_kw,
        api=True,
    ),
    Case("api-invitation-list", everyone_gets(200, anonymous=401), api=True),
    Case(
        "api-invitation-detail",
        only_charlie(200, anonymous=401),
        kwargs=lambda w: {"pk": w["charlie_invitation"].pk},
        api=True,
        note="charlie is invited",
        inside=("charlie_outsider",),
    ),
    Case(
        "api-invitation-accept",
        only_charlie(200, anonymous=401),
        method="POST",
        kwargs=lambda w: {"pk": w["charlie_invitation"].pk},
        api=True,
        note="charlie is invited",
        inside=("charlie_outsider",),
    ),
    Case(
        "api-invitation-decline",
        only_charlie(204, anonymous=401),
        method="POST",
        kwargs=lambda w: {"pk": w["charlie_invitation"].pk},
        api=True,
        note="charlie is invited",
        inside=("charlie_outsider",),
    ),
    Case(
        "api-member-detail",
        team_rule(alice=200, bob=200, vera=200, anonymous=401),
        kwargs=api_bob_membership_kw,
        api=True,
    ),
    Case(
        "api-member-detail",
        team_rule(alice=200, bob=403, vera=403, anonymous=401),
        method="PATCH",
        kwargs=api_bob_membership_kw,
        api=True,
        data=lambda w: {"role": "viewer"},
    ),
    Case(
        "api-member-detail",
        team_rule(alice=204, bob=204, vera=403, anonymous=401),
        method="DELETE",
        kwargs=api_bob_membership_kw,
        api=True,
        note="bob may leave",
    ),
    Case("api-token-list", everyone_gets(200, anonymous=401), api=True),
    Case(
        "api-token-list",
        everyone_gets(201, anonymous=401),
        method="POST",
        api=True,
        data=lambda w: {"name": "t", "scope": "read"},
    ),
    Case("api-token-detail", only_alice(200, anonymous=401), kwargs=token_kw, api=True),
    Case(
        "api-token-detail",
        only_alice(204, anonymous=401),
        method="DELETE",
        kwargs=token_kw,
        api=True,
    ),
    Case("api-schema", PUBLIC, note="the API's shape is public; its data is not"),
    Case("api-docs", PUBLIC),
]

# --- providers: alice's team credential (Echo: no network needed) ---------------------------------
cred_kw = lambda w: {"pk": w["team_credential"].pk}  # noqa: E731

CASES += [
    Case("providers:list", everyone_gets(200)),
    Case("providers:add", everyone_gets(200)),
    Case(
        "providers:add",
        everyone_gets(302),
        method="POST",
        data=lambda w: {"preset": "echo", "name": "Mine"},
        note="personal",
    ),
    Case("providers:detail", team_rule(alice=200, bob=200, vera=200), kwargs=cred_kw),
    Case("providers:edit", team_rule(alice=200, bob=403, vera=403), kwargs=cred_kw),
    Case(
        "providers:edit",
        team_rule(alice=302, bob=403, vera=403),
        method="POST",
        kwargs=cred_kw,
        data=lambda w: {"name": "Renamed", "is_active": "on"},
    ),
    Case("providers:test", team_rule(alice=302, bob=302, vera=403), method="POST", kwargs=cred_kw),
    Case(
        "providers:refresh", team_rule(alice=302, bob=302, vera=403), method="POST", kwargs=cred_kw
    ),
    Case(
        "providers:toggle", team_rule(alice=302, bob=403, vera=403), method="POST", kwargs=cred_kw
    ),
    Case("providers:delete", team_rule(alice=200, bob=403, vera=403), kwargs=cred_kw),
    Case(
        "providers:delete", team_rule(alice=302, bob=403, vera=403), method="POST", kwargs=cred_kw
    ),
    Case("api-credential-list", everyone_gets(200, anonymous=401), api=True),
    Case(
        "api-credential-list",
        everyone_gets(201, anonymous=401),
        method="POST",
        api=True,
        data=lambda w: {"preset": "echo", "name": "Mine"},
        note="personal",
    ),
    Case(
        "api-credential-detail",
        team_rule(alice=200, bob=200, vera=200, anonymous=401),
        kwargs=cred_kw,
        api=True,
    ),
    Case(
        "api-credential-detail",
        team_rule(alice=200, bob=403, vera=403, anonymous=401),
        method="PATCH",
        kwargs=cred_kw,
        api=True,
        data=lambda w: {"name": "X"},
    ),
    Case(
        "api-credential-detail",
        team_rule(alice=204, bob=403, vera=403, anonymous=401),
        method="DELETE",
        kwargs=cred_kw,
        api=True,
    ),
    Case(
        "api-credential-test",
        team_rule(alice=200, bob=200, vera=403, anonymous=401),
        method="POST",
        kwargs=cred_kw,
        api=True,
    ),
    Case(
        "api-credential-models",
        team_rule(alice=200, bob=200, vera=200, anonymous=401),
        kwargs=cred_kw,
        api=True,
    ),
    Case(
        "api-credential-models",
        team_rule(alice=200, bob=200, vera=403, anonymous=401),
        method="POST",
        kwargs=cred_kw,
        api=True,
        note="refresh calls the provider: use",
    ),
    Case(
        "api-usage-list",
        team_rule(alice=200, bob=200, vera=200, anonymous=401),
        query=lambda w: {"team": w["team"].pk},
        api=True,
        note="team usage by query id",
    ),
]

# Id-bearing form/serializer fields: each case sends the id of an object of alice's side.
FIELD_CASES: list[FieldCase] = [
    FieldCase(
        "providers.forms.CredentialForm.owner_team",
        Case(
            "providers:add",
            team_rule(alice=302, bob=403, vera=403),
            method="POST",
            data=lambda w: {"preset": "echo", "name": "Team echo", "owner_team": w["team"].pk},
            note="owner_team",
        ),
    ),
    FieldCase(
        "providers.serializers.CredentialCreateSerializer.owner_team",
        Case(
            "api-credential-list",
            team_rule(alice=201, bob=403, vera=403, anonymous=401),
            method="POST",
            api=True,
            data=lambda w: {"preset": "echo", "name": "Team echo", "owner_team": w["team"].pk},
            note="owner_team",
        ),
    ),
    FieldCase(
        "providers.serializers.CompletionSerializer.team",
        Case(
            "api-completions",
            team_rule(alice=200, bob=200, vera=403, anonymous=401),
            method="POST",
            api=True,
            data=lambda w: {
                "credential": w["team_credential"].pk,
                "team": w["team"].pk,
                "model": "echo",
                "messages": [{"role": "user", "content": "hi"}],
            },
            note="team to bill",
        ),
    ),
    FieldCase(
        "providers.serializers.CompletionSerializer.credential",
        Case(
            "api-completions",
            team_rule(alice=200, bob=200, vera=403, anonymous=401),
            method="POST",
            api=True,
            data=lambda w: {
                "credential": w["team_credential"].pk,
                "model": "echo",
                "messages": [{"role": "user", "content": "hi"}],
            },
            note="credential",
        ),
    ),
]

# --- chats: alice's team conversation (Echo model: no network) ---------------------------------
conv_kw = lambda w: {"pk": w["conversation"].pk}  # noqa: E731
team_conv = lambda **kw: team_rule(**kw)  # noqa: E731

CASES += [
    Case("chats:highlight_css", PUBLIC),
    Case(
        "chats:new",
        everyone_gets(302),
        method="POST",
        data=lambda w: {"content": "hello"},
        note="created with its first message",
    ),
    Case("chats:new", everyone_gets(400), method="POST", note="no message: nothing is created"),
    Case("chats:detail", team_rule(alice=200, bob=200, vera=200), kwargs=conv_kw),
    Case(
        "chats:settings",
        team_rule(alice=302, bob=302, vera=403),
        method="POST",
        kwargs=conv_kw,
        data=lambda w: {"temperature": "0.5"},
    ),
    Case(
        "chats:rename",
        team_rule(alice=302, bob=302, vera=403),
        method="POST",
        kwargs=conv_kw,
        data=lambda w: {"title": "Renamed"},
    ),
    Case("chats:title", team_rule(alice=302, bob=302, vera=403), method="POST", kwargs=conv_kw),
    Case("chats:delete", team_rule(alice=200, bob=403, vera=403), kwargs=conv_kw),
    Case("chats:delete", team_rule(alice=302, bob=403, vera=403), method="POST", kwargs=conv_kw),
    Case(
        "chats:fork",
        team_rule(alice=302, bob=302, vera=403),
        method="POST",
        kwargs=conv_kw,
        data=lambda w: {"message_id": w["answer"].pk},
    ),
    Case(
        "chats:fork",
        team_rule(alice=404, bob=404, vera=403),
        method="POST",
        kwargs=conv_kw,
        data=lambda w: {"message_id": w["foreign_message"].pk},
        note="a message of another conversation",
    ),
    Case(
        "chats:rate",
        team_rule(alice=302, bob=302, vera=302),
        method="POST",
        kwargs=lambda w: {"pk": w["conversation"].pk, "message_pk": w["answer"].pk},
        data=lambda w: {"value": "up", "note": "Good"},
        note="each reader rates for themselves",
    ),
    Case(
        "chats:rate",
        team_rule(alice=404, bob=404, vera=404),
        method="POST",
        kwargs=lambda w: {"pk": w["conversation"].pk, "message_pk": w["foreign_message"].pk},
        data=lambda w: {"value": "up"},
        note="a message of another conversation",
    ),
    Case(
        "chats:export",
        team_rule(alice=200, bob=200, vera=200),
        kwargs=lambda w: {"pk": w["conversation"].pk, "fmt": "md"},
    ),
    Case(
        "chats:export",
        team_rule(alice=200, bob=200, vera=200),
        kwargs=lambda w: {"pk": w["conversation"].pk, "fmt": "json"},
        note="json",
    ),
    Case("api-conversation-list", everyone_gets(200, anonymous=401), api=True),
    Case(
        "api-conversation-list",
        everyone_gets(201, anonymous=401),
        method="POST",
        api=True,
        data=lambda w: {"title": "Mine"},
    ),
    Case(
        "api-conversation-detail",
        team_rule(alice=200, bob=200, vera=200, anonymous=401),
        kwargs=conv_kw,
        api=True,
    ),
    Case(
        "api-conversation-detail",
        team_rule(alice=200, bob=200, vera=403, anonymous=401),
        method="PATCH",
        kwargs=conv_kw,
        api=True,
        data=lambda w: {"title": "X"},
    ),
    Case(
        "api-conversation-detail",
        team_rule(alice=204, bob=403, vera=403, anonymous=401),
        method="DELETE",
        kwargs=conv_kw,
        api=True,
    ),
    Case(
        "api-message-list",
        team_rule(alice=200, bob=200, vera=200, anonymous=401),
        kwargs=conv_kw,
        api=True,
    ),
    Case(
        "api-message-list",
        team_rule(alice=201, bob=201, vera=403, anonymous=401),
        method="POST",
        kwargs=conv_kw,
        api=True,
        data=lambda w: {"content": "hi again"},
    ),
    Case(
        "api-message-stop",
        team_rule(alice=202, bob=202, vera=403, anonymous=401),
        method="POST",
        kwargs=lambda w: {"pk": w["conversation"].pk, "message_id": w["answer"].pk},
        api=True,
    ),
    Case(
        "api-message-stop",
        team_rule(alice=404, bob=404, vera=403, anonymous=401),
        method="POST",
        kwargs=lambda w: {"pk": w["conversation"].pk, "message_id": w["foreign_message"].pk},
        api=True,
        note="a message of another conversation",
    ),
    Case(
        "api-conversation-fork",
        team_rule(alice=201, bob=201, vera=403, anonymous=401),
        method="POST",
        kwargs=conv_kw,
        api=True,
        data=lambda w: {"message_id": w["answer"].pk},
    ),
]

# --- chats: organising the list, share links (issue 9) ----------------------------------------
folder_kw = lambda w: {"pk": w["alice_folder"].pk}  # noqa: E731

CASES += [
    Case(
        "chats:index",
        only_alice(200),
        query=lambda w: {"folder": w["alice_folder"].pk},
        note="a folder by query id: folders are personal",
    ),
    Case("chats:pin", team_rule(alice=302, bob=302, vera=302), method="POST", kwargs=conv_kw),
    Case(
        "chats:archive",
        team_rule(alice=302, bob=302, vera=302),
        method="POST",
        kwargs=conv_kw,
        note="organising your own list needs only read",
    ),
    Case(
        "chats:move",
        team_rule(alice=302, bob=302, vera=302),
        method="POST",
        kwargs=conv_kw,
        data=lambda w: {"folder": ""},
    ),
    Case(
        "chats:list_rename",
        team_rule(alice=302, bob=302, vera=403),
        method="POST",
        kwargs=conv_kw,
        data=lambda w: {"title": "From the list"},
    ),
    Case(
        "chats:bulk",
        everyone_gets(302),
        method="POST",
        data=lambda w: {"conversation_id": [w["conversation"].pk], "action": "archive"},
        note="each id is checked on its own; unseen ones count as not found",
    ),
    Case("chats:folder_create", everyone_gets(302), method="POST", data=lambda w: {"name": "Mine"}),
    Case(
        "chats:folder_rename",
        only_alice(302),
        method="POST",
        kwargs=folder_kw,
        data=lambda w: {"name": "Renamed"},
    ),
    Case("chats:folder_delete", only_alice(302), method="POST", kwargs=folder_kw),
    Case("chats:share", team_rule(alice=200, bob=403, vera=403), kwargs=conv_kw),
    Case("chats:share", team_rule(alice=302, bob=403, vera=403), method="POST", kwargs=conv_kw),
    Case(
        "chats:share_revoke", team_rule(alice=302, bob=403, vera=403), method="POST", kwargs=conv_kw
    ),
    Case(
        "chats:shared",
        PUBLIC,
        kwargs=lambda w: {"token": w["share_link"].token},
        note="the token is the only key: anyone with it reads, no account needed",
    ),
    Case(
        "chats:shared",
        {p: 404 for p in PERSONAS},
        kwargs=lambda w: {"token": w["revoked_link"].token},
        note="a revoked link is gone for everyone, its creator included",
    ),
]

# --- running the instance: superusers only (no persona is one: 404 for all) --------------------
user_kw = lambda w: {"pk": w["bob_teammate"].pk}  # noqa: E731
NOBODY = everyone_gets(404)

CASES += [
    Case("accounts:user_list", NOBODY, note="superusers only: see test_administration"),
    *(
        Case(f"accounts:{name}", NOBODY, method="POST", kwargs=user_kw)
        for name in ("user_approve", "user_disable", "user_enable", "user_password_reset")
    ),
    Case("accounts:checklist_hide", everyone_gets(302), method="POST"),
    Case("providers:egress", NOBODY, note="superusers only: see test_egress_allowlist"),
    Case(
        "providers:egress",
        NOBODY,
        method="POST",
        data=lambda w: {"host_port": "evil.lan:22"},
        note="adding",
    ),
    Case(
        "providers:egress_delete",
        NOBODY,
        method="POST",
        kwargs=lambda w: {"pk": w["egress_entry"].pk},
    ),
]

FIELD_CASES += [
    FieldCase(
        "chats.forms.MoveForm.folder",
        Case(
            "chats:move",
            team_rule(alice=302, bob=404, vera=404),
            method="POST",
            kwargs=conv_kw,
            data=lambda w: {"folder": w["alice_folder"].pk},
            note="alice's folder",
        ),
    ),
    FieldCase(
        "chats.forms.BulkForm.conversation_id",
        Case(
            "chats:bulk",
            everyone_gets(302),
            method="POST",
            data=lambda w: {"conversation_id": [w["conversation"].pk], "action": "delete"},
            note="delete: only alice's request deletes (test_organisation checks which)",
        ),
    ),
]

FIELD_CASES += [
    FieldCase(
        "chats.forms.SettingsForm.model_choice",
        Case(
            "chats:settings",
            team_rule(alice=302, bob=404, vera=403),
            method="POST",
            kwargs=conv_kw,
            data=lambda w: {"model_choice": f"{w['alice_credential'].pk}|echo"},
            note="alice's personal credential",
        ),
    ),
    FieldCase(
        "chats.forms.NewConversationForm.model_choice",
        Case(
            "chats:new",
            {
                "anonymous": 302,
                "alice": 302,
                "bob_teammate": 404,
                "vera_viewer": 404,
                "charlie_outsider": 404,
            },
            method="POST",
            data=lambda w: {"model_choice": f"{w['alice_credential'].pk}|echo", "content": "hi"},
            note="alice's personal credential",
        ),
    ),
    FieldCase(
        "chats.forms.NewConversationForm.owner_team",
        Case(
            "chats:new",
            team_rule(alice=302, bob=302, vera=403),
            method="POST",
            data=lambda w: {"owner_team": w["team"].pk, "content": "hi"},
            note="owner_team",
        ),
    ),
    FieldCase(
        "chats.serializers.ConversationCreateSerializer.credential",
        Case(
            "api-conversation-list",
            {
                "anonymous": 401,
                "alice": 201,
                "bob_teammate": 404,
                "vera_viewer": 404,
                "charlie_outsider": 404,
            },
            method="POST",
            api=True,
            data=lambda w: {"credential": w["alice_credential"].pk, "model": "echo"},
            note="credential",
        ),
    ),
    FieldCase(
        "chats.serializers.ConversationCreateSerializer.owner_team",
        Case(
            "api-conversation-list",
            team_rule(alice=201, bob=201, vera=403, anonymous=401),
            method="POST",
            api=True,
            data=lambda w: {"owner_team": w["team"].pk},
            note="owner_team",
        ),
    ),
    FieldCase(
        "chats.serializers.ConversationWriteSerializer.credential",
        Case(
            "api-conversation-detail",
            # alice sees her own key but a team conversation runs only on the team's (400 with
            # the reason); bob can't even see it (404).
            team_rule(alice=400, bob=404, vera=403, anonymous=401),
            method="PATCH",
            kwargs=conv_kw,
            api=True,
            data=lambda w: {"credential": w["alice_credential"].pk, "model": "echo"},
            note="alice's personal credential",
        ),
    ),
    FieldCase(
        "chats.serializers.ConversationWriteSerializer.credential",
        Case(
            "api-conversation-detail",
            team_rule(alice=200, bob=200, vera=403, anonymous=401),
            method="PATCH",
            kwargs=conv_kw,
            api=True,
            data=lambda w: {"credential": w["team_credential"].pk, "model": "echo"},
            note="the team's credential",
        ),
    ),
    FieldCase(
        "chats.serializers.MessagePostSerializer.parent_id",
        Case(
            "api-message-list",
            team_rule(alice=404, bob=404, vera=403, anonymous=401),
            method="POST",
            kwargs=conv_kw,
            api=True,
            data=lambda w: {"content": "hi", "parent_id": w["foreign_message"].pk},
            note="a parent from another conversation",
        ),
    ),
    FieldCase(
        "chats.serializers.ForkSerializer.message_id",
        Case(
            "api-conversation-fork",
            team_rule(alice=404, bob=404, vera=403, anonymous=401),
            method="POST",
            kwargs=conv_kw,
            api=True,
            data=lambda w: {"message_id": w["foreign_message"].pk},
            note="a message of another conversation",
        ),
    ),
]

CASES += RAG_CASES
# Model preferences (the pickers): a favourite needs `use` of the credential; a team's default
# needs `manage` of the team; a personal default, one's own credential.
FIELD_CASES += [
    FieldCase(
        "providers.forms.FavouriteForm.credential",
        Case(
            "providers:model_favourite",
            team_rule(alice=200, bob=200, vera=403),
            method="POST",
            data=lambda w: {
                "credential": w["team_credential"].pk,
                "model": "echo",
                "favourite": "on",
            },
            note="credential",
        ),
    ),
    FieldCase(
        "providers.forms.DefaultModelForm.credential",
        Case(
            "providers:model_default",
            only_alice(200),
            method="POST",
            data=lambda w: {"credential": w["alice_credential"].pk, "model": "echo"},
            note="credential",
        ),
    ),
    FieldCase(
        "providers.forms.DefaultModelForm.team",
        Case(
            "providers:model_default",
            team_rule(alice=200, bob=403, vera=403),
            method="POST",
            data=lambda w: {
                "credential": w["team_credential"].pk,
                "model": "echo",
                "team": w["team"].pk,
            },
            note="team",
        ),
    ),
]

# --- chats: collections attached to a conversation (issue 14) ---------------------------------
team_coll = lambda w: {"collection_id": w["rag_collection"].pk}  # noqa: E731
personal_coll = lambda w: {"collection_id": w["rag_personal"].pk}  # noqa: E731

CASES += [
    Case(
        "chats:collections",
        team_rule(alice=302, bob=302, vera=403),
        method="POST",
        kwargs=conv_kw,
        data=lambda w: {"action": "attach", **team_coll(w)},
    ),
    Case(
        "chats:collections",
        team_rule(alice=302, bob=302, vera=403),
        method="POST",
        kwargs=conv_kw,
        data=lambda w: {"action": "detach", **team_coll(w)},
        note="detach",
    ),
    Case(
        "chats:collections",
        team_rule(alice=404, bob=404, vera=403),
        method="POST",
        kwargs=conv_kw,
        data=lambda w: {"action": "detach", **personal_coll(w)},
        note="detach a collection that isn't attached",
    ),
    Case(
        "api-conversation-collections",
        team_rule(alice=200, bob=200, vera=200, anonymous=401),
        kwargs=conv_kw,
        api=True,
    ),
    Case(
        "api-conversation-collection",
        team_rule(alice=204, bob=204, vera=403, anonymous=401),
        method="DELETE",
        kwargs=lambda w: {"pk": w["conversation"].pk, **team_coll(w)},
        api=True,
    ),
    Case(
        "api-conversation-collection",
        team_rule(alice=404, bob=404, vera=403, anonymous=401),
        method="DELETE",
        kwargs=lambda w: {"pk": w["conversation"].pk, **personal_coll(w)},
        api=True,
        note="a collection that isn't attached",
    ),
]

# --- chats: files and images attached to messages (issue 14) ---------------------------------
sent_image = lambda w: {"pk": w["conversation"].pk, "attachment_id": w["sent_image"].pk}  # noqa: E731
pending_image = lambda w: {"pk": w["conversation"].pk, "attachment_id": w["pending_image"].pk}  # noqa: E731


def _image_file():
    from django.core.files.uploadedfile import SimpleUploadedFile

    from rag.tests.documents import png

    return SimpleUploadedFile("pic.png", png(4, 4), content_type="image/png")


CASES += [
    Case(
        "chats:attach",
        team_rule(alice=302, bob=302, vera=403),
        method="POST",
        kwargs=conv_kw,
        data=lambda w: {"file": _image_file()},
        note="multipart",
    ),
    Case(
        "chats:attachment_remove",
        team_rule(alice=302, bob=404, vera=403),
        method="POST",
        kwargs=pending_image,
        note="alice's pending image",
    ),
    Case(
        "chats:attachment",
        team_rule(alice=200, bob=200, vera=200),
        kwargs=lambda w: {**sent_image(w), "variant": "thumb"},
    ),
    Case(
        "chats:attachment",
        team_rule(alice=200, bob=404, vera=404),
        kwargs=lambda w: {**pending_image(w), "variant": "full"},
        note="pending: its uploader only",
    ),
    Case(
        "chats:attachment",
        team_rule(alice=404, bob=404, vera=404),
        kwargs=lambda w: {
            "pk": w["conversation"].pk,
            "attachment_id": w["foreign_image"].pk,
            "variant": "thumb",
        },
        note="an attachment of another conversation",
    ),
    Case(
        "api-attachment-list",
        team_rule(alice=200, bob=200, vera=200, anonymous=401),
        kwargs=conv_kw,
        api=True,
    ),
    Case(
        "api-attachment-list",
        team_rule(alice=415, bob=415, vera=403, anonymous=401),
        method="POST",
        kwargs=conv_kw,
        api=True,
        note="JSON instead of multipart: the access check comes first",
    ),
    Case(
        "api-attachment-detail",
        team_rule(alice=200, bob=200, vera=200, anonymous=401),
        kwargs=sent_image,
        api=True,
    ),
    Case(
        "api-attachment-detail",
        team_rule(alice=204, bob=404, vera=403, anonymous=401),
        method="DELETE",
        kwargs=pending_image,
        api=True,
        note="alice's pending image",
    ),
]

FIELD_CASES += [
    FieldCase(
        "chats.forms.CollectionLinkForm.collection_id",
        Case(
            "chats:collections",
            team_rule(alice=302, bob=404, vera=403),
            method="POST",
            kwargs=conv_kw,
            data=lambda w: {"action": "attach", **personal_coll(w)},
            note="alice's personal collection (alice: refused with a message)",
        ),
    ),
    FieldCase(
        "chats.serializers.CollectionAttachSerializer.collection_id",
        Case(
            "api-conversation-collections",
            team_rule(alice=400, bob=404, vera=403, anonymous=401),
            method="POST",
            kwargs=conv_kw,
            api=True,
            data=personal_coll,
            note="alice's personal collection",
        ),
    ),
    FieldCase(
        "chats.serializers.CollectionAttachSerializer.collection_id",
        Case(
            "api-conversation-collections",
            team_rule(alice=201, bob=201, vera=403, anonymous=401),
            method="POST",
            kwargs=conv_kw,
            api=True,
            data=team_coll,
            note="the team's collection",
        ),
    ),
]

FIELD_CASES += RAG_FIELD_CASES

# --- billing: budgets (alice's team budget, alice's personal one) and notifications ----------------
team_budget_kw = lambda w: {"pk": w["team_budget"].pk}  # noqa: E731
alice_budget_kw = lambda w: {"pk": w["alice_budget"].pk}  # noqa: E731
BUDGET_FORM = {"limit": "5", "period": "month", "time_zone": "UTC", "thresholds": "50, 80"}
BUDGET_JSON = {"limit": "5", "period": "month", "time_zone": "UTC", "thresholds": [50, 80]}

CASES += [
    Case("billing:budget_list", everyone_gets(200)),
    Case("billing:budget_add", everyone_gets(200)),
    Case(
        "billing:budget_add",
        everyone_gets(302),
        method="POST",
        data=lambda w: BUDGET_FORM,
        note="personal",
    ),
    Case("billing:budget_edit", team_rule(alice=200, bob=403, vera=403), kwargs=team_budget_kw),
    Case(
        "billing:budget_edit",
        team_rule(alice=302, bob=403, vera=403),
        method="POST",
        kwargs=team_budget_kw,
        data=lambda w: {**BUDGET_FORM, "limit": "7"},
    ),
    Case(
        "billing:budget_edit",
        only_alice(200),
        kwargs=alice_budget_kw,
        note="alice's personal budget",
    ),
    Case("billing:budget_delete", team_rule(alice=200, bob=403, vera=403), kwargs=team_budget_kw),
    Case(
        "billing:budget_delete",
        team_rule(alice=302, bob=403, vera=403),
        method="POST",
        kwargs=team_budget_kw,
    ),
    Case(
        "billing:budget_delete",
        only_alice(302),
        method="POST",
        kwargs=alice_budget_kw,
        note="alice's personal budget",
    ),
    Case("billing:notification_list", everyone_gets(200)),
    Case("billing:notifications_read", everyone_gets(302), method="POST"),
    Case("api-budget-list", everyone_gets(200, anonymous=401), api=True),
    Case(
        "api-budget-list",
        team_rule(alice=200, bob=200, vera=200, anonymous=401),
        query=lambda w: {"team": w["team"].pk},
        api=True,
        note="a team's budgets by query id",
    ),
    Case(
        "api-budget-list",
        everyone_gets(201, anonymous=401),
        method="POST",
        api=True,
        data=lambda w: BUDGET_JSON,
        note="personal",
    ),
    Case(
        "api-budget-detail",
        team_rule(alice=200, bob=200, vera=200, anonymous=401),
        kwargs=team_budget_kw,
        api=True,
    ),
    Case(
        "api-budget-detail",
        team_rule(alice=200, bob=403, vera=403, anonymous=401),
        method="PATCH",
        kwargs=team_budget_kw,
        api=True,
        data=lambda w: {"limit": "8"},
    ),
    Case(
        "api-budget-detail",
        team_rule(alice=204, bob=403, vera=403, anonymous=401),
        method="DELETE",
        kwargs=team_budget_kw,
        api=True,
    ),
    Case(
        "api-budget-detail",
        only_alice(200, anonymous=401),
        kwargs=alice_budget_kw,
        api=True,
        note="alice's personal budget",
    ),
    Case("api-notification-list", everyone_gets(200, anonymous=401), api=True),
    Case(
        "api-notifications-read",
        everyone_gets(200, anonymous=401),
        method="POST",
        api=True,
        data=lambda w: {"ids": [w["alice_notification"].pk]},
        note="only one's own are marked",
    ),
]

# A personal budget naming a team credential or a teammate: inside the tenant a clear 400 (not
# the owner's key / members belong to team budgets), outside it 404.
_NOT_YOURS_TO_NAME = {
    "anonymous": 302,
    "alice": 400,
    "bob_teammate": 400,
    "vera_viewer": 400,
    "charlie_outsider": 404,
}
FIELD_CASES += [
    FieldCase(
        "billing.forms.BudgetForm.owner_team",
        Case(
            "billing:budget_add",
            team_rule(alice=302, bob=403, vera=403),
            method="POST",
            data=lambda w: {**BUDGET_FORM, "owner_team": w["team"].pk},
            note="owner_team",
        ),
    ),
    FieldCase(
        "billing.forms.BudgetForm.credential",
        Case(
            "billing:budget_add",
            _NOT_YOURS_TO_NAME,
            method="POST",
            data=lambda w: {**BUDGET_FORM, "credential": w["team_credential"].pk},
            note="credential",
        ),
    ),
    FieldCase(
        "billing.forms.BudgetForm.user",
        Case(
            "billing:budget_add",
            _NOT_YOURS_TO_NAME,
            method="POST",
            data=lambda w: {**BUDGET_FORM, "user": w["bob_teammate"].pk},
            note="user",
        ),
    ),
    FieldCase(
        "billing.serializers.BudgetWriteSerializer.owner_team",
        Case(
            "api-budget-list",
            team_rule(alice=201, bob=403, vera=403, anonymous=401),
            method="POST",
            api=True,
            data=lambda w: {**BUDGET_JSON, "owner_team": w["team"].pk},
            note="owner_team",
        ),
    ),
    FieldCase(
        "billing.serializers.BudgetWriteSerializer.credential",
        Case(
            "api-budget-list",
            {**_NOT_YOURS_TO_NAME, "anonymous": 401},
            method="POST",
            api=True,
            data=lambda w: {**BUDGET_JSON, "credential": w["team_credential"].pk},
            note="credential",
        ),
    ),
    FieldCase(
        "billing.serializers.BudgetWriteSerializer.user",
        Case(
            "api-budget-list",
            {**_NOT_YOURS_TO_NAME, "anonymous": 401},
            method="POST",
            api=True,
            data=lambda w: {**BUDGET_JSON, "user": w["bob_teammate"].pk},
            note="user",
        ),
    ),
]


def _chat(model: str) -> Callable[[dict], dict]:
    return lambda w: {"model": model, "messages": [{"role": "user", "content": "hi"}]}


def _anthropic(model: str) -> Callable[[dict], dict]:
    return lambda w: {
        "model": model,
        "max_tokens": 20,
        "messages": [{"role": "user", "content": "hi"}],
    }


# The gateway (token-authenticated). Its id-bearing field is the model name: a credential slug
# (`<slug>/<model id>`) or an alias, each of alice's side; the gate then needs `use`.
GATEWAY_CASES: list[Case] = [
    Case(
        "gateway:models",
        team_rule(alice=200, bob=200, vera=200, charlie=200, anonymous=401),
        token=True,
        note="lists only what the token's user may use (test_gateway checks the contents)",
    ),
    *(
        Case(
            "gateway:chat-completions",
            team_rule(alice=200, bob=200, vera=403, anonymous=401),
            method="POST",
            token=True,
            data=_chat(model),
            note=note,
        )
        for model, note in (
            ("acme-echo/echo", "team credential slug"),
            ("team-echo", "team alias"),
        )
    ),
    *(
        Case(
            "gateway:chat-completions",
            only_alice(200, anonymous=401),
            method="POST",
            token=True,
            data=_chat(model),
            note=note,
        )
        for model, note in (
            ("alice-echo/echo", "personal credential slug"),
            ("alice-fast", "personal alias"),
        )
    ),
    Case(
        "gateway:embeddings",
        team_rule(alice=400, bob=400, vera=403, anonymous=401),
        method="POST",
        token=True,
        data=lambda w: {"model": "acme-echo/echo", "input": "hi"},
        note="team credential slug (Echo embeds nothing: 400 for those who may use it)",
    ),
    Case(
        "gateway:embeddings",
        only_alice(400, anonymous=401),
        method="POST",
        token=True,
        data=lambda w: {"model": "alice-fast", "input": "hi"},
        note="personal alias",
    ),
    Case(
        "gateway-anthropic:anthropic-messages",
        team_rule(alice=200, bob=200, vera=403, anonymous=401),
        method="POST",
        token=True,
        data=_anthropic("team-echo"),
        note="team alias",
    ),
    Case(
        "gateway-anthropic:anthropic-messages",
        only_alice(200, anonymous=401),
        method="POST",
        token=True,
        data=_anthropic("alice-echo/echo"),
        note="personal credential slug",
    ),
]


def _alias_kw(key: str) -> Callable[[dict], dict]:
    return lambda w: {"pk": w[key].pk}


ALIAS_CASES: list[Case] = [
    Case(
        "api-alias-list",
        team_rule(alice=200, bob=200, vera=200, charlie=200, anonymous=401),
        api=True,
        note="lists only what the user can see (test_api checks the contents)",
    ),
    Case(
        "api-alias-detail",
        team_rule(alice=200, bob=200, vera=200, anonymous=401),
        kwargs=_alias_kw("team_alias"),
        api=True,
    ),
    Case(
        "api-alias-detail",
        only_alice(200, anonymous=401),
        kwargs=_alias_kw("alice_alias"),
        api=True,
        note="personal",
    ),
    Case(
        "api-alias-detail",
        team_rule(alice=204, bob=204, vera=403, anonymous=401),
        method="DELETE",
        kwargs=_alias_kw("team_alias"),
        api=True,
    ),
    Case(
        "api-alias-detail",
        only_alice(204, anonymous=401),
        method="DELETE",
        kwargs=_alias_kw("alice_alias"),
        api=True,
        note="personal",
    ),
]

ALIAS_FIELD_CASES: list[FieldCase] = [
    FieldCase(
        "providers.serializers.AliasCreateSerializer.credential",
        Case(
            "api-alias-list",
            team_rule(alice=201, bob=201, vera=403, anonymous=401),
            method="POST",
            api=True,
            data=lambda w: {"name": "mine", "credential": w["team_credential"].pk, "model": "echo"},
            note="credential",
        ),
    ),
    FieldCase(
        "providers.serializers.AliasCreateSerializer.owner_team",
        Case(
            "api-alias-list",
            team_rule(alice=201, bob=201, vera=403, anonymous=401),
            method="POST",
            api=True,
            data=lambda w: {
                "name": "team-new",
                "credential": w["team_credential"].pk,
                "model": "echo",
                "owner_team": w["team"].pk,
            },
            note="owner_team",
        ),
    ),
]
FIELD_CASES = [*FIELD_CASES, *ALIAS_FIELD_CASES]

from tests import access_matrix_playground as playground  # noqa: E402 - the playground's cases

CASES += playground.CASES
FIELD_CASES += playground.FIELD_CASES

CASES += PROMPT_CASES
FIELD_CASES += PROMPT_FIELD_CASES
CASES += USAGE_CASES
FIELD_CASES += USAGE_FIELD_CASES
ALL_CASES = [*CASES, *GATEWAY_CASES, *ALIAS_CASES, *(field_case.case for field_case in FIELD_CASES)]

SOCKET_CASES: list[SocketCase] = [
    SocketCase(
        "ws/chat/<int:conversation_id>/",
        path=lambda w: f"/ws/chat/{w['conversation'].pk}/",
        expect={
            "anonymous": False,
            "alice": True,
            "bob_teammate": True,
            "vera_viewer": True,
            "charlie_outsider": False,
        },
    ),
    SocketCase(
        "ws/ping/",
        path=lambda w: "/ws/ping/",
        expect={"anonymous": False, **{p: True for p in PERSONAS if p != "anonymous"}},
    ),
]


CHAT_ROUTE = "ws/chat/<int:conversation_id>/"
_foreign = lambda w: w["foreign_message"].pk  # noqa: E731
MUTATION_REFUSED = {"alice": "not_found", "bob_teammate": "not_found", "vera_viewer": "forbidden"}
SOCKET_CASES += playground.SOCKET_CASES

SOCKET_FIELD_CASES: list[SocketFieldCase] = [
    *playground.SOCKET_FIELD_CASES,
    SocketFieldCase(
        CHAT_ROUTE,
        "send.parent_id",
        lambda w: {"type": "send", "parent_id": _foreign(w), "content": "x"},
        MUTATION_REFUSED,
    ),
    *(
        SocketFieldCase(
            CHAT_ROUTE,
            f"{kind}.message_id",
            lambda w, kind=kind: {"type": kind, "message_id": _foreign(w), "content": "x"},
            MUTATION_REFUSED,
        )
        for kind in ("edit", "regenerate", "retry", "continue", "stop")
    ),
    # A model picked but not yet saved rides with the action: the credential id goes through the
    # rules (bob can't see alice's personal key: 404) and the ownership rule (alice's own key
    # can't run a team conversation: a clear `invalid`).
    *(
        SocketFieldCase(
            CHAT_ROUTE,
            f"{kind}.settings.model_choice",
            lambda w, kind=kind: {
                "type": kind,
                "parent_id": None,
                "message_id": w["question" if kind == "edit" else "answer"].pk,
                "content": "x",
                "settings": {"model_choice": f"{w['alice_credential'].pk}|echo"},
            },
            {"alice": "invalid", "bob_teammate": "not_found", "vera_viewer": "forbidden"},
        )
        for kind in ("send", "edit", "regenerate", "retry")
    ),
    SocketFieldCase(
        CHAT_ROUTE,
        "fork.message_id",
        lambda w: {"type": "fork", "message_id": _foreign(w)},
        {"alice": "not_found", "bob_teammate": "not_found", "vera_viewer": "forbidden"},
    ),
    SocketFieldCase(
        CHAT_ROUTE,
        "switch.message_id",
        lambda w: {"type": "switch", "message_id": _foreign(w)},
        {"alice": "not_found", "bob_teammate": "not_found", "vera_viewer": "not_found"},
    ),
]


def build_world() -> dict:
    """alice's side of the tenant boundary, built without fixtures so async websocket tests can
    build it too. Echo credentials: nothing here needs the network."""
    from accounts.models import Role, User
    from chats import services as chat_services
    from chats.models import Message
    from conftest import make_user

    alice = make_user("alice")
    team = services.team_create(user=alice, name="Acme")
    bob, vera, charlie = (
        make_user("bob_teammate"),
        make_user("vera_viewer"),
        make_user("charlie_outsider"),
    )
    team.memberships.create(user=bob, role=Role.MEMBER)
    team.memberships.create(user=vera, role=Role.VIEWER)
    services.team_create(user=charlie, name="Outside")
    User.objects.create_user(
        username="newcomer", email="newcomer@example.com", password="x-long-password-1"
    )
    token, _ = services.token_create(user=alice, name="alice's token", scope="write")
    invitation = services.invitation_create(
        actor=alice, team=team, identifier="newcomer", role="member"
    )
    charlie_invitation = services.invitation_create(
        actor=alice, team=team, identifier="charlie_outsider", role="viewer"
    )
    team_credential = provider_services.credential_create(
        actor=alice, preset="echo", name="Acme echo", owner_team=team
    )
    alice_credential = provider_services.credential_create(
        actor=alice, preset="echo", name="alice echo"
    )
    from providers.models import ProviderModel

    for credential in (team_credential, alice_credential):  # listed, as a connection test would
        ProviderModel.objects.create(credential=credential, model_id="echo", kind="chat")
    from providers.models import ModelAlias

    team_alias = ModelAlias.objects.create(
        owner_team=team, name="team-echo", credential=team_credential, model_id="echo"
    )
    alice_alias = ModelAlias.objects.create(
        owner_user=alice, name="alice-fast", credential=alice_credential, model_id="echo"
    )
    conversation = chat_services.conversation_start(
        actor=alice, owner_team=team, credential=team_credential, model="echo"
    )
    question = Message.objects.create(
        conversation=conversation, role="user", content="hello", author=alice
    )
    answer = Message.objects.create(
        conversation=conversation, parent=question, role="assistant", content="hi", model="echo"
    )
    elsewhere = chat_services.conversation_start(
        actor=alice, credential=alice_credential, model="echo"
    )
    foreign = Message.objects.create(
        conversation=elsewhere, role="user", content="private", author=alice
    )
    from chats import organisation, sharing

    alice_folder = organisation.folder_create(actor=alice, name="Alice's folder")
    revoked_link = sharing.share_link_create(actor=alice, conversation=elsewhere)
    sharing.share_link_revoke(actor=alice, conversation=elsewhere)
    share_link = sharing.share_link_create(actor=alice, conversation=conversation)
    from providers.models import EgressAllowEntry

    egress_entry = EgressAllowEntry.objects.create(host_port="gpu.lan:8000")
    world = {
        "alice": alice,
        "bob_teammate": bob,
        "vera_viewer": vera,
        "charlie_outsider": charlie,
        "team": team,
        "bob_membership": team.memberships.get(user=bob),
        "alice_token": token,
        "invitation": invitation,
        "charlie_invitation": charlie_invitation,
        "team_credential": team_credential,
        "alice_credential": alice_credential,
        "conversation": conversation,
        "question": question,
        "answer": answer,
        "foreign_message": foreign,
        "alice_folder": alice_folder,
        "share_link": share_link,
        "revoked_link": revoked_link,
        "egress_entry": egress_entry,
        "team_alias": team_alias,
        "alice_alias": alice_alias,
        **_billing_world(alice, team),
    }
    world.update(rag_world(world))
    from chats.models import ConversationCollection

    ConversationCollection.objects.create(
        conversation=conversation, collection=world["rag_collection"]
    )
    from chats import attachments
    from rag.tests.documents import png

    sent_image = attachments.attachment_add(
        actor=alice, conversation=conversation, filename="sent.png", data=png(4, 4)
    )
    sent_image.message = question
    sent_image.save(update_fields=["message"])
    world["sent_image"] = sent_image
    world["pending_image"] = attachments.attachment_add(
        actor=alice, conversation=conversation, filename="pending.png", data=png(5, 5)
    )
    world["foreign_image"] = attachments.attachment_add(
        actor=alice, conversation=elsewhere, filename="elsewhere.png", data=png(6, 6)
    )
    world["pg"] = playground.build_playground(world)
    return World(world, lazy=[(PROMPT_WORLD_KEYS, prompts_world)])


def _billing_world(alice, team) -> dict:
    from decimal import Decimal

    from billing import services as billing_services
    from billing.notifications import notification_create

    return {
        "team_budget": billing_services.budget_create(
            actor=alice, owner_team=team, name="Acme monthly", limit=Decimal("10")
        ),
        "alice_budget": billing_services.budget_create(
            actor=alice, name="alice's", limit=Decimal("5")
        ),
        "alice_notification": notification_create(user=alice, kind="budget", title="Hello"),
    }


@pytest.fixture
def world(db):
    return build_world()


def _request(client, case: Case, world):
    url = reverse(case.name, kwargs=case.kwargs(world))
    if case.query:
        from urllib.parse import urlencode

        url += "?" + urlencode(case.query(world))
    data = case.data(world) if case.data else None
    method = getattr(client, case.method.lower())
    if case.method == "GET":
        return method(url, data=data or {})
    if case.api or case.method in {"PATCH", "DELETE"}:
        return method(url, data=json.dumps(data or {}), content_type="application/json")
    return method(url, data=data or {})


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
@pytest.mark.parametrize("persona", PERSONAS)
def test_each_persona_gets_the_expected_status(case, persona, world, client_for):
    if case.token:
        from tests.api_client import bearer

        headers = {}
        if persona != "anonymous":
            raw = services.token_create(user=world[persona], name="m", scope="write")[1]
            headers = bearer(raw)
        client = Client(headers=headers)
        case = dataclasses.replace(case, api=True)
    else:
        client = client_for(None if persona == "anonymous" else world[persona])
    response = _request(client, case, world)
    assert response.status_code == case.expect[persona], (
        f"{persona} {case.method} {case.name}: {response.status_code}, expected {case.expect[persona]}"
    )


def test_every_route_has_a_case():
    missing = uncovered_routes(iter_routes(get_resolver().url_patterns), ALL_CASES)
    assert not missing, "Routes without an access-matrix case: " + ", ".join(
        r.name for r in missing
    )


def test_every_id_taking_route_states_the_tenant_boundary():
    id_routes = {r.name for r in iter_routes(get_resolver().url_patterns) if r.takes_id}
    for case in ALL_CASES:
        if case.name in id_routes and "charlie_outsider" not in case.inside:
            assert case.expect["charlie_outsider"] in {404, 200}, case.id


def test_the_matrix_notices_an_id_taking_route_without_a_case():
    """A test of the test: add a route that takes an id and has no case."""

    def view(request, pk):  # pragma: no cover - never called
        raise AssertionError

    patterns = [*get_resolver().url_patterns, path("secret/<int:pk>/", view, name="secret_detail")]
    missing = uncovered_routes(iter_routes(patterns), ALL_CASES)
    assert [r.name for r in missing] == ["secret_detail"]
    assert missing[0].takes_id


def test_every_websocket_route_has_a_case():
    assert not uncovered_sockets(websocket_urlpatterns, SOCKET_CASES)


def test_the_matrix_notices_a_websocket_route_without_a_case():
    from workbench.consumers import PingConsumer

    patterns = [*websocket_urlpatterns, path("ws/things/<int:pk>/", PingConsumer.as_asgi())]
    assert uncovered_sockets(patterns, SOCKET_CASES) == ["ws/things/<int:pk>/"]


def test_every_id_bearing_field_has_a_case():
    found = id_bearing_fields(input_classes(our_modules()))
    covered = {case.key for case in FIELD_CASES}
    assert not set(found) - covered, (
        f"Id-bearing fields without a case: {sorted(set(found) - covered)}"
    )


def test_the_matrix_notices_an_id_bearing_field_without_a_case():
    from django import forms

    from accounts.models import Team

    class SneakyForm(forms.Form):
        team = forms.ModelChoiceField(queryset=Team.objects.all())

    assert id_bearing_fields([SneakyForm]) == [f"{__name__}.{SneakyForm.__qualname__}.team"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case", SOCKET_CASES, ids=lambda c: c.route)
@pytest.mark.parametrize("persona", PERSONAS)
async def test_each_persona_gets_the_expected_websocket_answer(case, persona):
    from asgiref.sync import sync_to_async

    world = await sync_to_async(build_world)()
    user = None if persona == "anonymous" else world[persona]
    async with connect(case.path(world), user=user) as (_, connected):
        assert connected is case.expect[persona]


def test_every_websocket_id_field_has_a_case():
    covered = {(case.route, case.field) for case in SOCKET_FIELD_CASES}
    missing = set(socket_id_fields(websocket_urlpatterns)) - covered
    assert not missing, f"Websocket id fields without a case: {sorted(missing)}"


def test_the_matrix_notices_a_websocket_id_field_without_a_case():
    from channels.generic.websocket import AsyncJsonWebsocketConsumer

    class Sneaky(AsyncJsonWebsocketConsumer):
        ID_FIELDS = {"peek": ("conversation_id",)}

    patterns = [path("ws/sneaky/", Sneaky.as_asgi())]
    assert socket_id_fields(patterns) == [("ws/sneaky/", "peek.conversation_id")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case", SOCKET_FIELD_CASES, ids=lambda c: c.field)
async def test_a_foreign_id_in_a_websocket_message_is_refused(case):
    from asgiref.sync import sync_to_async

    world = await sync_to_async(build_world)()
    socket_path = next(c.path for c in SOCKET_CASES if c.route == case.route)(world)
    for persona, code in case.expect.items():
        async with connect(socket_path, user=world[persona]) as (
            ws,
            connected,
        ):
            assert connected
            await ws.receive_json_from(timeout=3)  # hello
            await ws.send_json_to(case.message(world))
            frame = await ws.receive_json_from(timeout=3)
            assert frame["type"] == "error" and frame["code"] == code, (persona, case.field, frame)
