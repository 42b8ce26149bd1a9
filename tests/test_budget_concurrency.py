"""Budgets hold under real concurrency (issue 10 acceptance), against real Daphne processes on
the test database and the fake provider over HTTP.

A team's hard budget of $1.00; replies that cost $0.30 and take 300 ms; 20 requests released
together → at most 3 reach the provider, the team never spends more than $1.00, and every other
request gets `budget_exceeded` naming the team budget — with one process, with user + team +
credential budgets at once, and split over two processes. A process killed mid-call pins its
hold only until the hold expires."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from decimal import Decimal

import httpx
import pytest
from django.utils import timezone

from accounts.models import Role
from billing.models import Budget, BudgetHold, BudgetWindow, PriceOverride, UsageRecord
from conftest import make_user
from tests import servers

MODEL = "gpt-4o-mini"
REPLY_TOKENS = 100  # × $0.003 = $0.30 a reply
PRICE_PER_MTOK = Decimal("3000")


@pytest.fixture
def daphne(transactional_db, fake_provider, tmp_path):
    """`daphne(**env)` starts a Daphne subprocess on the test database (the fake provider let
    through); every process started is stopped before the database is flushed."""
    started: list[subprocess.Popen] = []

    def start(**extra) -> tuple[subprocess.Popen, str]:
        env = servers.daphne_env(
            WORKBENCH_EGRESS_ALLOW=f"127.0.0.1:{fake_provider.port}",
            WORKBENCH_MAX_CONCURRENT_CALLS="50",
            **extra,
        )
        process, port = servers.start_daphne(env, tmp_path / f"daphne-{len(started)}.log")
        started.append(process)
        return process, f"http://127.0.0.1:{port}"

    yield start
    servers.stop(*started)


@pytest.fixture
def acme(team, alice, make_credential, token_for, fake_provider):
    """Acme with four members calling through the team's OpenAI key (on the fake), where a
    reply of 100 tokens costs $0.30 and arrives after 300 ms; a $1.00 hard team budget."""
    PriceOverride.objects.create(
        provider_id="openai", model=MODEL, input_per_mtok=0, output_per_mtok=PRICE_PER_MTOK
    )
    members = [make_user(f"member{i}") for i in range(4)]
    for member in members:
        team.memberships.create(user=member, role=Role.MEMBER)
    key = make_credential(team, "openai", name="Acme OpenAI")
    fake_provider.configure(ttft=0.3, reply_tokens=REPLY_TOKENS)
    budget = Budget(name="Acme monthly", limit=Decimal("1.00"))
    budget.set_owner(team)
    budget.save()
    return {
        "team": team,
        "key": key,
        "budget": budget,
        "members": members,
        "tokens": [token_for(m, "write") for m in members],
    }


async def _burst(urls: list[str], acme: dict, n: int = 20) -> list[httpx.Response]:
    """n completions released together, spread over the members and the servers."""
    body = {
        "credential": acme["key"].pk,
        "model": MODEL,
        "messages": [{"role": "user", "content": "Tell me something."}],
        "max_tokens": REPLY_TOKENS,
    }
    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(client.get(f"{url}/api/schema/") for url in urls))  # warm up

        async def one(i: int) -> httpx.Response:
            token = acme["tokens"][i % len(acme["tokens"])]
            return await client.post(
                f"{urls[i % len(urls)]}/api/completions",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            )

        return await asyncio.gather(*(one(i) for i in range(n)))


def _assert_the_budget_held(responses, acme, fake_provider, named: Budget) -> None:
    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 402]
    assert len(ok) + len(refused) == len(responses), [r.text for r in responses]
    reached = [r for r in fake_provider.requests if r.path == "/v1/chat/completions"]
    assert len(reached) == len(ok) <= 3
    assert len(ok) >= 1
    for response in refused:
        error = response.json()["error"]
        assert error["code"] == "budget_exceeded"
        assert error["budget"]["id"] == named.pk
        assert f"“{named.name}”" in error["message"]
    spent = UsageRecord.objects.filter(status="ok").values_list("cost", flat=True)
    assert sum(spent, Decimal(0)) == Decimal("0.30") * len(ok)
    for window in BudgetWindow.objects.select_related("budget"):
        assert window.spent <= window.budget.limit
        counted = UsageRecord.objects.filter(status="ok")
        if window.budget.user_id:
            counted = counted.filter(user_id=window.budget.user_id)
        assert window.spent == sum(counted.values_list("cost", flat=True), Decimal(0))
    assert not BudgetHold.objects.exists()  # every hold released


def test_twenty_requests_against_a_one_dollar_team_budget_reach_the_provider_at_most_three_times(
    acme, daphne, fake_provider
):
    _, url = daphne()
    responses = asyncio.run(_burst([url], acme))
    _assert_the_budget_held(responses, acme, fake_provider, acme["budget"])


def test_user_team_and_credential_budgets_hold_at_once(acme, daphne, fake_provider):
    member = acme["members"][0]
    for name, fields in (
        ("member0 daily", {"user": member, "period": "day"}),
        ("Acme OpenAI weekly", {"credential": acme["key"], "period": "week"}),
    ):
        budget = Budget(name=name, limit=Decimal("1.50"), **fields)
        budget.set_owner(acme["team"])
        budget.save()
    _, url = daphne()

    responses = asyncio.run(_burst([url], acme))

    _assert_the_budget_held(responses, acme, fake_provider, acme["budget"])
    # Each budget is counted in its own window. A window is made by an admitted call: a refused
    # one rolls back with the call's admission (slot, hold and usage row are one transaction),
    # so member0's daily window exists only if one of member0's calls got through.
    member_admitted = UsageRecord.objects.filter(user=member, status="ok").exists()
    assert BudgetWindow.objects.count() == (3 if member_admitted else 2)


def test_the_budget_holds_across_two_server_processes(acme, daphne, fake_provider):
    urls = [daphne()[1], daphne()[1]]
    responses = asyncio.run(_burst(urls, acme))
    _assert_the_budget_held(responses, acme, fake_provider, acme["budget"])


def test_a_killed_process_pins_its_hold_only_until_it_expires(acme, daphne, fake_provider):
    fake_provider.configure(ttft=30.0)  # the provider never answers in time
    process, url = daphne(WORKBENCH_BUDGET_HOLD_SECONDS="3")
    body = {
        "credential": acme["key"].pk,
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": REPLY_TOKENS,
    }

    async def call_then_kill():
        async with httpx.AsyncClient(timeout=30) as client:
            call = asyncio.ensure_future(
                client.post(
                    f"{url}/api/completions",
                    json=body,
                    headers={"Authorization": f"Bearer {acme['tokens'][0]}"},
                )
            )
            deadline = time.monotonic() + 10
            while not fake_provider.requests and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            process.send_signal(signal.SIGKILL)
            with pytest.raises(httpx.TransportError):
                await call

    asyncio.run(call_then_kill())
    process.wait(timeout=5)
    [hold] = BudgetHold.objects.all()
    assert hold.amount == Decimal("0.3")  # the dead call's reservation is still there…

    assert (hold.expires_at - hold.created_at).total_seconds() == 3
    time.sleep(max(0.0, (hold.expires_at - timezone.now()).total_seconds()) + 0.2)
    fake_provider.configure(ttft=0.0)
    _, other = daphne()
    # …until it expires: after that, the whole $1.00 is available again.
    responses = asyncio.run(_burst([other], acme, n=3))
    assert [r.status_code for r in responses] == [200, 200, 200]
