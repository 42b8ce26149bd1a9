"""Names (accounts.names): usernames are unique case- and look-alike-insensitively, NFKC-normalised,
one script at a time; bidi controls never reach a username, display name or team name."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import Client

from accounts import services
from accounts.models import Team, User
from conftest import PASSWORD

RLO = "\u202e"


def new_user(username: str) -> User:
    user = User(username=username, email=f"{abs(hash(username))}@example.com")
    user.set_password(PASSWORD)
    user.full_clean()
    user.save()
    return user


@pytest.mark.parametrize(
    "lookalike",
    [
        "Alice",
        "ALICE",
        "ａｌｉｃｅ",  # full-width
        "a1ice",  # digit one for l
        "aIice",  # capital I for l
    ],
)
def test_a_username_that_reads_like_an_existing_one_is_taken(alice, lookalike):
    with pytest.raises(ValidationError) as excinfo:
        new_user(lookalike)
    assert excinfo.value.message_dict["username"] == ["A user with that username already exists."]
    # ...and the database says so too, whatever path tries to save it.
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user(username=lookalike, password=PASSWORD)


@pytest.mark.parametrize("mixed", ["аlice", "pаypal", "bob\u0455"])  # Cyrillic а, а, ѕ
def test_a_username_mixing_scripts_is_refused(db, mixed):
    with pytest.raises(ValidationError) as excinfo:
        new_user(mixed)
    assert "one alphabet" in excinfo.value.message_dict["username"][0]


def test_a_whole_script_look_alike_of_a_latin_name_is_taken(db):
    new_user("ace")
    with pytest.raises(ValidationError):
        new_user("асе")  # all Cyrillic


@pytest.mark.parametrize("name", ["дмитрий", "山田たろう", "yamada_山田", "σοφία", "josé.garcía"])
def test_names_in_one_script_or_the_usual_cjk_mixes_are_welcome(db, name):
    assert new_user(name).username == name


def test_usernames_are_stored_nfkc_normalised_and_without_bidi_controls(db):
    user = User.objects.create_user(username=f"ｍａｘ{RLO}_2", password=PASSWORD)
    assert user.username == "max_2"


def test_signing_in_ignores_case_and_width(alice):
    for typed in ("alice", "ALICE", "Alice", "ａｌｉｃｅ"):
        assert Client().login(username=typed, password=PASSWORD), typed


def test_bidi_controls_are_stripped_from_display_and_team_names(alice, client_for):
    client_for(alice).post(
        "/settings/profile/", {"first_name": f"Al{RLO}ice", "last_name": f"\u2066Lid{RLO}dell"}
    )
    team = services.team_create(user=alice, name=f"Acme{RLO}gpj.exe")
    services.team_rename(actor=alice, team=team, name=f"\u202bR&D{RLO}")
    created = client_for(alice).post(
        "/api/teams/", f'{{"name": "Ops{RLO}"}}', content_type="application/json"
    )

    alice.refresh_from_db()
    assert (alice.first_name, alice.last_name) == ("Alice", "Liddell")
    assert Team.objects.get(pk=team.pk).name == "R&D"
    assert created.json()["name"] == "Ops"
