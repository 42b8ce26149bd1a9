"""Behaviour of the accounts services and the access rules (accounts.services, accounts.access)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import access, selectors, services, throttles
from accounts.access import Action
from accounts.models import ApiToken, Invitation, InvitationStatus, Membership, Role, Team, User
from conftest import PASSWORD, make_user


def role_of(team: Team, user: User) -> str | None:
    return Membership.objects.filter(team=team, user=user).values_list("role", flat=True).first()


@pytest.fixture
def newcomer(db) -> User:
    return make_user("newcomer")


@pytest.fixture
def ada_admin(team) -> User:
    user = make_user("ada_admin")
    team.memberships.create(user=user, role=Role.ADMIN)
    return user


# --- Teams ---------------------------------------------------------------------------------------


def test_creating_a_team_makes_the_creator_its_only_owner(alice):
    team = services.team_create(user=alice, name="  Research  ")

    assert team.name == "Research"
    assert team.created_by == alice
    assert list(team.memberships.values_list("user__username", "role")) == [("alice", Role.OWNER)]


def test_a_team_without_a_name_is_refused_and_nothing_is_created(alice):
    with pytest.raises(ValidationError) as excinfo:
        services.team_create(user=alice, name="   ")

    assert "name" in excinfo.value.message_dict
    assert not Team.objects.exists()


def test_an_admin_can_rename_the_team_but_a_member_cannot(team, ada_admin, bob_teammate):
    services.team_rename(actor=ada_admin, team=team, name="Acme Labs")
    with pytest.raises(PermissionDenied):
        services.team_rename(actor=bob_teammate, team=team, name="Bob's team")

    team.refresh_from_db()
    assert team.name == "Acme Labs"


def test_only_an_owner_can_delete_the_team(team, alice, ada_admin, bob_teammate, vera_viewer):
    for actor in (ada_admin, bob_teammate, vera_viewer):
        with pytest.raises(PermissionDenied):
            services.team_delete(actor=actor, team=team)
    assert Team.objects.filter(pk=team.pk).exists()

    services.team_delete(actor=alice, team=team)

    assert not Team.objects.filter(pk=team.pk).exists()
    assert not Membership.objects.filter(team_id=team.pk).exists()


def test_an_outsider_deleting_the_team_gets_not_found(team, charlie_outsider):
    with pytest.raises(Http404):
        services.team_delete(actor=charlie_outsider, team=team)
    assert Team.objects.filter(pk=team.pk).exists()


# --- Invitations -------------------------------------------------------------------------------


def invite(actor, team, identifier, role=Role.MEMBER):
    return services.invitation_create(actor=actor, team=team, identifier=identifier, role=role)


def test_an_invitation_adds_nobody_until_the_invitee_accepts(team, alice, newcomer):
    invitation = invite(alice, team, "newcomer", Role.VIEWER)

    assert role_of(team, newcomer) is None
    assert list(selectors.invitations_for_invitee(user=newcomer)) == [invitation]

    membership = services.invitation_accept(user=newcomer, invitation=invitation)

    assert membership.user == newcomer
    assert role_of(team, newcomer) == Role.VIEWER
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.ACCEPTED
    assert list(selectors.invitations_for_invitee(user=newcomer)) == []
    assert list(selectors.invitations_for_team(user=alice, team=team)) == []


def test_someone_can_be_invited_by_email_whatever_its_case(team, alice, newcomer):
    invitation = invite(alice, team, "  NewComer@EXAMPLE.com ")

    assert invitation.invitee == newcomer
    assert invitation.identifier == "NewComer@EXAMPLE.com"


def test_a_declined_invitation_adds_nobody_and_still_looks_pending_to_the_team(
    team, alice, newcomer
):
    invitation = invite(alice, team, "newcomer")

    services.invitation_decline(user=newcomer, invitation=invitation)

    assert role_of(team, newcomer) is None
    assert list(selectors.invitations_for_invitee(user=newcomer)) == []
    assert list(selectors.invitations_for_team(user=alice, team=team)) == [invitation]
    # Inviting again doesn't bring it back to the invitee before it expires.
    again = invite(alice, team, "newcomer")
    assert again.pk == invitation.pk
    assert list(selectors.invitations_for_invitee(user=newcomer)) == []
    with pytest.raises(ValidationError, match="no longer open"):
        services.invitation_accept(user=newcomer, invitation=invitation)


def test_inviting_nobody_looks_exactly_like_inviting_someone(team, alice, newcomer):
    """The inviter can't tell whether an account exists: same answer, same list, same fields."""
    real = invite(alice, team, "newcomer")
    ghost = invite(alice, team, "nobody-by-that-name")
    ghost_mail = invite(alice, team, "nobody@example.com")

    listed = list(selectors.invitations_for_team(user=alice, team=team))
    assert set(listed) == {real, ghost, ghost_mail}
    for invitation in listed:
        assert invitation.status == InvitationStatus.PENDING
        assert invitation.expires_at == invitation.created_at + services.INVITATION_LIFETIME
    assert ghost.invitee is None and ghost_mail.invitee is None


