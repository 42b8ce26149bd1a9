"""Gateway aliases over REST: who may make which, and what each user sees."""

from __future__ import annotations

from providers.models import ModelAlias, ProviderCredential
from tests.api_client import assert_error


def _credential(owner, name: str) -> ProviderCredential:
    credential = ProviderCredential(name=name, preset="echo", is_local=True)
    credential.set_owner(owner)
    credential.save()
    return credential


def test_a_personal_alias_is_made_listed_and_deleted(alice, api_for):
    credential = _credential(alice, "Mine")
    api = api_for(alice)
    made = api.post("/api/aliases/", {"name": "fast", "credential": credential.pk, "model": "echo"})
    assert made.status_code == 201, made.content
    body = made.json()
    assert (body["name"], body["credential_slug"], body["model"]) == ("fast", "mine", "echo")
    assert body["owner"]["type"] == "user"
    assert [a["name"] for a in api.get("/api/aliases/").json()["results"]] == ["fast"]
    assert api.delete(f"/api/aliases/{body['id']}/").status_code == 204
    assert not ModelAlias.objects.exists()


def test_a_team_alias_must_use_the_teams_own_credential(alice, team, api_for):
    personal = _credential(alice, "Mine")
    teams = _credential(team, "Acme key")
    api = api_for(alice)
    refused = api.post(
        "/api/aliases/",
        {"name": "fast", "credential": personal.pk, "model": "m", "owner_team": team.pk},
    )
    assert_error(refused, 400, "invalid")
    made = api.post(
        "/api/aliases/",
        {"name": "fast", "credential": teams.pk, "model": "m", "owner_team": team.pk},
    )
    assert made.status_code == 201 and made.json()["owner"]["team_id"] == team.pk


def test_alias_names_are_checked_and_unique_per_owner(alice, api_for):
    credential = _credential(alice, "Mine")
    api = api_for(alice)
    for name in ("has/slash", "", "x" * 101, " spaced name"):
        answer = api.post(
            "/api/aliases/", {"name": name, "credential": credential.pk, "model": "m"}
        )
        assert answer.status_code == 400, name
    assert (
        api.post(
            "/api/aliases/", {"name": "a", "credential": credential.pk, "model": "m"}
        ).status_code
        == 201
    )
    assert_error(
        api.post("/api/aliases/", {"name": "a", "credential": credential.pk, "model": "m"}),
        400,
        "invalid",
    )


def test_each_user_lists_their_own_and_their_teams_aliases_only(
    alice, team, bob_teammate, charlie_outsider, api_for
):
    teams = _credential(team, "Acme key")
    mine = _credential(alice, "Mine")
    ModelAlias.objects.create(owner_team=team, name="team-fast", credential=teams, model_id="m")
    ModelAlias.objects.create(owner_user=alice, name="alice-only", credential=mine, model_id="m")

    def names(user):
        return {a["name"] for a in api_for(user).get("/api/aliases/").json()["results"]}

    assert names(alice) == {"team-fast", "alice-only"}
    assert names(bob_teammate) == {"team-fast"}
    assert names(charlie_outsider) == set()
