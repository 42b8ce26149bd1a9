"""Budgets at admission and settlement (billing.budgets): scope matching, holds, clamping,
refusals that name the budget, unknown prices, local models, expiry, and the ledger start."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.budgets import BudgetExceeded, budget_reserve, budget_settle
from billing.models import Budget, BudgetHold, BudgetWindow, PriceOverride, UsageRecord

# 1 output token = $0.001 and input is free: 100 tokens = $0.10, easy to reason about.
MODEL = "priced-model"


@pytest.fixture
def priced(db):
    return PriceOverride.objects.create(
        provider_id="openai", model=MODEL, input_per_mtok=0, output_per_mtok=1000
    )


@pytest.fixture
def acme_key(team, make_credential):
    return make_credential(team, "openai", name="Acme OpenAI")


def make_budget(owner, limit="1.00", **fields) -> Budget:
    budget = Budget(limit=Decimal(limit), **fields)
    budget.set_owner(owner)
    budget.save()
    return budget


def reserve(user, credential, *, team=None, max_tokens=100, model=MODEL, **kwargs):
    return budget_reserve(
        user=user,
        team=credential.owner_team_id if team is None else team,
        credential_id=credential.pk,
        provider_id=credential.preset_row.price_provider or "",
        model=model,
        max_tokens=max_tokens,
        preset=credential.preset,
        local=credential.is_local,
        **kwargs,
    )


def held(budget) -> Decimal:
    return sum((h.amount for h in BudgetHold.objects.filter(window__budget=budget)), Decimal(0))


def spent(budget) -> Decimal:
    return BudgetWindow.objects.get(budget=budget).spent


def test_a_call_no_budget_covers_is_admitted_as_asked(bob_teammate, acme_key, priced):
    reservation = reserve(bob_teammate, acme_key, max_tokens=None)
    assert reservation.max_tokens is None
    assert reservation.applied == ()
    assert not BudgetWindow.objects.exists()


def test_a_hard_budget_holds_the_estimate_until_the_call_settles_at_its_real_cost(
    team, bob_teammate, acme_key, priced
):
    budget = make_budget(team, "1.00", name="Acme monthly")

    reservation = reserve(bob_teammate, acme_key, max_tokens=300)

    assert reservation.max_tokens == 300
    assert reservation.amount == Decimal("0.3")
    assert held(budget) == Decimal("0.3")
    budget_settle(reservation, cost=Decimal("0.12"))
    assert held(budget) == 0
    assert spent(budget) == Decimal("0.12")
    budget_settle(reservation, cost=Decimal("0.12"))  # idempotent
    assert spent(budget) == Decimal("0.12")


def test_max_tokens_is_clamped_to_what_the_tightest_budget_can_still_afford(
    team, bob_teammate, acme_key, priced
):
    make_budget(team, "1.00")
    tight = make_budget(team, "0.50", credential=acme_key)
    first = reserve(bob_teammate, acme_key, max_tokens=300)  # holds $0.30 in both

    second = reserve(bob_teammate, acme_key, max_tokens=300)

    assert second.max_tokens == 200  # $0.20 left in the credential's budget
    assert held(tight) == Decimal("0.5")
    budget_settle(first, cost=Decimal("0.30"))
    budget_settle(second, cost=Decimal("0.20"))
    assert spent(tight) == Decimal("0.5")


def test_without_max_tokens_a_hard_budget_reserves_and_sends_the_default_allowance(
    team, bob_teammate, acme_key, priced, settings
):
    settings.WORKBENCH_BUDGET_DEFAULT_OUTPUT_TOKENS = 500
    make_budget(team, "10.00")
    reservation = reserve(bob_teammate, acme_key, max_tokens=None)
    assert (reservation.max_tokens, reservation.amount) == (500, Decimal("0.5"))


def test_a_call_is_refused_when_not_even_a_short_reply_fits_and_the_refusal_names_the_budget(
    team, bob_teammate, acme_key, priced
):
    budget = make_budget(team, "1.00", name="Acme monthly", time_zone="Europe/Paris")
    settled = reserve(bob_teammate, acme_key, max_tokens=960)
    budget_settle(settled, cost=Decimal("0.96"))  # $0.04 left: 40 tokens < a short reply (64)

    with pytest.raises(BudgetExceeded) as refused:
        reserve(bob_teammate, acme_key, max_tokens=300)

    message = refused.value.message
    assert "“Acme monthly”" in message
    assert "team Acme" in message and "monthly" in message
    assert "$0.04 left of $1.00" in message and "$0.96 spent" in message
    assert "It resets" in message and "Europe/Paris" in message
    details = refused.value.details
    assert details["id"] == budget.pk and details["reason"] == "limit"
    assert (details["limit"], details["spent"], details["left"]) == ("1", "0.96", "0.04")
    assert details["resets_at"]
    assert held(budget) == 0  # nothing held for a refused call


def test_a_refusal_counts_calls_in_progress_as_spent(team, bob_teammate, acme_key, priced):
    make_budget(team, "1.00", name="Acme")
    for _ in range(3):
        reserve(bob_teammate, acme_key, max_tokens=320)

    with pytest.raises(BudgetExceeded) as refused:
        reserve(bob_teammate, acme_key, max_tokens=300)

    assert "$0.04 left of $1.00 ($0.00 spent, $0.96 held by calls in progress)" in (
        refused.value.message
    )


def test_an_unknown_price_fails_closed_on_a_hard_budget_and_passes_a_soft_one(
    alice, team, bob_teammate, acme_key
):
    soft = make_budget(team, "1.00", hard=False)
    reservation = reserve(bob_teammate, acme_key, model="mystery-model-x")
    budget_settle(reservation, cost=None)
    assert BudgetWindow.objects.get(budget=soft).unpriced_calls == 1

    make_budget(team, "5.00", name="Acme hard")
    with pytest.raises(BudgetExceeded) as refused:
        reserve(bob_teammate, acme_key, model="mystery-model-x")
    assert "“mystery-model-x” has no known price" in refused.value.message
    assert "“Acme hard”" in refused.value.message
    assert refused.value.details["reason"] == "unpriced"


def test_local_models_are_never_blocked_by_money_and_cost_no_query(
    alice, make_credential, priced, django_assert_num_queries
):
    gpu = make_credential(alice, "openai_compatible", name="GPU box", is_local=True)
    make_budget(alice, "0.01")
    with django_assert_num_queries(0):
        reservation = reserve(alice, gpu, max_tokens=10_000)
    assert reservation.max_tokens == 10_000


def test_holds_of_a_process_that_died_expire(team, bob_teammate, acme_key, priced, settings):
    settings.WORKBENCH_BUDGET_HOLD_SECONDS = 60
    budget = make_budget(team, "1.00")
    start = timezone.now()
    for _ in range(3):
        reserve(bob_teammate, acme_key, max_tokens=320, now=start)  # never settled: "killed"
    with pytest.raises(BudgetExceeded):
        reserve(bob_teammate, acme_key, max_tokens=300, now=start + timedelta(seconds=59))

    later = reserve(bob_teammate, acme_key, max_tokens=300, now=start + timedelta(seconds=61))

    assert later.max_tokens == 300
    assert held(budget) == Decimal("1.26")  # rows linger harmlessly; only live ones count


def test_which_budgets_cover_a_call(alice, team, bob_teammate, acme_key, make_credential, priced):
    other_key = make_credential(team, "anthropic", name="Acme Anthropic")
    mine = make_credential(alice, "openai", name="alice's own")
    covers = {
        "team": make_budget(team),
        "bob": make_budget(team, user=bob_teammate),
        "alice-in-team": make_budget(team, user=alice),
        "openai": make_budget(team, preset="openai"),
        "anthropic": make_budget(team, preset="anthropic"),
        "model": make_budget(team, model=MODEL),
        "other-model": make_budget(team, model="gpt-4o"),
        "key": make_budget(team, credential=acme_key),
        "other-key": make_budget(team, credential=other_key),
        "inactive": make_budget(team, is_active=False),
        "alice-personal": make_budget(alice),
        "alice-personal-openai": make_budget(alice, preset="openai"),
    }
    ids = {v.pk: k for k, v in covers.items()}

    def names(reservation):
        return {ids[i] for i in reservation.budget_ids}

    assert names(reserve(bob_teammate, acme_key)) == {"team", "bob", "openai", "model", "key"}
    assert names(reserve(alice, acme_key)) == {"team", "alice-in-team", "openai", "model", "key"}
    assert names(reserve(alice, mine)) == {"alice-personal", "alice-personal-openai"}


def test_a_budget_added_mid_period_starts_from_what_the_ledger_already_holds(
    team, bob_teammate, acme_key, priced
):
    for cost in ("0.40", "0.35"):
        UsageRecord.objects.create(
            user=bob_teammate,
            team=team,
            credential=acme_key,
            preset="openai",
            provider_id="openai",
            model=MODEL,
            status="ok",
            cost=Decimal(cost),
            cost_source="provider",
        )
    budget = make_budget(team, "1.00")

    reservation = reserve(bob_teammate, acme_key, max_tokens=300)

    assert spent(budget) == Decimal("0.75")
    assert reservation.max_tokens == 250