def test_an_invitation_to_nobody_can_never_be_taken_by_a_later_sign_up(team, alice):
    invitation = invite(alice, team, "latecomer")
    latecomer = make_user("latecomer")

    assert list(selectors.invitations_for_invitee(user=latecomer)) == []
    with pytest.raises(Http404):
        services.invitation_accept(user=latecomer, invitation=invitation)


def test_an_invitation_by_email_names_the_owner_of_that_email_not_a_lookalike_username(team, alice):
    """Usernames may contain "." and once could contain "@": inviting "carol@example.com" must
    reach Carol, never someone called that."""
    impostor = User.objects.create_user(username="carol@example.com", password=PASSWORD)
    carol = User.objects.create_user(username="carol", email="carol@example.com", password=PASSWORD)

    invitation = invite(alice, team, "carol@example.com")

    assert invitation.invitee == carol
    assert list(selectors.invitations_for_invitee(user=impostor)) == []


def test_inviting_a_member_says_so(team, alice, bob_teammate):
    for identifier in ("bob_teammate", "BOB_TEAMMATE@example.com"):
        with pytest.raises(ValidationError) as excinfo:
            invite(alice, team, identifier, Role.ADMIN)
        assert excinfo.value.message_dict["user"] == [
            f"“{identifier}” is already a member of Acme."
        ]
    assert role_of(team, bob_teammate) == Role.MEMBER


def test_inviting_with_an_empty_identifier_asks_for_one(team, alice):
    with pytest.raises(ValidationError) as excinfo:
        invite(alice, team, "  ")

    assert "username or an email" in excinfo.value.message_dict["user"][0]


def test_an_inactive_user_gets_no_invitation(team, alice, newcomer):
    newcomer.is_active = False
    newcomer.save()

    invitation = invite(alice, team, "newcomer")

    assert invitation.invitee is None


def test_an_unknown_role_is_refused(team, alice, newcomer):
    with pytest.raises(ValidationError) as excinfo:
        invite(alice, team, "newcomer", "superhero")

    assert "role" in excinfo.value.message_dict
    assert not Invitation.objects.exists()


def test_a_member_or_viewer_cannot_invite(team, bob_teammate, vera_viewer, newcomer):
    for actor in (bob_teammate, vera_viewer):
        with pytest.raises(PermissionDenied):
            invite(actor, team, "newcomer", Role.VIEWER)
    assert not Invitation.objects.exists()


def test_an_outsider_inviting_gets_not_found(team, charlie_outsider, newcomer):
    with pytest.raises(Http404):
        invite(charlie_outsider, team, "newcomer")


def test_inviting_the_same_person_again_refreshes_the_one_invitation(team, alice, newcomer):
    first = invite(alice, team, "newcomer", Role.VIEWER)
    Invitation.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(days=3))

    again = invite(alice, team, "NEWCOMER", Role.MEMBER)

    assert again.pk == first.pk
    assert again.role == Role.MEMBER
    assert Invitation.objects.count() == 1


