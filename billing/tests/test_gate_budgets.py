"""Budgets through the real gate (providers.gate → billing.budgets) against the fake provider over
HTTP: refusals that name the budget in REST and SSE, clamped max_tokens on the wire, and holds
released whatever way a call ends — success, provider 500, timeout, disconnect, client stop."""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connections
from django.test import AsyncClient

from billing.models import (
    Budget,
    BudgetHold,
    BudgetWindow,
    Notification,
    PriceOverride,
    UsageRecord,
)
from providers.adapters.base import CompletionRequest, Message, ProviderError, TextDelta
from providers.gate import completion_stream
from tests.api_client import bearer

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "gpt-4o-mini"


@pytest.fixture(autouse=True)
async def _close_worker_thread_connection():
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def world(team, bob_teammate, make_credential):
    """Acme's OpenAI key (on the fake) where an output token costs $0.001 and input is free,
    and a $1.00 hard monthly budget on the team."""
    PriceOverride.objects.create(
        provider_id="openai", model=MODEL, input_per_mtok=0, output_per_mtok=1000
    )
    key = make_credential(team, "openai", name="Acme OpenAI")
    budget = Budget(name="Acme monthly", limit=Decimal("1.00"))
    budget.set_owner(team)
    budget.save()
    return {"key": key, "budget": budget, "user": bob_teammate}


def request(max_tokens: int | None = 100) -> CompletionRequest:
    return CompletionRequest(model=MODEL, messages=(Message("user", "Hi"),), max_tokens=max_tokens)


async def run(world, *, stop_after: int | None = None, **kwargs) -> str:
    text = []
    async with contextlib.aclosing(
        completion_stream(
            user=world["user"], credential_id=world["key"].pk, request=request(**kwargs)
        )
    ) as events:
        async for event in events:
            if type(event) is TextDelta:
                text.append(event.text)
                if stop_after is not None and len(text) >= stop_after:
                    break
    return "".join(text)


@sync_to_async
def ledger(budget) -> tuple[Decimal, Decimal, list[UsageRecord]]:
    held = sum((h.amount for h in BudgetHold.objects.filter(window__budget=budget)), Decimal(0))
    window = BudgetWindow.objects.filter(budget=budget).first()
    return held, window.spent if window else Decimal(0), list(UsageRecord.objects.order_by("id"))


async def test_a_finished_call_releases_its_hold_and_is_charged_its_cost(world, fake_provider):
    fake_provider.configure(reply_tokens=40)
    await run(world)
    held, spent, [row] = await ledger(world["budget"])
    assert held == 0
    assert spent == row.cost == Decimal("0.04")


@pytest.mark.usefixtures("one_attempt")
async def test_a_provider_500_releases_the_hold_and_charges_nothing(world, fake_provider):
    fake_provider.configure(status=500)
    with pytest.raises(ProviderError):
        await run(world)
    held, spent, [row] = await ledger(world["budget"])
    assert (held, spent, row.status) == (0, 0, "error")


async def test_a_timeout_releases_the_hold(world, fake_provider, settings):
    settings.WORKBENCH_PROVIDER_TIMEOUTS = {"connect": 2.0, "read": 0.3, "total": 5.0}
    fake_provider.configure(ttft=2.0)
    with pytest.raises(ProviderError) as failed:
        await run(world)
    assert failed.value.code == "timeout"
    held, spent, [row] = await ledger(world["budget"])
    assert (held, spent, row.error_code) == (0, 0, "timeout")


async def test_a_disconnect_mid_reply_releases_the_hold_and_charges_what_was_produced(
    world, fake_provider
):
    fake_provider.configure(reply_tokens=50, disconnect_after=10)
    with pytest.raises(ProviderError):
        await run(world)
    held, spent, [row] = await ledger(world["budget"])
    assert held == 0
    assert row.output_tokens > 0 and row.cost > 0
    assert spent == row.cost


