"""A call's prepare hop: the credential through the access rules, the request checked, the
adapter config, and admission — the slot under the user's concurrency cap, the budgets and the
opened usage row (providers.admission) — before any provider is called. A refusal returns the
error on the prepared call (its usage row is written at settlement)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace

from django.db import transaction

from accounts import access
from accounts.access import Action
from billing import budgets
from billing.services import usage_open
from providers import admission, concurrency, tokens
from providers.adapters.base import AdapterConfig, CompletionRequest, ProviderError, Timeouts
from providers.gate.calls import Prepared
from providers.keys import KeyUnreadable, readable_key
from providers.models import ProviderCredential
from providers.validation import validate_request
from workbench import egress as egress_guard


def _billed_team(user, credential: ProviderCredential, team) -> int | None:
    """Whose spend the call is: a team credential's calls are its team's; a personal
    credential's are the caller's own, unless the caller chose a team to bill (`team`) and may
    `use` it (403 otherwise). Never the session's current team by default."""
    if credential.owner_team_id is not None:
        return credential.owner_team_id
    if team is None:
        return None
    access.require(user, team, Action.USE)
    return team.pk


def call_prepare(
    user,
    credential_id,
    request: CompletionRequest,
    team,
    timeouts: Timeouts,
    egress,
    feature: str = "api",
    context: dict | None = None,
    operation: str = "chat",
) -> Prepared:
    if callable(credential_id):
        # The caller names the model another way (the gateway's `<slug>/<model>`): resolved
        # here, in this hop, through the access rules — one hop and no refetch before the call.
        credential, model = credential_id()
        access.require(user, credential, Action.USE)
        request = replace(request, model=model)
    elif isinstance(credential_id, ProviderCredential):
        # Read and checked by the caller as its request started (a chat reply's plan, moments
        # ago): the rules again on that object, the role read anew — no refetch.
        credential = credential_id
        access.require_now(user, credential, Action.USE)
    else:
        credential = access.get_for(
            user, ProviderCredential.objects.all(), credential_id, Action.USE
        )
    team_id = _billed_team(user, credential, team)
    prepared = Prepared(credential, None, team_id, None, request)
    try:
        if not credential.is_active:
            raise ProviderError("inactive", f"“{credential.name}” is deactivated.")
        prepared.request = validate_request(request)
        try:
            key = readable_key(credential)
        except KeyUnreadable as exc:
            raise ProviderError("key_unreadable", str(exc)) from None
        prepared.config = AdapterConfig(
            preset=credential.preset_row,
            base_url=credential.effective_base_url,
            api_key=key,
            organization=credential.organization,
            timeouts=timeouts,
            # The instance allowlist read now (one cached lookup), so an entry a superuser just
            # added applies to the next call.
            egress_allow=egress["allow"]
            if "allow" in egress
            else egress_guard.instance_allowlist(),
            resolver=egress.get("resolver"),
        )
        # Instant (no tokenizer): for the reservation and what a crash leaves on the row.
        prepared.input_estimate = tokens.estimate_messages(prepared.request.all_messages())
        preset = credential.preset_row
        usage = dict(
            local=credential.is_local,
            input_estimate=prepared.input_estimate,
            user=user,
            team_id=team_id,
            credential=credential,
            credential_name=credential.name,
            preset=preset.key,
            provider_id=preset.price_provider or "",
            model=prepared.request.model,
            operation=operation,
            feature=feature,
            context=context or {},
        )
        # The slot, the budgets and the opened row in one statement (providers.admission):
        # without a matching budget that is all before the provider is called.
        try:
            admitted = admission.call_admit(
                user_id=user.pk,
                team_id=team_id,
                credential_id=credential.pk,
                preset=credential.preset,
                model=prepared.request.model,
                local=credential.is_local,
                usage=usage,
            )
        except concurrency.TooManyCalls as exc:
            raise ProviderError("too_many_calls", str(exc)) from None
        prepared.slot, prepared.record = admitted.slot, admitted.record
        if not admitted.budgeted:
            prepared.reservation = budgets.Reservation(max_tokens=prepared.request.max_tokens)
        else:
            # The reservation and the opened row: one transaction (a refusal rolls both back;
            # the slot taken above is freed below).
            try:
                with transaction.atomic():
                    prepared.reservation = budgets.budget_reserve(
                        user=user,
                        team=team_id,
                        credential_id=credential.pk,
                        provider_id=preset.price_provider or "",
                        model=prepared.request.model,
                        max_tokens=prepared.request.max_tokens,
                        input_tokens=prepared.input_estimate,
                        preset=credential.preset,
                        local=credential.is_local,
                    )
                    prepared.record = usage_open(**usage)
            except budgets.BudgetExceeded as exc:
                concurrency.call_slot_release(slot=prepared.slot)
                refusal = ProviderError("budget_exceeded", exc.message)
                refusal.budget = exc.details  # the REST body names the budget
                refusal.budget_alert = exc.deliver_alert  # after the rollback, below
                raise refusal from None
            except BaseException:
                with contextlib.suppress(Exception):
                    concurrency.call_slot_release(slot=prepared.slot)
                raise
    except ProviderError as exc:
        prepared.error, prepared.slot, prepared.record = exc, None, None  # rolled back
        if alert := getattr(exc, "budget_alert", None):
            alert()  # its own transaction, now that the refused one is rolled back
        return prepared
    except BaseException:
        prepared.slot = prepared.record = None  # rolled back with the transaction
        raise
    return prepared


def slot_keep(prepared: Prepared) -> asyncio.Task | None:
    """Renew the call's slot while it runs (cancelled in the call's `finally`)."""
    if prepared.slot is None or prepared.error is not None:
        return None
    return asyncio.get_running_loop().create_task(concurrency.call_slot_keep(prepared.slot))