def test_an_expired_invitation_cannot_be_accepted_and_leaves_the_lists(team, alice, newcomer):
    invitation = invite(alice, team, "newcomer")
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now())

    with pytest.raises(ValidationError, match="no longer open"):
        services.invitation_accept(user=newcomer, invitation=invitation)
    assert role_of(team, newcomer) is None
    assert list(selectors.invitations_for_invitee(user=newcomer)) == []
    assert list(selectors.invitations_for_team(user=alice, team=team)) == []
    # ...and inviting again opens it afresh.
    assert invite(alice, team, "newcomer").pk == invitation.pk
    assert list(selectors.invitations_for_invitee(user=newcomer)) == [invitation]


def test_a_withdrawn_invitation_cannot_be_accepted(team, alice, newcomer):
    invitation = invite(alice, team, "newcomer")

    services.invitation_revoke(actor=alice, invitation=invitation)

    with pytest.raises(ValidationError, match="no longer open"):
        services.invitation_accept(user=newcomer, invitation=invitation)
    assert role_of(team, newcomer) is None


def test_only_the_invitee_can_answer(team, alice, bob_teammate, charlie_outsider, newcomer):
    invitation = invite(alice, team, "newcomer")
    for someone in (alice, bob_teammate, charlie_outsider):
        with pytest.raises(Http404):
            services.invitation_accept(user=someone, invitation=invitation)
        with pytest.raises(Http404):
            services.invitation_decline(user=someone, invitation=invitation)
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.PENDING


def test_accepting_answers_every_open_invitation_to_that_team(team, alice, newcomer):
    by_name = invite(alice, team, "newcomer", Role.VIEWER)
    by_email = invite(alice, team, "newcomer@example.com", Role.MEMBER)

    services.invitation_accept(user=newcomer, invitation=by_email)

    assert role_of(team, newcomer) == Role.MEMBER
    by_name.refresh_from_db()
    assert by_name.status == InvitationStatus.ACCEPTED


def test_a_team_has_a_bounded_number_of_open_invitations(team, alice, monkeypatch):
    monkeypatch.setattr(services, "OPEN_INVITATIONS_PER_TEAM", 3)
    for n in range(3):
        invite(alice, team, f"person{n}")

    with pytest.raises(ValidationError, match="already has 3 open invitations"):
        invite(alice, team, "person3")
    invite(alice, team, "person1")  # refreshing one that is open is fine


def test_one_person_can_send_only_so_many_invitations_an_hour(alice, monkeypatch):
    monkeypatch.setattr(
        services, "INVITATIONS_SENT", throttles.Limit("invitations-sent", limit=2, window=3600)
    )
    teams = [services.team_create(user=alice, name=f"T{n}") for n in range(3)]
    invite(alice, teams[0], "x")
    invite(alice, teams[1], "x")

    with pytest.raises(ValidationError, match="try again in an hour"):
        invite(alice, teams[2], "x")


