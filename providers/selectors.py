"""Reads for providers, scoped to the user asking."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch, QuerySet

from accounts import access
from accounts.access import Action
from billing import money, pricing
from providers.models import (
    DefaultModel,
    ModelAlias,
    ModelKind,
    ModelPreference,
    ProviderCredential,
    ProviderModel,
)


def credentials_for_user(*, user, team=None) -> QuerySet[ProviderCredential]:
    """What the Providers page lists: the user's own credentials plus the current team's."""
    return access.in_view(
        ProviderCredential.objects.select_related("owner_team"), user, team
    ).order_by("owner_team__name", "name", "pk")


def usable_credentials_for_user(*, user) -> QuerySet[ProviderCredential]:
    """Every active credential the user may `use`, in any of their teams (model pickers)."""
    return (
        access.scope(ProviderCredential.objects.filter(is_active=True), user, Action.USE)
        .select_related("owner_team")
        .prefetch_related(
            Prefetch("models", queryset=ProviderModel.objects.order_by("kind", "model_id"))
        )
        .order_by("owner_team__name", "name", "pk")
    )


def chat_credentials_for(*, user, team=None) -> QuerySet[ProviderCredential]:
    """The active credentials a conversation owned by `team` (None: by `user` personally) may run
    on, as `user` may use them: the team's own for a team conversation (none for a viewer), the
    user's own personal ones for a personal conversation. Never another team's, never another
    member's personal key — whoever owns a conversation pays for it."""
    credentials = ProviderCredential.objects.filter(is_active=True)
    if team is None:
        credentials = credentials.filter(owner_user_id=user.pk)
    elif access.allows(user, team, Action.USE):
        credentials = credentials.filter(owner_team_id=team.pk)
    else:
        return credentials.none()
    return (
        credentials.select_related("owner_team")
        .prefetch_related(
            Prefetch("models", queryset=ProviderModel.objects.order_by("kind", "model_id"))
        )
        .order_by("name", "pk")
    )


def credential_for_user(*, user, pk, action: Action = Action.READ) -> ProviderCredential:
    return access.get_for(user, ProviderCredential.objects.select_related("owner_team"), pk, action)


@dataclass(frozen=True)
class CatalogueEntry:
    model: ProviderModel
    local: bool
    input_per_mtok: str | None  # None = unpriced (or local)
    output_per_mtok: str | None
    per_request: str | None
    context_window: int | None
    price_source: str  # local | genai-prices | override | unpriced


def catalogue_for(*, user, credential: ProviderCredential) -> list[CatalogueEntry]:
    """The credential's cached models with context windows and prices where known. Unknown
    prices say "unpriced" — never a silent $0."""
    access.require(user, credential, Action.READ)
    preset = credential.preset_row
    local = credential.is_local
    entries = []
    for model in credential.models.all().order_by("kind", "model_id"):
        price = (
            None
            if local
            else pricing.price_for(preset.price_provider, model.model_id, preset=preset.key)
        )
        entries.append(
            CatalogueEntry(
                model=model,
                local=local,
                input_per_mtok=money.decimal_str(price.input_per_mtok) if price else None,
                output_per_mtok=money.decimal_str(price.output_per_mtok) if price else None,
                per_request=money.decimal_str(price.per_request)
                if price and price.per_request
                else None,
                context_window=model.context_window
                or pricing.context_window_for(preset.price_provider, model.model_id),
                price_source="local" if local else (price.source if price else "unpriced"),
            )
        )
    return entries


# --- What the model pickers offer -------------------------------------------------------------


@dataclass(frozen=True)
class ModelChoice:
    """One model a conversation may run on, as the pickers show it."""

    credential: ProviderCredential
    model: str
    context_window: int | None
    price: pricing.Price | None  # None: unpriced, or local (free)
    favourite: bool = False
    last_used_at: datetime | None = None

    @property
    def value(self) -> str:
        """What pickers submit: `<credential id>|<model id>`."""
        return f"{self.credential.pk}|{self.model}"

    @property
    def local(self) -> bool:
        return self.credential.is_local


@dataclass(frozen=True)
class ModelChoices:
    """The models offered for chats owned by one owner (a team, or the user personally), with
    the owner's default and the user's last used among them."""

    choices: list[ModelChoice]
    default: ModelChoice | None
    last_used: ModelChoice | None

    @property
    def start(self) -> ModelChoice | None:
        """What a new chat starts on: the owner's default, else the model the user last
        picked, else the first offered."""
        return self.default or self.last_used or (self.choices[0] if self.choices else None)

    def find(self, credential_id, model: str) -> ModelChoice | None:
        for choice in self.choices:
            if choice.credential.pk == credential_id and choice.model == model:
                return choice
        return None


def model_choices_for(*, user, team=None) -> ModelChoices:
    """The chat models a conversation owned by `team` (None: personal) may run on, as `user`
    sees them in a picker: the credentials `chat_credentials_for` gives (the owner's own), each
    listed chat model with its context window and price, the user's favourites and last use,
    and the owner's default. Four queries, whatever the number of models."""
    credentials = list(chat_credentials_for(user=user, team=team))
    ids = [credential.pk for credential in credentials]
    preferences = {
        (p.credential_id, p.model): p
        for p in ModelPreference.objects.filter(user_id=user.pk, credential_id__in=ids)
    }
    default_row = (
        DefaultModel.objects.filter(
            credential_id__in=ids,
            **({"owner_team_id": team.pk} if team is not None else {"owner_user_id": user.pk}),
        ).first()
        if ids
        else None
    )
    choices = []
    for credential in credentials:
        preset = credential.preset_row
        for listed in credential.models.all():
            if listed.kind != ModelKind.CHAT:
                continue
            price = (
                None
                if credential.is_local
                else pricing.price_for(preset.price_provider, listed.model_id, preset=preset.key)
            )
            preference = preferences.get((credential.pk, listed.model_id))
            choices.append(
                ModelChoice(
                    credential=credential,
                    model=listed.model_id,
                    context_window=listed.context_window
                    or pricing.context_window_for(preset.price_provider, listed.model_id),
                    price=price,
                    favourite=bool(preference and preference.favourite),
                    last_used_at=preference.last_used_at if preference else None,
                )
            )
    used = [choice for choice in choices if choice.last_used_at is not None]
    return ModelChoices(
        choices=choices,
        default=default_row
        and next(
            (
                c
                for c in choices
                if c.credential.pk == default_row.credential_id and c.model == default_row.model
            ),
            None,
        ),
        last_used=max(used, key=lambda c: c.last_used_at) if used else None,
    )


def aliases_for_user(*, user) -> QuerySet[ModelAlias]:
    """Gateway aliases the user can see: their own and their teams'."""
    return (
        access.scope(ModelAlias.objects.all(), user)
        .select_related("credential", "owner_team")
        .order_by("owner_team__name", "name", "pk")
    )


def alias_for_user(*, user, pk, action: Action = Action.READ) -> ModelAlias:
    return access.get_for(
        user, ModelAlias.objects.select_related("credential", "owner_team"), pk, action
    )
