"""Reads for providers, scoped to the user asking."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet

from accounts import access
from accounts.access import Action
from billing import money, pricing
from providers.models import ProviderCredential, ProviderModel


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