def test_the_invitee_is_told_by_email_and_nobody_else_is(
    team, alice, newcomer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invite(alice, team, "newcomer")
        invite(alice, team, "nobody@example.com")

    [notice] = mail.outbox
    assert notice.to == ["newcomer@example.com"]
    assert "Acme" in notice.subject
    assert "http://127.0.0.1:8000/settings/invitations/" in notice.body


# --- Admins versus owners ------------------------------------------------------------------------


def test_an_admin_can_invite_change_and_remove_ordinary_members(
    team, ada_admin, bob_teammate, newcomer
):
    invitation = invite(ada_admin, team, "newcomer", Role.ADMIN)
    services.invitation_accept(user=newcomer, invitation=invitation)
    bob = team.memberships.get(user=bob_teammate)
    services.membership_change_role(actor=ada_admin, membership=bob, role=Role.VIEWER)
    assert role_of(team, bob_teammate) == Role.VIEWER

    services.membership_remove(actor=ada_admin, membership=bob)

    assert role_of(team, bob_teammate) is None
    assert role_of(team, newcomer) == Role.ADMIN


def test_an_admin_cannot_invite_an_owner_nor_withdraw_an_owners_invitation(
    team, alice, ada_admin, newcomer
):
    with pytest.raises(PermissionDenied):
        invite(ada_admin, team, "newcomer", Role.OWNER)
    owner_invitation = invite(alice, team, "newcomer", Role.OWNER)
    with pytest.raises(PermissionDenied):
        services.invitation_revoke(actor=ada_admin, invitation=owner_invitation)
    assert role_of(team, newcomer) is None


def test_an_admin_cannot_promote_anyone_to_owner_including_themselves(
    team, ada_admin, bob_teammate
):
    for user in (bob_teammate, ada_admin):
        membership = team.memberships.get(user=user)
        with pytest.raises(PermissionDenied):
            services.membership_change_role(actor=ada_admin, membership=membership, role=Role.OWNER)
    assert role_of(team, bob_teammate) == Role.MEMBER
    assert role_of(team, ada_admin) == Role.ADMIN


def test_an_admin_cannot_demote_or_remove_an_owner(team, alice, ada_admin):
    owner = team.memberships.get(user=alice)
    with pytest.raises(PermissionDenied):
        services.membership_change_role(actor=ada_admin, membership=owner, role=Role.VIEWER)
    with pytest.raises(PermissionDenied):
        services.membership_remove(actor=ada_admin, membership=owner)

    assert role_of(team, alice) == Role.OWNER


def test_an_owner_can_make_another_owner(team, alice, bob_teammate):
    bob = team.memberships.get(user=bob_teammate)
    services.membership_change_role(actor=alice, membership=bob, role=Role.OWNER)
    assert role_of(team, bob_teammate) == Role.OWNER


def test_a_member_cannot_change_roles(team, bob_teammate, vera_viewer):
    vera = team.memberships.get(user=vera_viewer)
    with pytest.raises(PermissionDenied):
        services.membership_change_role(actor=bob_teammate, membership=vera, role=Role.MEMBER)
    assert role_of(team, vera_viewer) == Role.VIEWER


def test_a_member_cannot_remove_someone_else(team, bob_teammate, vera_viewer):
    vera = team.memberships.get(user=vera_viewer)
    with pytest.raises(PermissionDenied):
        services.membership_remove(actor=bob_teammate, membership=vera)
    assert role_of(team, vera_viewer) == Role.VIEWER


# --- The last owner ------------------------------------------------------------------------------


def test_the_last_owner_cannot_be_demoted(team, alice):
    owner = team.memberships.get(user=alice)
    with pytest.raises(ValidationError) as excinfo:
        services.membership_change_role(actor=alice, membership=owner, role=Role.ADMIN)

    assert "at least one owner" in excinfo.value.message_dict["role"][0]
    assert role_of(team, alice) == Role.OWNER


def test_the_last_owner_cannot_leave(team, alice):
    with pytest.raises(ValidationError) as excinfo:
        services.membership_remove(actor=alice, membership=team.memberships.get(user=alice))

    assert "last owner" in excinfo.value.messages[0]
    assert role_of(team, alice) == Role.OWNER


def test_an_owner_can_step_down_once_another_owner_exists(team, alice, bob_teammate):
    services.membership_change_role(
        actor=alice, membership=team.memberships.get(user=bob_teammate), role=Role.OWNER
    )

    services.membership_change_role(
        actor=alice, membership=team.memberships.get(user=alice), role=Role.MEMBER
    )

    assert role_of(team, alice) == Role.MEMBER
    assert role_of(team, bob_teammate) == Role.OWNER


def test_an_owner_can_leave_once_another_owner_exists(team, alice, bob_teammate):
    services.membership_change_role(
        actor=alice, membership=team.memberships.get(user=bob_teammate), role=Role.OWNER
    )

    services.membership_remove(actor=alice, membership=team.memberships.get(user=alice))

    assert role_of(team, alice) is None
    assert list(
        team.memberships.filter(role=Role.OWNER).values_list("user__username", flat=True)
    ) == ["bob_teammate"]


def test_an_owner_can_remove_a_fellow_owner_but_not_leave_the_team_ownerless(
    team, alice, bob_teammate
):
    bob = team.memberships.get(user=bob_teammate)
    services.membership_change_role(actor=alice, membership=bob, role=Role.OWNER)
    services.membership_remove(actor=alice, membership=bob)

    with pytest.raises(ValidationError):
        services.membership_remove(actor=alice, membership=team.memberships.get(user=alice))
    assert role_of(team, alice) == Role.OWNER


@pytest.mark.parametrize("persona", ["bob_teammate", "vera_viewer"])
def test_members_and_viewers_can_leave_by_themselves(persona, team, request):
    user = request.getfixturevalue(persona)

    services.membership_remove(actor=user, membership=team.memberships.get(user=user))

    assert role_of(team, user) is None
    assert Team.objects.filter(pk=team.pk).exists()


# --- API tokens ----------------------------------------------------------------------------------


def test_a_token_is_stored_only_as_its_sha256_digest(alice):
    token, raw = services.token_create(user=alice, name="CI", scope="write")

    assert raw.startswith("wb_")
    assert len(raw) > 40
    assert token.digest == hashlib.sha256(raw.encode()).hexdigest()
    # Every column of the stored row, whatever columns exist now or later.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT row_to_json(t)::text FROM accounts_apitoken t WHERE id = %s", [token.pk]
        )
        [(row,)] = cursor.fetchall()
    assert raw not in row
    assert raw[len(token.prefix) :] not in row


