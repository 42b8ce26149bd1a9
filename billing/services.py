"""Writes for billing: the usage ledger and its daily rollups; budgets.

A call's row is opened before the provider is called, checkpointed while it streams and settled
once at the end (UsageRecord says why); a call refused before any provider call is written
settled at once (`usage_record`). The rollup counts a row when it is settled, never before."""

from __future__ import annotations

import copy
import logging
from datetime import timedelta
from decimal import Decimal

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.http import Http404
from django.utils import timezone

from accounts import access
from accounts.access import Action
from accounts.models import Membership
from billing import pricing, rollups
from billing.models import (
    Budget,
    BudgetWindow,
    CallStatus,
    CostSource,
    DailyUsage,
    UsageRecord,
)
from workbench import statements

logger = logging.getLogger(__name__)


def _rollup_upsert(record: UsageRecord) -> tuple[str, str, dict]:
    """`rollups.UPSERT_SQL` as `INSERT … SELECT` (each value cast to its column's type) and its
    ON CONFLICT clause, for a statement that adds the row `FROM` another part of it: the settle
    statement rolls up only a row it did settle."""
    fields = {f.column: f for f in DailyUsage._meta.concrete_fields}
    values, params = [], {}
    for n, (column, value) in enumerate(
        zip(rollups.COLUMNS, rollups.rollup_values(record), strict=True)
    ):
        params[f"r{n}"] = value
        values.append(f"%(r{n})s::{fields[column].db_type(connection)}")
    insert = (
        f"INSERT INTO billing_dailyusage ({', '.join(rollups.COLUMNS)}) SELECT {', '.join(values)}"
    )
    adds = ", ".join(f"{c} = billing_dailyusage.{c} + EXCLUDED.{c}" for c in rollups.SUMS)
    return (
        insert,
        f"ON CONFLICT ON CONSTRAINT billing_dailyusage_unique DO UPDATE SET {adds}",
        params,
    )


def stale_after() -> timedelta:
    """A `running` row whose heartbeat is older than this belongs to a process that died."""
    return timedelta(seconds=float(getattr(settings, "WORKBENCH_LEDGER_STALE_SECONDS", 15)))


def _rollup(record: UsageRecord) -> None:
    rollups.rollup_add(record)


@transaction.atomic
def usage_record(**fields) -> UsageRecord:
    """Append one settled row and fold it into the day's rollup (two statements, one
    transaction). For calls that never reached a provider (refused by the gate's checks)."""
    record = UsageRecord.objects.create(**fields)
    _rollup(record)
    return record


def rollups_detach_credential(*, credential_id: int) -> None:
    """Before a credential is deleted: keep its daily totals, without it (one statement).
    Call inside the transaction that deletes the credential."""
    rollups.rollups_detach_credential(credential_id=credential_id)


def _opened(*, local: bool, input_estimate: int = 0, **fields) -> UsageRecord:
    return UsageRecord(
        status=CallStatus.RUNNING,
        heartbeat_at=timezone.now(),
        input_tokens=input_estimate,
        tokens_estimated=True,
        cost_source=CostSource.LOCAL if local else CostSource.ESTIMATED,
        **fields,
    )


def usage_open(*, local: bool, input_estimate: int = 0, **fields) -> UsageRecord:
    """Open the row of a call about to reach a provider (one INSERT): `running`, heartbeat now,
    the prompt's estimated tokens — what a crash leaves for the sweep to settle."""
    record = _opened(local=local, input_estimate=input_estimate, **fields)
    record.save(force_insert=True)
    return record


def usage_open_statement(
    *, local: bool, input_estimate: int = 0, **fields
) -> tuple[UsageRecord, str, dict]:
    """`usage_open` as a piece of a larger statement (the gate's admission): the unsaved row and
    its `INSERT … SELECT` (the caller adds the WHERE that decides, and `RETURNING id`; then
    `statements.saved(record, id)`)."""
    record = _opened(local=local, input_estimate=input_estimate, **fields)
    sql, params = statements.insert_select(record, prefix="u")
    return record, sql, params