async def test_a_client_stop_releases_the_hold_and_charges_the_partial_reply(world, fake_provider):
    fake_provider.configure(reply_tokens=80, tokens_per_second=200)
    text = await run(world, stop_after=5)
    held, spent, [row] = await ledger(world["budget"])
    assert text and row.status == "stopped"
    assert held == 0
    assert spent == row.cost > 0


@sync_to_async
def spend_earlier(world, cost: str) -> None:
    """Usage already in the ledger this month (the window starts from it)."""
    UsageRecord.objects.create(
        user=world["user"],
        team=world["key"].owner_team,
        credential=world["key"],
        preset="openai",
        provider_id="openai",
        model=MODEL,
        status="ok",
        cost=Decimal(cost),
        cost_source="provider",
    )


async def test_the_provider_is_asked_for_no_more_than_the_budget_affords(world, fake_provider):
    await spend_earlier(world, "0.80")
    fake_provider.configure(reply_tokens=500)

    text = await run(world, max_tokens=300)

    [call] = [r for r in fake_provider.requests if r.path == "/v1/chat/completions"]
    assert call.body["max_tokens"] == 200  # $0.20 left at $0.001 a token
    held, spent, rows = await ledger(world["budget"])
    assert rows[-1].output_tokens == 200 and len(text.split()) == 200
    assert held == 0 and spent == Decimal("1.00")


async def test_a_refused_call_never_reaches_the_provider_and_says_which_budget(
    world, fake_provider
):
    await spend_earlier(world, "0.99")

    with pytest.raises(ProviderError) as refused:
        await run(world)

    assert refused.value.code == "budget_exceeded"
    assert "“Acme monthly”" in refused.value.message
    assert refused.value.budget["id"] == world["budget"].pk
    assert fake_provider.requests == []
    held, _, rows = await ledger(world["budget"])
    assert held == 0
    assert (rows[-1].status, rows[-1].error_code, rows[-1].cost) == (
        "error",
        "budget_exceeded",
        Decimal(0),
    )


async def test_a_refused_call_leaves_the_limit_reached_alert_although_its_transaction_rolls_back(
    world, fake_provider, alice, settings
):
    """The gate reserves inside the transaction that takes the call's slot and opens its usage
    row; a refusal rolls that back, and the alert must survive it (the bell tells the owner)."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    await spend_earlier(world, "0.99")

    with pytest.raises(ProviderError):
        await run(world)

    reached = [n async for n in Notification.objects.filter(title__contains="reached its limit")]
    assert [n.user_id for n in reached] == [alice.pk]  # the team's owner


def test_rest_answers_402_with_the_budget_that_refused(world, api_for, fake_provider):
    async_to_sync(spend_earlier)(world, "0.99")
    body = {
        "credential": world["key"].pk,
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 100,
    }

    response = api_for(world["user"]).post("/api/completions", body)

    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "budget_exceeded"
    assert "“Acme monthly” (team Acme, monthly) has $0.01 left of $1.00" in error["message"]
    assert error["budget"]["name"] == "Acme monthly"
    assert (error["budget"]["limit"], error["budget"]["spent"]) == ("1", "0.99")
    assert error["budget"]["resets_at"]


async def test_sse_ends_with_an_error_event_naming_the_budget(world, token_for, fake_provider):
    await spend_earlier(world, "0.99")
    token = await sync_to_async(token_for)(world["user"], "write")
    body = {
        "credential": world["key"].pk,
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
    }
    response = await AsyncClient().post(
        "/api/completions", json.dumps(body), content_type="application/json", headers=bearer(token)
    )
    events = b"".join([chunk async for chunk in response.streaming_content]).decode()

    assert events.startswith("event: error")
    data = json.loads(events.split("data: ", 1)[1].split("\n", 1)[0])
    assert data["code"] == "budget_exceeded"
    assert data["budget"]["name"] == "Acme monthly"
    assert "“Acme monthly”" in data["message"]