def test_a_token_shows_its_prefix_so_people_can_tell_tokens_apart(alice):
    token, raw = services.token_create(user=alice, name="CI")

    assert token.prefix == raw[: len("wb_") + 6]
    assert token.prefix in str(token)
    assert raw not in str(token)


def test_two_tokens_never_share_plaintext_or_digest(alice):
    (first, raw1), (second, raw2) = (services.token_create(user=alice, name=n) for n in ("a", "b"))
    assert raw1 != raw2
    assert first.digest != second.digest


def test_a_token_defaults_to_read_only(alice):
    token, _ = services.token_create(user=alice, name="CI")
    assert token.scope == "read"


@pytest.mark.parametrize("expires_in", [timedelta(seconds=-1), timedelta(days=-30), timedelta(0)])
def test_a_token_cannot_expire_in_the_past(alice, expires_in):
    with pytest.raises(ValidationError) as excinfo:
        services.token_create(user=alice, name="CI", expires_at=timezone.now() + expires_in)

    assert "future" in excinfo.value.message_dict["expires_at"][0]
    assert not ApiToken.objects.exists()


def test_a_token_may_expire_in_the_future(alice):
    expires_at = timezone.now() + timedelta(days=7)
    token, _ = services.token_create(user=alice, name="CI", expires_at=expires_at)
    assert token.expires_at == expires_at
    assert token.status == "active"


@pytest.mark.parametrize(
    ("kwargs", "field"), [({"name": "  "}, "name"), ({"name": "CI", "scope": "admin"}, "scope")]
)
def test_a_token_needs_a_name_and_a_known_scope(alice, kwargs, field):
    with pytest.raises(ValidationError) as excinfo:
        services.token_create(user=alice, **kwargs)
    assert field in excinfo.value.message_dict


def test_a_valid_token_authenticates_as_its_user(alice, token_for):
    raw = token_for(alice, scope="write")

    token = services.token_authenticate(raw=raw)

    assert token is not None
    assert token.user == alice
    assert token.scope == "write"


def test_a_revoked_token_no_longer_authenticates(alice):
    token, raw = services.token_create(user=alice, name="CI")
    services.token_revoke(user=alice, token=token)

    assert services.token_authenticate(raw=raw) is None
    token.refresh_from_db()
    assert token.status == "revoked"


def test_revoking_someone_elses_token_is_not_found(alice, charlie_outsider):
    token, raw = services.token_create(user=alice, name="CI")
    with pytest.raises(Http404):
        services.token_revoke(user=charlie_outsider, token=token)
    assert services.token_authenticate(raw=raw) is not None


