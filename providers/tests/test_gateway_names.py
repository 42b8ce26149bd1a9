"""Gateway model names: slugs, aliases, who sees what."""

from __future__ import annotations

import pytest

from accounts import services as account_services
from accounts.models import Role
from providers.gateway import names
from providers.models import ModelAlias, ProviderCredential


def _credential(owner, name: str) -> ProviderCredential:
    credential = ProviderCredential(name=name, preset="echo", is_local=True)
    credential.set_owner(owner)
    credential.save()
    return credential


def test_a_credential_gets_a_slug_unique_among_its_owners_credentials(alice, team):
    first, second = _credential(alice, "Work OpenAI"), _credential(alice, "Work OpenAI")
    teams = _credential(team, "Work OpenAI")
    assert (first.slug, second.slug, teams.slug) == ("work-openai", "work-openai-2", "work-openai")


def test_the_callers_own_credential_wins_over_a_teams_with_the_same_slug(alice, team):
    own, _ = _credential(alice, "Echo"), _credential(team, "Echo")
    resolved = names.model_resolve(user=alice, name="echo/org/model")
    assert (resolved.credential_id, resolved.model) == (own.pk, "org/model")


def test_the_same_slug_in_two_of_the_callers_teams_is_ambiguous(alice, team, bob_teammate):
    other = account_services.team_create(user=alice, name="Other")
    other.memberships.create(user=bob_teammate, role=Role.MEMBER)
    _credential(team, "Echo"), _credential(other, "Echo")
    with pytest.raises(names.AmbiguousModel):
        names.model_resolve(user=bob_teammate, name="echo/echo")


def test_names_outside_the_tenant_are_unknown(alice, team, charlie_outsider):
    credential = _credential(team, "Acme")
    ModelAlias.objects.create(owner_team=team, name="fast", credential=credential, model_id="m")
    ModelAlias.objects.create(owner_user=alice, name="mine", credential=credential, model_id="m")
    for name in ("acme/m", "fast", "mine", "", "x" * 400):
        with pytest.raises(names.UnknownModel):
            names.model_resolve(user=charlie_outsider, name=name)


def test_a_personal_alias_wins_over_a_teams(alice, team):
    credential = _credential(alice, "Mine")
    ModelAlias.objects.create(owner_team=team, name="fast", credential=credential, model_id="t")
    ModelAlias.objects.create(owner_user=alice, name="fast", credential=credential, model_id="p")
    assert names.model_resolve(user=alice, name="fast").model == "p"