def usage_checkpoint(*, pk: int, tokens: pricing.Tokens) -> bool:
    """The call's tokens so far (estimated) and its heartbeat: one UPDATE. False when the row
    is no longer running."""
    return bool(
        UsageRecord.objects.filter(pk=pk, status=CallStatus.RUNNING).update(
            input_tokens=tokens.input,
            output_tokens=tokens.output,
            cache_read_tokens=tokens.cache_read,
            cache_write_tokens=tokens.cache_write,
            reasoning_tokens=tokens.reasoning,
            tokens_estimated=tokens.estimated,
            heartbeat_at=timezone.now(),
        )
    )


def usage_settle(
    *,
    record: UsageRecord,
    status: str,
    tokens: pricing.Tokens,
    local: bool,
    preset: str,
    error_code: str = "",
    error_message: str = "",
    provider_detail: str = "",
    finish_reason: str = "",
    attempts: int = 1,
    ttft_ms: float | None = None,
    retry_wait_ms: float = 0,
    duration_ms: float = 0,
    overhead_ms: float = 0,
    tokens_per_second: float | None = None,
    also: tuple[str, dict] | None = None,
) -> tuple[UsageRecord, bool]:
    """Settle an open row: final status, tokens and cost (a conditional UPDATE) and the day's
    rollup, in one statement. Returns (record, settled_now): a row something else settled first
    (the sweep, for a process it thought dead) is left as it is, and nothing is rolled up.
    `also`: another write (SQL and its parameters) for the same statement — the gate frees the
    call's slot so; it runs whether or not the row was still open."""
    cost = pricing.cost_for(
        provider_id=record.provider_id,
        preset=preset,
        model=record.model,
        local=local,
        tokens=tokens,
        at=record.created_at,  # the prices in effect when the call started
    )
    values = {
        "status": status,
        "error_code": error_code,
        "error_message": error_message[:500],
        "provider_detail": provider_detail[:500],
        "finish_reason": finish_reason[:20],
        "attempts": max(attempts, 1),
        "input_tokens": tokens.input,
        "output_tokens": tokens.output,
        "cache_read_tokens": tokens.cache_read,
        "cache_write_tokens": tokens.cache_write,
        "reasoning_tokens": tokens.reasoning,
        "tokens_estimated": tokens.estimated,
        "cost": cost.amount,
        "cost_source": cost.source,
        "price_snapshot": cost.snapshot,
        "ttft_ms": ttft_ms,
        "retry_wait_ms": retry_wait_ms,
        "duration_ms": duration_ms,
        "overhead_ms": overhead_ms,
        "tokens_per_second": tokens_per_second,
        "heartbeat_at": None,
    }
    sets, params = statements.assignments(UsageRecord, values, prefix="s")
    settled = copy.copy(record)  # what the row becomes, if it is still open
    for name, value in values.items():
        setattr(settled, name, value)
    insert, conflict, rollup_params = _rollup_upsert(settled)
    extra = f", also AS ({also[0]})" if also is not None else ""
    sql = f"""
        WITH settled AS (
            UPDATE billing_usagerecord SET {sets}
            WHERE id = %(pk)s AND status = %(running)s RETURNING id
        ){extra}
        {insert} FROM settled {conflict} RETURNING 1
    """  # noqa: S608 - only our own columns are formatted in; values are parameters
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                **params,
                **rollup_params,
                **(also[1] if also is not None else {}),
                "pk": record.pk,
                "running": CallStatus.RUNNING,
            },
        )
        settled_now = cursor.fetchone() is not None
    if not settled_now:
        return UsageRecord.objects.get(pk=record.pk), False
    return settled, True


def usage_settle_stale(
    *, older_than: timedelta | None = None, running: frozenset[int] | set[int] = frozenset()
) -> int:
    """Settle the rows of calls whose process died (heartbeat older than `older_than`, default
    `stale_after()`; never those in `running`, this process's live calls) as `interrupted`,
    from their last checkpoint — estimated tokens, priced. Returns how many."""
    older_than = stale_after() if older_than is None else older_than
    orphans = UsageRecord.objects.filter(
        status=CallStatus.RUNNING, heartbeat_at__lt=timezone.now() - older_than
    ).exclude(pk__in=running)
    settled = 0
    for record in orphans:
        heartbeat = record.heartbeat_at or record.created_at
        _, done = usage_settle(
            record=record,
            status=CallStatus.INTERRUPTED,
            tokens=pricing.Tokens(
                input=record.input_tokens,
                output=record.output_tokens,
                cache_read=record.cache_read_tokens,
                cache_write=record.cache_write_tokens,
                reasoning=record.reasoning_tokens,
                estimated=True,
            ),
            local=record.cost_source == CostSource.LOCAL,
            preset=record.preset,
            error_code="interrupted",
            error_message="The server stopped during this call; tokens are estimated from "
            "its last checkpoint.",
            attempts=record.attempts,
            duration_ms=max(0.0, (heartbeat - record.created_at).total_seconds() * 1000),
        )
        settled += done
    if settled:
        logger.info("Settled %s usage row(s) left running by a stopped process", settled)
    return settled