def test_an_expired_token_no_longer_authenticates(alice):
    token, raw = services.token_create(
        user=alice, name="CI", expires_at=timezone.now() + timedelta(hours=1)
    )
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert services.token_authenticate(raw=raw) is None
    token.refresh_from_db()
    assert token.status == "expired"


def test_the_token_of_a_deactivated_user_no_longer_authenticates(alice, token_for):
    raw = token_for(alice)
    alice.is_active = False
    alice.save()

    assert services.token_authenticate(raw=raw) is None


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "wb_",
        "wb_not-a-real-token",
        "not-even-our-prefix",
        "Bearer wb_x",
        "wb_" + "A" * 43,
        "\x00",
    ],
)
def test_garbage_never_authenticates(alice, token_for, garbage):
    token_for(alice)
    assert services.token_authenticate(raw=garbage) is None


def test_a_token_with_one_character_changed_does_not_authenticate(alice, token_for):
    raw = token_for(alice)
    tampered = raw[:-1] + ("A" if raw[-1] != "A" else "B")
    assert services.token_authenticate(raw=tampered) is None


def test_last_used_is_recorded_at_most_once_a_minute(alice):
    token, raw = services.token_create(user=alice, name="CI")
    assert token.last_used_at is None

    services.token_authenticate(raw=raw)
    token.refresh_from_db()
    first_use = token.last_used_at
    assert first_use is not None

    with CaptureQueriesContext(connection) as queries:
        services.token_authenticate(raw=raw)
    assert not [
        q for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")
    ]
    token.refresh_from_db()
    assert token.last_used_at == first_use

    a_while_ago = timezone.now() - timedelta(seconds=61)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=a_while_ago)
    services.tokens_forget()  # as after TOKEN_CACHE_SECONDS: the next check reads the row
    services.token_authenticate(raw=raw)
    token.refresh_from_db()
    assert token.last_used_at > a_while_ago + timedelta(seconds=60)


# --- The first admin -----------------------------------------------------------------------------


def test_admin_ensure_creates_one_superuser_and_shows_its_password_only_once(db):
    user, password = services.admin_ensure()

    assert user.username == "admin"
    assert user.is_superuser
    assert user.is_staff
    assert password
    assert user.check_password(password)

    again, second_password = services.admin_ensure()

    assert again == user
    assert second_password is None
    assert User.objects.filter(is_superuser=True).count() == 1


def test_admin_ensure_leaves_an_existing_superuser_alone(db):
    existing = User.objects.create_superuser(username="root", email="", password="x")

    user, password = services.admin_ensure()

    assert (user, password) == (existing, None)
    assert not User.objects.filter(username="admin").exists()


def test_admin_ensure_never_promotes_a_user_who_took_the_name_admin(db):
    """Sign-up is open, so a regular user may already be called "admin" when the instance has
    no superuser; start-up must neither crash nor hand that user the keys."""
    squatter = make_user("admin")

    user, password = services.admin_ensure()

    assert user != squatter
    assert user.is_superuser
    assert password
    assert user.check_password(password)
    squatter.refresh_from_db()
    assert not squatter.is_superuser
    assert not squatter.is_staff


# --- The access rules, with a Team -------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "allowed"),
    [
        ("alice", set(Action)),
        ("bob_teammate", {Action.READ, Action.USE, Action.WRITE}),
        ("vera_viewer", {Action.READ}),
        ("charlie_outsider", set()),
    ],
)
def test_each_role_allows_exactly_its_actions(persona, allowed, team, request):
    user = request.getfixturevalue(persona)
    assert {action for action in Action if access.allows(user, team, action)} == allowed


def test_an_admin_may_do_everything_an_owner_may(team, ada_admin):
    assert all(access.allows(ada_admin, team, action) for action in Action)


def test_an_anonymous_user_may_do_nothing_and_sees_nothing(team):
    anonymous = AnonymousUser()
    assert not any(access.allows(anonymous, team, action) for action in Action)
    assert not access.scope(Team.objects.all(), anonymous).exists()
    with pytest.raises(Http404):
        access.get_for(anonymous, Team, team.pk)


