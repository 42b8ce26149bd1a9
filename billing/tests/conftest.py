"""Seeding the usage ledger the way the gate writes it: every call through `usage_record` (one
ledger row + its rollup upsert), so rollups and dashboards are tested on what production writes."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import CallStatus, CostSource
from billing.services import usage_record

MODELS = [
    ("openai", "openai", "gpt-4o-mini"),
    ("openai", "openai", "gpt-4o"),
    ("anthropic", "anthropic", "claude-3-5-haiku-latest"),
    ("groq", "groq", "llama-3.1-8b-instant"),
    ("ollama", "", "llama3.2"),
]
FEATURES = [("chat", "chat"), ("playground", "chat"), ("evals", "chat"), ("api", "chat")]
FEATURES += [("rag", "embedding")]


@pytest.fixture
def make_key(db):
    """`make_key(owner, preset="openai")` → a credential row (never called: the ledger is seeded)."""
    from providers.models import ProviderCredential

    def make(owner, preset: str = "openai", name: str | None = None):
        from accounts.models import Team

        credential = ProviderCredential(
            name=name or f"{preset} key",
            preset=preset,
            api_key="sk-test-key-0123456789",
            base_url="http://127.0.0.1:9/v1",
            is_local=preset == "ollama",
        )
        credential.set_owner(owner)
        if isinstance(owner, Team):
            credential.created_by = owner.memberships.first().user
        credential.save()
        return credential

    return make


def write_call(
    *,
    user,
    team=None,
    credential=None,
    preset: str = "openai",
    provider_id: str = "openai",
    model: str = "gpt-4o-mini",
    feature: str = "chat",
    operation: str = "chat",
    status: str = CallStatus.OK,
    at: datetime | None = None,
    cost: Decimal | None = Decimal("0.01"),
    cost_source: str | None = None,
    input_tokens: int = 100,
    output_tokens: int = 50,
    ttft_ms: float | None = 200.0,
    tokens_per_second: float | None = 50.0,
    **extra,
):
    """One settled call, written as the gate writes it (ledger row + rollup upsert)."""
    if cost_source is None:
        cost_source = CostSource.UNPRICED if cost is None else CostSource.PROVIDER
    return usage_record(
        created_at=at or timezone.now(),
        user=user,
        team=team,
        credential=credential,
        credential_name=credential.name if credential else "",
        preset=preset,
        provider_id=provider_id,
        model=model,
        feature=feature,
        operation=operation,
        status=status,
        error_code="provider_error" if status == CallStatus.ERROR else "",
        cost=cost,
        cost_source=cost_source,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        ttft_ms=ttft_ms,
        tokens_per_second=tokens_per_second,
        duration_ms=(ttft_ms or 0) + 400,
        **extra,
    )


def random_calls(
    rng: random.Random, *, n: int, people: list, teams: list, keys: list, start: datetime, days: int
) -> list:
    """`n` calls spread over `days` days from `start` (random minutes, so some straddle midnight
    in any zone), random people, teams, keys, models, features, statuses and cost sources."""
    rows = []
    for _ in range(n):
        preset, provider_id, model = rng.choice(MODELS)
        feature, operation = rng.choice(FEATURES)
        status = rng.choices(
            [CallStatus.OK, CallStatus.ERROR, CallStatus.STOPPED, CallStatus.INTERRUPTED],
            weights=[80, 10, 5, 5],
        )[0]
        source = rng.choice(list(CostSource.values))
        cost = None if source == CostSource.UNPRICED else Decimal(rng.randint(0, 50_000)) / 10**6
        if source == CostSource.LOCAL:
            cost = Decimal(0)
        output = rng.randint(0, 4000)
        rows.append(
            write_call(
                user=rng.choice(people),
                team=rng.choice(teams),
                credential=rng.choice(keys),
                preset=preset,
                provider_id=provider_id,
                model=model,
                feature=feature,
                operation=operation,
                status=status,
                at=start + timedelta(minutes=rng.randint(0, days * 24 * 60 - 1)),
                cost=cost,
                cost_source=source,
                input_tokens=rng.randint(0, 20_000),
                output_tokens=output,
                cache_read_tokens=rng.randint(0, 100),
                reasoning_tokens=rng.randint(0, 100),
                ttft_ms=rng.choice([None, rng.uniform(20, 3000)]),
                tokens_per_second=rng.choice([None, rng.uniform(5, 300)]) if output > 1 else None,
            )
        )
    return rows