# --- Budgets ---------------------------------------------------------------------------------------

# Changing any of these changes which calls a budget counts: its current window starts over
# from the ledger (the next call recreates it).
SCOPE_FIELDS = ("user_id", "credential_id", "preset", "model", "period", "time_zone")
MAX_LIMIT = Decimal("1000000000")


def _budget_clean(*, actor, budget: Budget) -> None:
    """Every id through the access rules (404 outside the tenant), then the values."""
    from billing import windows
    from billing.selectors import preset_labels

    if budget.owner_team_id:
        access.require(actor, budget.owner_team, Action.MANAGE)
    elif budget.owner_user_id != actor.pk:
        raise Http404
    errors: dict[str, str] = {}
    if budget.user_id is not None:
        if not budget.owner_team_id:
            errors["user"] = (
                "A personal budget covers your own calls; pick a member only for a team's."
            )
        elif not Membership.objects.filter(
            team_id=budget.owner_team_id, user_id=budget.user_id
        ).exists():
            raise Http404("No such member in this team.")
    if budget.credential_id is not None:
        credential = access.get_for(
            actor, apps.get_model("providers", "ProviderCredential"), budget.credential_id
        )
        if (credential.owner_team_id, credential.owner_user_id) != (
            budget.owner_team_id,
            budget.owner_user_id,
        ):
            errors["credential"] = (
                "Pick a credential of the budget's owner (the team's keys for a team budget, "
                "your own for a personal one): other keys' calls are never charged here."
            )
    if budget.preset and budget.preset not in preset_labels():
        errors["preset"] = f"“{budget.preset}” is not a provider."
    if not windows.is_zone(budget.time_zone):
        errors["time_zone"] = f"“{budget.time_zone}” is not a time zone (e.g. Europe/Paris)."
    if budget.limit is None or not Decimal("0.01") <= budget.limit <= MAX_LIMIT:
        errors["limit"] = "Between $0.01 and $1,000,000,000."
    thresholds = list(budget.thresholds or [])
    if len(thresholds) > 10 or any(not 1 <= int(t) <= 1000 for t in thresholds):
        errors["thresholds"] = "Up to ten whole percentages from 1 to 1000."
    budget.thresholds = sorted({int(t) for t in thresholds})
    budget.model = (budget.model or "").strip()
    budget.name = (budget.name or "").strip()
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def budget_create(*, actor, owner_team=None, **fields) -> Budget:
    """A budget for `owner_team` (its admins and owners only) or, without, the actor's own."""
    budget = Budget(created_by=actor, **fields)
    budget.set_owner(owner_team if owner_team is not None else actor)
    _budget_clean(actor=actor, budget=budget)
    budget.save()
    return budget


@transaction.atomic
def budget_update(*, actor, budget: Budget, **fields) -> Budget:
    """Change a budget (never its owner). A new scope or period restarts the current window."""
    _budget_manage_check(actor=actor, budget=budget)
    stored = Budget.objects.select_for_update().get(pk=budget.pk)
    before = {name: getattr(stored, name) for name in SCOPE_FIELDS}
    for name, value in fields.items():
        if name in ("owner_team", "owner_user", "owner_team_id", "owner_user_id"):
            continue
        setattr(budget, name, value)
    _budget_clean(actor=actor, budget=budget)
    budget.save()
    if any(getattr(budget, name) != before[name] for name in SCOPE_FIELDS):
        BudgetWindow.objects.filter(budget=budget).delete()
    return budget


def budget_delete(*, actor, budget: Budget) -> None:
    _budget_manage_check(actor=actor, budget=budget)
    budget.delete()


def _budget_manage_check(*, actor, budget: Budget) -> None:
    if budget.owner_team_id:
        access.require(actor, budget, Action.MANAGE)
    elif budget.owner_user_id != actor.pk:
        raise Http404
