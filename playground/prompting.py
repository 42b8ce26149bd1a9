"""Prompts from the library in the playground: fill a version's variables once for every slot,
"Test this prompt across N models", and "Open in playground" from a batch cell.

Everything renders through `prompts.rendering.version_render` (the one renderer; a linked
collection's context is retrieved as the user asking). The comparison keeps the version, the
values and whether the system part was used; `selectors.prompt_link` checks at every run that
the prompt is still exactly that rendering, and only then does the run count for the version
(usage context, ratings → `prompts.services.feedback_record`)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts import access
from accounts.access import Action
from playground import selectors, services
from playground.models import MAX_SLOTS, MIN_SLOTS, Comparison
from playground.services import SlotData
from prompts.rendering import Rendered, version_render

MAX_VALUE_NAMES = 200  # a version has far fewer variables; bounds what is stored


def _owner_team_for(actor, team):
    """Like the thing it comes from when the actor may use that team; else personal (a viewer
    compares on their own credentials, as "Compare this conversation" does)."""
    if team is not None and access.allows(actor, team, Action.USE):
        return team
    return None


def _stored_values(values) -> dict:
    if not isinstance(values, dict):
        return {}
    return {str(k)[:64]: v for k, v in list(values.items())[:MAX_VALUE_NAMES]}


def comparison_apply_prompt(
    *, actor, comparison: Comparison, version, values, use_system: bool
) -> Rendered:
    """Fill the comparison's prompt (and, with `use_system`, its system prompt) from `version`
    with `values`, for every slot at once. Raises RenderError naming every bad variable;
    nothing is saved then."""
    access.require(actor, comparison, Action.WRITE)
    rendered = version_render(user=actor, version=version, values=values)
    with_system = bool(use_system and rendered.system)
    with transaction.atomic():
        _apply(actor, comparison, version, rendered, values, with_system)
    return rendered


def _apply(actor, comparison, version, rendered: Rendered, values, with_system: bool) -> None:
    services.comparison_save(
        actor=actor,
        comparison=comparison,
        prompt=rendered.user,
        system_prompt=rendered.system if with_system else None,
    )
    comparison.prompt_version = version
    comparison.prompt_values = _stored_values(values)
    comparison.prompt_with_system = with_system
    comparison.save(update_fields=["prompt_version", "prompt_values", "prompt_with_system"])


def _slots(actor, owner_team, n: int, *, first=None, params=None) -> list[SlotData]:
    """`n` slots over the owner's models: `first` (credential, model) when the owner may run it,
    then the other models in the picker's order, repeated when there are fewer than `n`."""
    choices = [
        (group["credential"], model)
        for group in selectors.picker_groups(user=actor, owner_team=owner_team)
        for model in group["models"]
    ]
    if first is not None:
        credential, model = first
        usable = {c.pk for c in selectors.credentials_for_owner(user=actor, owner_team=owner_team)}
        if credential is not None and credential.pk in usable and model:
            choices = [(credential, model)] + [
                c for c in choices if (c[0].pk, c[1]) != (credential.pk, model)
            ]
    params = services.clean_params(params or {})
    if not choices:
        return [SlotData() for _ in range(n)]
    return [SlotData(credential=c, model=m, params=dict(params)) for c, m in (choices * n)[:n]]


def comparison_from_prompt(*, actor, template, version, values, models: int) -> Comparison:
    """ "Test this prompt across N models": a comparison with `models` slots (the version's
    preferred model first), its prompt filled from the version. Raises RenderError (nothing
    made) when the values don't fit."""
    if not MIN_SLOTS <= models <= MAX_SLOTS:
        raise ValidationError({"models": f"Between {MIN_SLOTS} and {MAX_SLOTS} models."})
    rendered = version_render(user=actor, version=version, values=values)
    team = _owner_team_for(actor, template.owner_team)
    return services.comparison_create(
        actor=actor,
        owner_team=team,
        title=f"{template.name} v{version.number}"[:200],
        system_prompt=rendered.system,
        prompt=rendered.user,
        slots=_slots(
            actor, team, models, first=(version.credential, version.model), params=version.params
        ),
        prompt_link=(version, _stored_values(values), bool(rendered.system)),
    )


def comparison_from_batch_cell(*, actor, batch, cell) -> Comparison:
    """ "Open in playground" from a batch cell: that row's rendering and that cell's model
    (first slot), and one more model to compare it with."""
    from providers.models import ProviderCredential

    version = batch.version
    row = batch.rows.filter(index=cell.row_index).first()
    values = row.values if row is not None else {}
    rendered = version_render(user=actor, version=version, values=values)
    team = _owner_team_for(actor, batch.owner_team)
    targets = batch.targets or []
    target = targets[cell.target_index] if cell.target_index < len(targets) else {}
    credential = ProviderCredential.objects.filter(pk=target.get("credential")).first()
    params = {**(version.params or {}), **(batch.params or {})}
    return services.comparison_create(
        actor=actor,
        owner_team=team,
        title=f"{batch.template.name} v{version.number} · row {cell.row_index + 1}"[:200],
        system_prompt=rendered.system,
        prompt=rendered.user,
        slots=_slots(
            actor, team, MIN_SLOTS, first=(credential, target.get("model", "")), params=params
        ),
        prompt_link=(version, _stored_values(values), bool(rendered.system)),
    )
