"""Gateway model names → (credential, model id), through the access rules.

A name is `<credential slug>/<model id>` (model ids may contain slashes themselves:
`openrouter/meta-llama/llama-3.1-8b`) or an alias. Lookups see only what the caller may read:
their own credentials and aliases and their teams'. Anything else is "no such model" (404
style), exactly like a name that exists nowhere — names reveal nothing outside the tenant. The
gate then checks that the caller may `use` the credential (403 for a team's viewer)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db.models import F, Q

from accounts import access
from accounts.access import Action
from providers.models import ModelAlias, ModelKind, ProviderCredential, ProviderModel

ALIAS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")


class UnknownModel(Exception):
    """No model by that name that the caller can see (404 style)."""


class AmbiguousModel(Exception):
    """The name matches more than one of the caller's teams' credentials or aliases."""


@dataclass(frozen=True)
class Resolved:
    credential: ProviderCredential
    model: str
    name: str  # as the caller wrote it (answers echo it back)

    @property
    def credential_id(self) -> int:
        return self.credential.pk


def _first(rows: list, user_id: int, name: str):
    """The caller's own row wins; otherwise exactly one team's."""
    own = [row for row in rows if row.owner_user_id == user_id]
    if own:
        return own[0]
    if len(rows) > 1:
        raise AmbiguousModel(
            f"“{name}” names a model in more than one of your teams; use "
            "`<credential slug>/<model id>` of the one you mean, or an alias of your own."
        )
    return rows[0] if rows else None


def model_resolve(*, user, name: str) -> Resolved:
    """Raise UnknownModel / AmbiguousModel, or return the credential id and model id."""
    if not isinstance(name, str) or not name or len(name) > 300:
        raise UnknownModel
    slug, _, model = name.partition("/")
    readable = Q(owner_user_id=user.pk) | Q(owner_team_id__in=access.team_ids_for(user))
    if model:
        credentials = list(ProviderCredential.objects.filter(readable, slug=slug).order_by("pk"))
        credential = _first(credentials, user.pk, name)
        if credential is not None:
            return Resolved(credential, model, name)
    if ALIAS_RE.match(name):
        aliases = list(
            ModelAlias.objects.filter(readable, name=name)
            .select_related("credential")
            .order_by("pk")
        )
        alias = _first(aliases, user.pk, name)
        if alias is not None:
            return Resolved(alias.credential, alias.model_id, name)
    raise UnknownModel


@dataclass(frozen=True)
class Listed:
    id: str
    owned_by: str  # "you" or the team's name
    kind: str
    alias_of: str | None = None


def models_for_user(*, user) -> list[Listed]:
    """What `/v1/models` lists: every listed model of every active credential the caller may
    `use` (as `<slug>/<model id>`, a personal credential first when a team's has the same slug),
    then the aliases the caller can use."""
    usable = access.scope(ProviderCredential.objects.filter(is_active=True), user, Action.USE)
    credentials = {
        c.pk: c
        for c in usable.select_related("owner_team").only(
            "pk", "slug", "owner_user_id", "owner_team_id", "owner_team__name"
        )
    }
    taken: set[str] = set()
    listed: list[Listed] = []
    ordered = sorted(credentials.values(), key=lambda c: (c.owner_team_id is not None, c.pk))
    models = ProviderModel.objects.filter(credential_id__in=list(credentials)).order_by(
        "credential_id", "kind", "model_id"
    )
    by_credential: dict[int, list[ProviderModel]] = {}
    for row in models.only("credential_id", "model_id", "kind"):
        by_credential.setdefault(row.credential_id, []).append(row)
    for credential in ordered:
        owner = credential.owner_team.name if credential.owner_team_id else "you"
        for row in by_credential.get(credential.pk, []):
            name = f"{credential.slug}/{row.model_id}"
            if name not in taken:
                taken.add(name)
                listed.append(Listed(name, owner, row.kind or ModelKind.CHAT))
    aliases = access.scope(ModelAlias.objects.filter(credential_id__in=list(credentials)), user)
    for alias in aliases.select_related("credential", "owner_team").order_by(
        F("owner_team_id").asc(nulls_first=True), "name"
    ):
        if alias.name in taken:
            continue
        taken.add(alias.name)
        owner = alias.owner_team.name if alias.owner_team_id else "you"
        listed.append(
            Listed(alias.name, owner, ModelKind.CHAT, f"{alias.credential.slug}/{alias.model_id}")
        )
    return listed