def test_scope_shows_each_user_only_their_own_teams(everyone, team):
    outside = Team.objects.get(name="Outside")
    visible = {
        name: set(access.scope(Team.objects.all(), user).values_list("name", flat=True))
        for name, user in everyone.items()
    }
    assert visible == {
        "alice": {"Acme"},
        "bob_teammate": {"Acme"},
        "vera_viewer": {"Acme"},
        "charlie_outsider": {"Outside"},
    }
    assert outside.pk not in access.scope(Team.objects.all(), everyone["alice"]).values_list(
        "pk", flat=True
    )


def test_scope_by_action_keeps_only_teams_where_the_role_allows_it(
    team, alice, bob_teammate, vera_viewer
):
    manageable = lambda user: list(access.scope(Team.objects.all(), user, Action.MANAGE))  # noqa: E731
    writable = lambda user: list(access.scope(Team.objects.all(), user, Action.WRITE))  # noqa: E731

    assert manageable(alice) == [team]
    assert manageable(bob_teammate) == []
    assert writable(bob_teammate) == [team]
    assert writable(vera_viewer) == []


def test_get_for_returns_the_team_to_someone_allowed(team, alice, bob_teammate, vera_viewer):
    assert access.get_for(vera_viewer, Team, team.pk) == team
    assert access.get_for(bob_teammate, Team.objects.all(), team.pk, Action.WRITE) == team
    assert access.get_for(alice, Team, str(team.pk), Action.MANAGE) == team


def test_get_for_is_not_found_outside_the_tenant(team, charlie_outsider):
    for action in Action:
        with pytest.raises(Http404):
            access.get_for(charlie_outsider, Team, team.pk, action)


@pytest.mark.parametrize("pk", [0, 10**12, "abc", None, "1; DROP TABLE"])
def test_get_for_is_not_found_for_ids_that_do_not_exist(team, alice, pk):
    with pytest.raises(Http404):
        access.get_for(alice, Team, pk)


def test_get_for_is_forbidden_inside_the_tenant_without_the_action(team, bob_teammate, vera_viewer):
    with pytest.raises(PermissionDenied):
        access.get_for(vera_viewer, Team, team.pk, Action.WRITE)
    with pytest.raises(PermissionDenied):
        access.get_for(bob_teammate, Team, team.pk, Action.MANAGE)


def test_require_answers_not_found_outside_and_forbidden_inside(
    team, alice, vera_viewer, charlie_outsider
):
    assert access.require(alice, team, Action.MANAGE) is None
    assert access.require(vera_viewer, team, Action.READ) is None
    with pytest.raises(PermissionDenied) as excinfo:
        access.require(vera_viewer, team, Action.USE)
    assert "use" in str(excinfo.value)
    with pytest.raises(Http404):
        access.require(charlie_outsider, team, Action.READ)


def test_losing_membership_takes_access_away_at_once(team, alice, bob_teammate):
    services.membership_remove(actor=alice, membership=team.memberships.get(user=bob_teammate))

    assert not access.allows(bob_teammate, team, Action.READ)
    with pytest.raises(Http404):
        access.get_for(bob_teammate, Team, team.pk)


def test_a_recent_token_check_is_remembered_and_revoking_forgets_it_at_once(alice):
    token, raw = services.token_create(user=alice, name="CI")
    assert services.token_authenticate(raw=raw) is not None
    with CaptureQueriesContext(connection) as queries:
        assert services.token_authenticate(raw=raw).pk == token.pk
    assert not queries.captured_queries
    services.token_revoke(user=alice, token=token)
    assert services.token_cached(raw=raw) is None
    assert services.token_authenticate(raw=raw) is None


def test_disabling_a_user_forgets_their_cached_token_checks(alice, bob_teammate):
    from accounts import administration

    alice.is_superuser = True
    alice.save()
    _, raw = services.token_create(user=bob_teammate, name="CI")
    assert services.token_authenticate(raw=raw) is not None
    administration.user_disable(actor=alice, user=bob_teammate)
    assert services.token_authenticate(raw=raw) is None
