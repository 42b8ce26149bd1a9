"""Behaviour of the accounts services and the access rules (accounts.services, accounts.access)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import access, services
from accounts.access import Action
from accounts.models import ApiToken, Membership, Role, Team, User
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


# --- Adding members ------------------------------------------------------------------------------


def test_a_member_can_be_added_by_username(team, alice, newcomer):
    membership = services.membership_add(
        actor=alice, team=team, identifier="newcomer", role=Role.VIEWER
    )

    assert membership.user == newcomer
    assert role_of(team, newcomer) == Role.VIEWER


def test_a_member_can_be_added_by_email_whatever_its_case(team, alice, newcomer):
    membership = services.membership_add(
        actor=alice, team=team, identifier="  NewComer@EXAMPLE.com ", role=Role.MEMBER
    )

    assert membership.user == newcomer
    assert role_of(team, newcomer) == Role.MEMBER


def test_adding_someone_who_is_already_a_member_says_so(team, alice, bob_teammate):
    with pytest.raises(ValidationError) as excinfo:
        services.membership_add(actor=alice, team=team, identifier="bob_teammate", role=Role.ADMIN)

    assert excinfo.value.message_dict["user"] == ["bob_teammate is already a member of Acme."]
    assert role_of(team, bob_teammate) == Role.MEMBER


def test_adding_by_email_adds_the_owner_of_that_email_not_a_lookalike_username(team, alice):
    """Usernames may contain "@" and ".", so someone can sign up as "carol@example.com" before
    Carol does. Adding "carol@example.com" must add Carol, never the impostor."""
    impostor = User.objects.create_user(username="carol@example.com", password=PASSWORD)
    carol = User.objects.create_user(username="carol", email="carol@example.com", password=PASSWORD)

    membership = services.membership_add(
        actor=alice, team=team, identifier="carol@example.com", role=Role.MEMBER
    )

    assert membership.user == carol
    assert role_of(team, impostor) is None


def test_an_email_that_nobody_owns_never_matches_a_lookalike_username(team, alice):
    User.objects.create_user(username="dave@example.com", password=PASSWORD)

    with pytest.raises(ValidationError) as excinfo:
        services.membership_add(
            actor=alice, team=team, identifier="dave@example.com", role=Role.MEMBER
        )

    assert "No user" in excinfo.value.message_dict["user"][0]
    assert team.memberships.count() == 1


def test_adding_an_unknown_user_names_what_was_typed(team, alice):
    with pytest.raises(ValidationError) as excinfo:
        services.membership_add(
            actor=alice, team=team, identifier="nobody@example.com", role=Role.MEMBER
        )

    [message] = excinfo.value.message_dict["user"]
    assert "No user" in message
    assert "nobody@example.com" in message
    assert team.memberships.count() == 1


def test_adding_with_an_empty_identifier_asks_for_one(team, alice):
    with pytest.raises(ValidationError) as excinfo:
        services.membership_add(actor=alice, team=team, identifier="  ", role=Role.MEMBER)

    assert "username or an email" in excinfo.value.message_dict["user"][0]


def test_an_inactive_user_cannot_be_added(team, alice, newcomer):
    newcomer.is_active = False
    newcomer.save()

    with pytest.raises(ValidationError):
        services.membership_add(actor=alice, team=team, identifier="newcomer", role=Role.MEMBER)


def test_an_unknown_role_is_refused(team, alice, newcomer):
    with pytest.raises(ValidationError) as excinfo:
        services.membership_add(actor=alice, team=team, identifier="newcomer", role="superhero")

    assert "role" in excinfo.value.message_dict
    assert role_of(team, newcomer) is None


def test_a_member_or_viewer_cannot_add_members(team, bob_teammate, vera_viewer, newcomer):
    for actor in (bob_teammate, vera_viewer):
        with pytest.raises(PermissionDenied):
            services.membership_add(actor=actor, team=team, identifier="newcomer", role=Role.VIEWER)
    assert role_of(team, newcomer) is None


def test_an_outsider_adding_members_gets_not_found(team, charlie_outsider, newcomer):
    with pytest.raises(Http404):
        services.membership_add(
            actor=charlie_outsider, team=team, identifier="newcomer", role=Role.MEMBER
        )


# --- Admins versus owners ------------------------------------------------------------------------


def test_an_admin_can_add_change_and_remove_ordinary_members(
    team, ada_admin, bob_teammate, newcomer
):
    services.membership_add(actor=ada_admin, team=team, identifier="newcomer", role=Role.ADMIN)
    bob = team.memberships.get(user=bob_teammate)
    services.membership_change_role(actor=ada_admin, membership=bob, role=Role.VIEWER)
    assert role_of(team, bob_teammate) == Role.VIEWER

    services.membership_remove(actor=ada_admin, membership=bob)

    assert role_of(team, bob_teammate) is None
    assert role_of(team, newcomer) == Role.ADMIN


def test_an_admin_cannot_add_an_owner(team, ada_admin, newcomer):
    with pytest.raises(PermissionDenied):
        services.membership_add(actor=ada_admin, team=team, identifier="newcomer", role=Role.OWNER)
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
