"""Writes for providers: credentials, connection tests, the model catalogue — and the gate.

`completion_stream` and `embedding_create` (re-exported from the gate, providers/gate/) are the only ways any
feature calls a model."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx
from asgiref.sync import async_to_sync
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts import access
from accounts.access import Action
from accounts.models import Team
from billing.services import rollups_detach_credential
from providers import concurrency, presets
from providers.adapters import adapter_for
from providers.adapters.base import AdapterConfig, ModelInfo, ProviderError
from providers.gate import completion_stream, default_timeouts, embedding_create
from providers.keys import KeyUnreadable, readable_key
from providers.models import (
    DefaultModel,
    ModelAlias,
    ModelKind,
    ModelPreference,
    ProviderCredential,
    ProviderModel,
)
from providers.validation import model_id_problem
from workbench import egress

__all__ = [
    "alias_create",
    "alias_delete",
    "catalogue_refresh",
    "completion_stream",
    "credential_create",
    "credential_delete",
    "credential_test",
    "credential_update",
    "credentials_ensure_echo",
    "credentials_reencrypt",
    "embedding_create",
    "model_default_clear",
    "model_default_set",
    "model_favourite_set",
    "model_used",
]

EDITABLE = ("name", "api_key", "base_url", "organization", "is_local", "is_active", "metadata")


def _check_base_url(preset: presets.Preset, base_url: str) -> str:
    base_url = (base_url or "").strip()
    if preset.base_url_required and not base_url:
        raise ValidationError(
            {"base_url": f"{preset.label} needs a base URL, e.g. http://gpu-box:8000/v1."}
        )
    if base_url:
        try:
            # Parse only: whether the address is allowed is decided at call time (DNS changes).
            egress.parse_url(base_url)
            httpx.URL(base_url)  # what the SDKs will parse (they refuse e.g. octal hosts)
        except egress.EgressError as exc:
            raise ValidationError({"base_url": str(exc)}) from None
        except httpx.InvalidURL as exc:
            raise ValidationError({"base_url": f"Not a usable URL: {exc}"}) from None
    return base_url


def same_endpoint(preset: presets.Preset, old: str, new: str) -> bool:
    """Do two base URLs (empty = the preset's default) name the same endpoint? Scheme and host
    case, a default port, a trailing slash and surrounding spaces don't make a new endpoint — so
    they must not clear the key (it is only cleared when it would go to another host)."""
    return _endpoint(preset, old) == _endpoint(preset, new)


def _endpoint(preset: presets.Preset, url: str) -> tuple | str:
    url = (url or "").strip() or preset.default_base_url
    if not url:
        return ""
    try:
        target = egress.parse_url(url)
    except egress.EgressError:
        return url
    path = urlsplit(url).path.rstrip("/")
    return (target.scheme, target.host, target.port, path)


def _check_header_values(**values: str) -> None:
    """The key and the organization travel in HTTP headers: a CR or LF would split the header
    and anything but printable ASCII breaks it, so such values are refused, never passed on."""
    for field, value in values.items():
        if value and not all(" " <= char <= "~" for char in value):
            raise ValidationError(
                {
                    field: "Use printable ASCII only: no line breaks, tabs or other control "
                    "characters."
                }
            )


def _check_owner(actor, owner_team: Team | None) -> None:
    if owner_team is not None:
        access.require(actor, owner_team, Action.MANAGE)


@transaction.atomic
def credential_create(
    *,
    actor,
    preset: str,
    name: str,
    api_key: str = "",
    base_url: str = "",
    organization: str = "",
    owner_team: Team | None = None,
    is_local: bool | None = None,
    metadata: dict | None = None,
) -> ProviderCredential:
    row = presets.PRESETS.get(preset)
    if row is None:
        raise ValidationError({"preset": "Pick a provider from the list."})
    _check_owner(actor, owner_team)
    name = (name or "").strip() or row.label
    api_key = (api_key or "").strip()
    organization = (organization or "").strip()
    _check_header_values(api_key=api_key, organization=organization)
    if row.needs_key and not api_key:
        raise ValidationError({"api_key": f"{row.label} needs an API key."})
    credential = ProviderCredential(
        name=name,
        preset=preset,
        api_key=api_key,
        base_url=_check_base_url(row, base_url),
        organization=organization,
        is_local=row.local if is_local is None else is_local,
        metadata=metadata or {},
        created_by=actor,
    )
    credential.set_owner(owner_team or actor)
    credential.full_clean(exclude=["api_key"])
    credential.save()
    return credential


@transaction.atomic
def credential_update(*, actor, credential: ProviderCredential, **changes) -> ProviderCredential:
    """Change fields. A new base URL clears the key (it was meant for another host) unless a new
    key comes with it; the same URL spelled differently is not new (`same_endpoint`). An empty
    `api_key` keeps the stored one: keys are write-only. Sets `credential.key_cleared` so the
    caller can say so at once."""
    access.require(actor, credential, Action.MANAGE)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValidationError(f"Can't change {', '.join(sorted(unknown))}.")
    row = credential.preset_row
    _check_header_values(
        **{
            field: (changes[field] or "").strip()
            for field in ("api_key", "organization")
            if changes.get(field) is not None
        }
    )
    credential.key_cleared = False
    connection_changed = False
    if "base_url" in changes:
        new_url = _check_base_url(row, changes["base_url"])
        if not same_endpoint(row, credential.base_url, new_url):
            connection_changed = True
            if not (changes.get("api_key") or "").strip() and credential.api_key:
                credential.api_key = ""
                credential.key_cleared = True
        credential.base_url = new_url
    if (changes.get("api_key") or "").strip():
        credential.api_key = changes["api_key"].strip()
        connection_changed = True
    if connection_changed:
        # The last test was of another connection: neither its verdict nor its message holds.
        credential.last_test_ok = None
        credential.last_test_message = ""
        credential.last_tested_at = None
    for field in ("name", "organization"):
        if field in changes and changes[field] is not None:
            setattr(credential, field, changes[field].strip())
    for field in ("is_local", "is_active", "metadata"):
        if field in changes and changes[field] is not None:
            setattr(credential, field, changes[field])
    if not credential.name:
        raise ValidationError({"name": "Give the credential a name."})
    credential.full_clean(exclude=["api_key"])
    credential.save()
    return credential


def credential_delete(*, actor, credential: ProviderCredential) -> None:
    """Delete a credential (a leaked key must always be deletable); its usage history stays,
    under its name, without the link."""
    access.require(actor, credential, Action.MANAGE)
    credentials_delete(ProviderCredential.objects.filter(pk=credential.pk))


@transaction.atomic
def credentials_delete(queryset) -> None:
    """Delete credentials, folding their daily rollups into the credential-less ones first (the
    admin's bulk delete uses this too)."""
    for credential_id in queryset.values_list("pk", flat=True):
        rollups_detach_credential(credential_id=credential_id)
    queryset.delete()


def credentials_ensure_echo(*, user, team: Team | None = None) -> ProviderCredential:
    """Everyone gets a personal Echo credential, so the workbench works with no keys at all —
    and so does every team (a team conversation runs only on the team's credentials): any member
    who may use the team gets it made. Echo is local and free, so no manager needs to agree."""
    if team is None:
        credential = ProviderCredential.objects.filter(owner_user=user, preset="echo").first()
        if credential is None:
            credential = credential_create(actor=user, preset="echo", name="Echo (local)")
            credential_test(actor=user, credential=credential)  # its built-in model: no network
        return credential
    access.require(user, team, Action.USE)
    with transaction.atomic():
        Team.objects.select_for_update().filter(pk=team.pk).first()  # one Echo, however many ask
        credential = ProviderCredential.objects.filter(owner_team=team, preset="echo").first()
        if credential is None:
            credential = ProviderCredential(
                name="Echo (local)", preset="echo", is_local=True, created_by=user
            )
            credential.set_owner(team)
            credential.save()
            created = True
        else:
            created = False
    if created:
        credential_test(actor=user, credential=credential)
    return credential


def _adapter_config(
    credential: ProviderCredential, egress_options: dict | None = None
) -> AdapterConfig:
    try:
        key = readable_key(credential)
    except KeyUnreadable as exc:
        raise ProviderError("key_unreadable", str(exc)) from None
    egress_options = egress_options or {}
    return AdapterConfig(
        preset=credential.preset_row,
        base_url=credential.effective_base_url,
        api_key=key,
        organization=credential.organization,
        timeouts=default_timeouts(),
        egress_allow=egress_options["allow"]
        if "allow" in egress_options
        else egress.instance_allowlist(),
        resolver=egress_options.get("resolver"),
        reuse_clients=False,  # run from sync code: the event loop ends with the call
    )


async def _list_models(config: AdapterConfig) -> list[ModelInfo]:
    adapter = adapter_for(config)
    try:
        models = await adapter.list_models()
        if hasattr(adapter, "context_window"):
            # Ollama tells the context length per model only via /api/show.
            models = [
                m
                if m.context_window or m.kind != "chat"
                else ModelInfo(
                    **{**m.__dict__, "context_window": await adapter.context_window(m.id)}
                )
                for m in models
            ]
        return models
    finally:
        await adapter.aclose()


def catalogue_refresh(
    *, actor, credential: ProviderCredential, egress_options: dict | None = None
) -> list[ProviderModel]:
    """List the models from the provider and replace the cached catalogue. It costs no tokens
    but calls the provider with the credential's key, so it needs `use` (viewers read only).
    While waiting on the provider it holds a slot of the actor's concurrency cap and no
    database connection."""
    access.require(actor, credential, Action.USE)
    config = _adapter_config(credential, egress_options)
    if credential.preset_row.needs_network:
        try:
            with concurrency.call_slot(user_id=actor.pk):
                models = async_to_sync(_list_models)(config)
        except concurrency.TooManyCalls as exc:
            raise ProviderError("too_many_calls", str(exc)) from None
    else:  # Echo: nothing to wait for
        models = async_to_sync(_list_models)(config)
    now = timezone.now()
    with transaction.atomic():
        credential.models.all().delete()
        rows = ProviderModel.objects.bulk_create(
            [
                ProviderModel(
                    credential=credential,
                    model_id=m.id[:200],
                    label=m.label[:200],
                    kind=m.kind if m.kind in ModelKind.values else ModelKind.CHAT,
                    context_window=m.context_window,
                    family=m.family[:100],
                    size_bytes=m.size_bytes,
                    details=m.details,
                    fetched_at=now,
                )
                for m in {m.id: m for m in models}.values()
                if model_id_problem(m.id) is None  # unusable ids (control characters) are skipped
            ]
        )
        credential.models_fetched_at = now
        credential.save(update_fields=["models_fetched_at"])
    return rows


def credential_test(
    *, actor, credential: ProviderCredential, egress_options: dict | None = None
) -> tuple[bool, str]:
    """Check the credential works by listing its models (no tokens spent). Records the result."""
    access.require(actor, credential, Action.USE)
    started = time.perf_counter()
    try:
        rows = catalogue_refresh(actor=actor, credential=credential, egress_options=egress_options)
    except ProviderError as exc:
        ok, message = False, f"{exc.code}: {exc.message}"
    else:
        elapsed = (time.perf_counter() - started) * 1000
        ok, message = (
            True,
            f"Connected in {elapsed:.0f} ms — {len(rows)} model{'s' if len(rows) != 1 else ''} available.",
        )
    credential.last_test_ok = ok
    credential.last_test_message = message[:300]
    credential.last_tested_at = timezone.now()
    credential.save(update_fields=["last_test_ok", "last_test_message", "last_tested_at"])
    return ok, message


def credentials_reencrypt() -> tuple[int, list[str]]:
    """Re-save every key so it is encrypted with the newest key of FIELD_ENCRYPTION_KEY.
    Returns (re-encrypted count, names of credentials whose key can't be read)."""
    done, unreadable = 0, []
    # Encrypted fields can't be filtered on (an empty key is stored encrypted too): look at each.
    for credential in ProviderCredential.objects.iterator():
        if not credential.api_key:
            continue
        try:
            key = readable_key(credential)
        except KeyUnreadable:
            unreadable.append(f"{credential.pk}: {credential.name}")
            continue
        ProviderCredential.objects.filter(pk=credential.pk).update(api_key=key)  # encrypts afresh
        done += 1
    return done, unreadable


# --- Model preferences: favourites, last used, defaults ------------------------------------------


def _listed_chat_model(credential: ProviderCredential, model: str) -> str:
    model = (model or "").strip()
    if not credential.models.filter(model_id=model, kind=ModelKind.CHAT).exists():
        raise ValidationError(
            {"model": f"“{model[:200]}” isn't one of “{credential.name}”'s chat models."}
        )
    return model


def model_favourite_set(
    *, user, credential: ProviderCredential, model: str, favourite: bool
) -> ModelPreference:
    """Star (or unstar) a model for `user`: favourites come first in every picker that offers
    it. Any credential the user may use (404 outside their tenant, 403 for a viewer)."""
    access.require(user, credential, Action.USE)
    model = _listed_chat_model(credential, model)
    preference, _ = ModelPreference.objects.update_or_create(
        user=user, credential=credential, model=model, defaults={"favourite": favourite}
    )
    return preference


def model_used(*, user, credential: ProviderCredential | None, model: str) -> None:
    """Remember that `user` picked this model just now (a new chat, or a picker change): new
    chats of the same owner start on it when the owner has no default. One upsert."""
    if credential is None or not model:
        return
    ModelPreference.objects.update_or_create(
        user=user,
        credential=credential,
        model=model[:200],
        defaults={"last_used_at": timezone.now()},
    )


def model_default_set(
    *, user, credential: ProviderCredential, model: str, team: Team | None = None
) -> DefaultModel:
    """Make `model` the one new chats of `team` (None: `user`'s personal chats) start on.
    A team's default is its admins' choice (manage); either must be one of the owner's own
    credentials, as the conversation rule requires (a team chat runs on the team's keys)."""
    if team is not None:
        access.require(user, team, Action.MANAGE)
    access.require(user, credential, Action.USE)
    if team is not None and credential.owner_team_id != team.pk:
        raise ValidationError(
            {"credential": f"A default for “{team.name}” must be one of the team's credentials."}
        )
    if team is None and credential.owner_user_id != user.pk:
        raise ValidationError(
            {
                "credential": "Your default for personal chats must be one of your own "
                "credentials (a team's default is set by its admins)."
            }
        )
    model = _listed_chat_model(credential, model)
    owner = {"owner_team": team} if team is not None else {"owner_user": user}
    default, _ = DefaultModel.objects.update_or_create(
        **owner,
        defaults={
            "credential": credential,
            "model": model,
            "set_by": user,
            "updated_at": timezone.now(),
        },
    )
    return default


def model_default_clear(*, user, team: Team | None = None) -> None:
    """No default any more: new chats start on the model last used."""
    if team is not None:
        access.require(user, team, Action.MANAGE)
        DefaultModel.objects.filter(owner_team=team).delete()
    else:
        DefaultModel.objects.filter(owner_user=user).delete()


# --- Gateway aliases -------------------------------------------------------------------------------


def alias_create(
    *,
    actor,
    name: str,
    credential: ProviderCredential,
    model_id: str,
    owner_team: Team | None = None,
) -> ModelAlias:
    """A short gateway model name. A personal alias may point at any credential the actor may
    `use`; a team's alias (the actor may `write` in the team) only at the team's own
    credentials — whoever calls it pays with the team's key, as in the team's chats."""
    from providers.gateway.names import ALIAS_RE

    name = (name or "").strip()
    model_id = (model_id or "").strip()
    if not ALIAS_RE.match(name):
        raise ValidationError(
            {"name": "Letters, digits, . _ : - (no slash), at most 100, e.g. “fast”."}
        )
    if not model_id or len(model_id) > 200:
        raise ValidationError({"model": "Give the model id (at most 200 characters)."})
    access.require(actor, credential, Action.USE)
    if owner_team is not None:
        access.require(actor, owner_team, Action.WRITE)
        if credential.owner_team_id != owner_team.pk:
            raise ValidationError({"credential": "A team's alias must use one of its credentials."})
    owner = {"owner_team": owner_team} if owner_team else {"owner_user": actor}
    if ModelAlias.objects.filter(name=name, **owner).exists():
        raise ValidationError({"name": f"There already is an alias “{name}” here."})
    alias = ModelAlias(name=name, credential=credential, model_id=model_id, created_by=actor)
    alias.set_owner(owner_team or actor)
    alias.save()
    return alias


def alias_delete(*, actor, alias: ModelAlias) -> None:
    access.require(actor, alias, Action.WRITE)
    alias.delete()
