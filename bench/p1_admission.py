"""P1 with budgets — what budget admission adds per call at the gate, with 3 applicable budgets
(the team's, the team's on one member, the team's on one credential) vs none.

Two measurements, interleaved so drift on the machine hits both alike:

1. **Admission alone**: `budget_reserve` (before the first token) and `budget_settle` (after the
   last), each in its own transaction as the gate runs them, timed directly — wall and CPU time
   of this process (PostgreSQL's own time is in the wall figure, not the CPU one), and the
   statements each sends. Goal: reserve ≤ 0.5 ms added per call with 3 budgets.
2. **Through the gate**: TTFT with the openai SDK path against the fake (same harness as
   `p1_ttft.py`), the team's key, with and without the 3 budgets — the end-to-end view (noisy on a
   shared machine; the first figure is the one to compare with the goal).

The budgets' limits are far above what the run spends, so every call is admitted and holds and
settles (the common case); the windows exist after the warm-up (the steady state).

    .venv/bin/python bench/p1_admission.py [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections import Counter
from decimal import Decimal

import harness
from p1_ttft import close_clients, gate_ttft


class Counting:
    def __init__(self):
        self.kinds = Counter()

    def __call__(self, execute, sql, params, many, context):
        self.kinds[re.match(r"\s*(\w+)", sql).group(1).upper()] += 1
        return execute(sql, params, many, context)


def team_world(url: str):
    """The bench user, owner of a team whose OpenAI key (on the fake) its calls go through."""
    from accounts.models import Role, Team
    from providers.models import ProviderCredential

    user, _ = harness.bench_user_and_credential(url)
    team, _ = Team.objects.get_or_create(name="Bench team")
    team.memberships.get_or_create(user=user, defaults={"role": Role.OWNER})
    credential, _ = ProviderCredential.objects.update_or_create(
        owner_team=team,
        name="bench team openai",
        defaults={"preset": "openai", "api_key": "sk-bench-0123456789", "base_url": f"{url}/v1"},
    )
    return user, team, credential


def set_budgets(*, user, team, credential, on: bool) -> None:
    """Three hard monthly budgets that all apply to the bench calls (or none)."""
    from billing.models import Budget

    Budget.objects.filter(owner_team=team).delete()
    if not on:
        return
    for name, scope in (
        ("Bench team", {}),
        ("Bench team · bench", {"user": user}),
        ("Bench team · key", {"credential": credential}),
    ):
        budget = Budget(name=name, limit=Decimal("1000000"), **scope)
        budget.set_owner(team)
        budget.save()


def admission_once(user, team, credential, counting: Counting) -> tuple[float, ...]:
    """One call's budget work, as the gate runs it, in ms: (reserve wall, reserve CPU,
    prepare-transaction wall, settle wall, settle CPU). The reservation runs inside the
    transaction that opens the usage row (which commits with or without budgets, so its commit
    is not the budgets' cost); settlement is a transaction of its own after the ledger's."""
    from django.db import connection, transaction

    from billing import budgets
    from billing.pricing import Tokens
    from billing.services import usage_open, usage_settle

    started = time.perf_counter()
    with connection.execute_wrapper(counting), transaction.atomic():
        wall, cpu = time.perf_counter(), time.process_time()
        reservation = budgets.budget_reserve(
            user=user,
            team=team.pk,
            credential_id=credential.pk,
            provider_id="openai",
            model="gpt-4o-mini",
            max_tokens=None,
            input_tokens=20,
            preset="openai",
        )
        reserve_wall, reserve_cpu = time.perf_counter() - wall, time.process_time() - cpu
        record = usage_open(
            local=False,
            user=user,
            team_id=team.pk,
            credential=credential,
            preset="openai",
            provider_id="openai",
            model="gpt-4o-mini",
            feature="bench",
        )
    prepare_wall = time.perf_counter() - started
    usage_settle(
        record=record, status="ok", tokens=Tokens(input=20, output=5), local=False, preset="openai"
    )
    wall, cpu = time.perf_counter(), time.process_time()
    with connection.execute_wrapper(counting):
        budgets.budget_settle(reservation, cost=record.cost)
    settle_wall, settle_cpu = time.perf_counter() - wall, time.process_time() - cpu
    return tuple(
        x * 1e3 for x in (reserve_wall, reserve_cpu, prepare_wall, settle_wall, settle_cpu)
    )


KEYS = ("reserve", "reserve_cpu", "prepare_tx", "settle", "settle_cpu")


def admission(user, team, credential, calls: int) -> dict[str, dict]:
    results = {}
    for on in (False, True):
        results[on] = {key: [] for key in KEYS}
        results[on]["statements"] = Counting()
    for _ in range(calls // 20):
        for on in (False, True):
            set_budgets(user=user, team=team, credential=credential, on=on)
            for _ in range(3):  # warm: windows created, caches filled
                admission_once(user, team, credential, Counting())
            counting = Counting()
            for _ in range(20):
                timings = admission_once(user, team, credential, counting)
                for key, value in zip(KEYS, timings, strict=True):
                    results[on][key].append(value)
            results[on]["statements"].kinds.update(counting.kinds)
    return results


async def ttft(user, credential, calls: int, on: bool, team) -> list[float]:
    from asgiref.sync import sync_to_async

    await sync_to_async(set_budgets)(user=user, team=team, credential=credential, on=on)
    for _ in range(5):
        await gate_ttft(user, credential)
    return [await gate_ttft(user, credential) for _ in range(calls)]


async def through_gate(user, team, credential, calls: int) -> dict[bool, list[float]]:
    results = {False: [], True: []}
    for _ in range(max(1, calls // 50)):
        for on in (False, True):
            results[on] += await ttft(user, credential, 50, on, team)
    await close_clients()
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    harness.django_setup()
    harness.pin(0)
    print(f"P1 budget admission — {harness.machine()}")
    with open("/proc/loadavg") as f:
        print(f"load average at start: {' '.join(f.read().split()[:3])}")
    with harness.fake_server(core=1) as url:
        harness.configure(url, reply_tokens=5)
        user, team, credential = team_world(url)

        per_call = args.calls
        results = admission(user, team, credential, per_call)
        print(f"\nAdmission alone ({len(results[True]['reserve'])} calls each, ms)")
        for key in KEYS:
            none, three = results[False][key], results[True][key]
            print(
                f"  {key:<11} none: {harness.summary(none)}\n"
                f"  {'':<11} 3   : {harness.summary(three)}\n"
                f"  {'':<11} added p50 {harness.pct(three, 50) - harness.pct(none, 50):+.3f} ms"
            )
        for on in (False, True):
            counted = results[on]["statements"].kinds
            n = len(results[on]["reserve"])
            per = {kind: round(count / n, 2) for kind, count in sorted(counted.items())}
            print(f"  statements per call ({'3 budgets' if on else 'no budget'}): {per}")

        gate = asyncio.run(through_gate(user, team, credential, per_call))
        print(f"\nThrough the gate, c = 1 ({len(gate[True])} calls each, TTFT ms)")
        print(f"  no budget : {harness.summary(gate[False])}")
        print(f"  3 budgets : {harness.summary(gate[True])}")
        print(
            f"  added     : p50 {harness.pct(gate[True], 50) - harness.pct(gate[False], 50):+.2f} ms"
            f"   p99 {harness.pct(gate[True], 99) - harness.pct(gate[False], 99):+.2f} ms"
        )
        set_budgets(user=user, team=team, credential=credential, on=False)
    with open("/proc/loadavg") as f:
        print(f"load average at end: {' '.join(f.read().split()[:3])}")


if __name__ == "__main__":
    main()
