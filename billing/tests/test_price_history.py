"""Admin price overrides as a history (issue 10, "cost honesty"): each version has an effective
time, a version in effect never changes, a call is priced by the version in effect when it
started, rows already priced keep their cost, cache prices in an override, the per-process copy
of the overrides, and the Django admin that manages them."""

from __future__ import annotations

from contextlib import aclosing
from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from billing import pricing
from billing.models import PriceOverride, PriceOverrideLocked, UsageRecord
from billing.pricing import Tokens
from billing.services import usage_open, usage_settle
from providers.adapters.base import CompletionRequest, Message
from providers.services import completion_stream

pytestmark = pytest.mark.django_db

MODEL = "gpt-4o-mini"
MILLION = Tokens(input=1_000_000, output=1_000_000)


def version(*, start, input_price="1", output_price="2", **fields) -> PriceOverride:
    return PriceOverride.objects.create(
        provider_id="openai",
        model=MODEL,
        effective_from=start,
        input_per_mtok=None if fields.get("ends") else Decimal(input_price),
        output_per_mtok=None if fields.get("ends") else Decimal(output_price),
        **fields,
    )


def run_completion(**kwargs) -> None:
    async def drain():
        async with aclosing(completion_stream(**kwargs)) as events:
            async for _ in events:
                pass

    async_to_sync(drain)()


def cost_at(at, tokens=MILLION) -> Decimal | None:
    return pricing.cost_for(
        provider_id="openai", preset="openai", model=MODEL, local=False, tokens=tokens, at=at
    ).amount


def genai_cost(tokens=MILLION) -> Decimal:
    pricing.overrides_changed()
    return pricing._calc("openai", MODEL, tokens).total_price.quantize(pricing.QUANTUM)


# --- Which version prices a call ----------------------------------------------------------------


def test_a_call_is_priced_by_the_version_in_effect_when_it_started():
    now = timezone.now()
    version(start=now - timedelta(days=10), input_price="1", output_price="2")
    version(start=now - timedelta(days=1), input_price="3", output_price="4")
    version(start=now + timedelta(days=1), input_price="5", output_price="6")

    assert cost_at(now - timedelta(days=20)) == genai_cost()  # before any override
    assert cost_at(now - timedelta(days=5)) == Decimal(3)
    assert cost_at(now) == Decimal(7)
    assert cost_at(now + timedelta(days=2)) == Decimal(11)
    assert pricing.price_for("openai", MODEL, preset="openai").input_per_mtok == Decimal(3)


def test_ending_an_override_returns_the_model_to_genai_prices_from_then_on_and_keeps_the_history():
    now = timezone.now()
    first = version(start=now - timedelta(days=3))

    ended = pricing.price_override_end(provider_id="openai", model=MODEL)

    assert ended.ends is True and ended.input_per_mtok is None
    assert cost_at(now - timedelta(days=1)) == Decimal(3)  # the old price stays the old price
    assert cost_at(timezone.now() + timedelta(seconds=1)) == genai_cost()
    assert list(PriceOverride.objects.values_list("pk", flat=True)) == [ended.pk, first.pk]
    assert pricing.price_override_end(provider_id="openai", model=MODEL) is None  # already ended


def test_an_override_by_preset_still_applies_when_the_provider_ids_override_ended():
    now = timezone.now()
    version(start=now - timedelta(days=2))
    PriceOverride.objects.create(
        provider_id="openai",
        model=MODEL,
        effective_from=now - timedelta(days=1),
        ends=True,
    )
    PriceOverride.objects.create(
        provider_id="my-openai-preset",
        model=MODEL,
        effective_from=now - timedelta(days=2),
        input_per_mtok=Decimal("0.5"),
        output_per_mtok=Decimal("0.5"),
    )
    cost = pricing.cost_for(
        provider_id="openai", preset="my-openai-preset", model=MODEL, local=False, tokens=MILLION
    )
    assert cost.amount == Decimal(1)


# --- Versions in effect never change ---------------------------------------------------------------


def test_a_version_in_effect_can_be_neither_edited_nor_deleted():
    effective = version(start=timezone.now() - timedelta(hours=1))
    effective.input_per_mtok = Decimal(9)
    with pytest.raises(PriceOverrideLocked):
        effective.save()
    with pytest.raises(PriceOverrideLocked):
        effective.delete()
    effective.refresh_from_db()
    assert effective.input_per_mtok == Decimal(1)


def test_a_scheduled_version_can_be_edited_and_deleted_before_it_starts():
    scheduled = version(start=timezone.now() + timedelta(days=1))
    scheduled.input_per_mtok = Decimal(9)
    scheduled.save()
    assert PriceOverride.objects.get(pk=scheduled.pk).input_per_mtok == Decimal(9)
    scheduled.delete()
    assert not PriceOverride.objects.exists()


def test_two_versions_of_a_model_cannot_start_at_the_same_instant():
    start = timezone.now() + timedelta(days=1)
    version(start=start)
    with pytest.raises(IntegrityError), transaction.atomic():
        version(start=start, input_price="7")


@pytest.mark.parametrize(
    "prices",
    [
        {"input_per_mtok": Decimal(-1), "output_per_mtok": Decimal(1)},
        {"input_per_mtok": Decimal(1), "output_per_mtok": Decimal(-1)},
        {"input_per_mtok": Decimal(1), "output_per_mtok": Decimal(1), "cached_input_per_mtok": -1},
        {"input_per_mtok": None, "output_per_mtok": Decimal(1)},
    ],
)
def test_the_database_refuses_negative_or_missing_prices(prices):
    with pytest.raises(IntegrityError), transaction.atomic():
        PriceOverride.objects.create(provider_id="openai", model=MODEL, **prices)


# --- Rows already priced ------------------------------------------------------------------------


def test_usage_rows_already_priced_never_change_when_a_new_price_starts(
    alice, make_credential, fake_provider
):
    fake_provider.configure(reply_tokens=10)
    credential = make_credential(alice, "openai")
    version(start=timezone.now() - timedelta(minutes=1), input_price="1000", output_price="1000")
    request = CompletionRequest(model=MODEL, messages=(Message("user", "Hi"),))
    run_completion(user=alice, credential_id=credential.pk, request=request)
    first = UsageRecord.objects.get()
    charged, snapshot = first.cost, first.price_snapshot

    version(start=timezone.now(), input_price="1", output_price="1")
    run_completion(user=alice, credential_id=credential.pk, request=request)

    first.refresh_from_db()
    second = UsageRecord.objects.exclude(pk=first.pk).get()
    assert (first.cost, first.price_snapshot) == (charged, snapshot)
    assert snapshot["input_per_mtok"] == "1000.000000" and snapshot["source"] == "override"
    assert second.cost * 1000 == charged  # same tokens, the new price
    assert second.price_snapshot["effective_from"] > snapshot["effective_from"]


def test_a_call_that_started_before_a_price_change_is_settled_at_the_old_price(alice):
    version(start=timezone.now() - timedelta(hours=1), input_price="1", output_price="2")
    row = usage_open(
        local=False, user=alice, preset="openai", provider_id="openai", model=MODEL, feature="api"
    )
    PriceOverride.objects.create(
        provider_id="openai",
        model=MODEL,
        effective_from=timezone.now(),
        input_per_mtok=Decimal(100),
        output_per_mtok=Decimal(100),
    )
    settled, _ = usage_settle(record=row, status="ok", tokens=MILLION, local=False, preset="openai")
    assert settled.cost == Decimal(3)
    assert settled.price_snapshot["input_per_mtok"] == "1.000000"


# --- Cache prices in an override -------------------------------------------------------------------


def test_an_override_prices_cached_prompt_tokens_at_its_cached_input_price():
    now = timezone.now()
    version(
        start=now - timedelta(hours=1),
        input_price="2",
        output_price="8",
        cached_input_per_mtok=Decimal("0.5"),
    )
    # 1M prompt tokens of which 600k came from the cache, 100k written to it (input price).
    tokens = Tokens(input=1_000_000, output=0, cache_read=600_000, cache_write=100_000)
    assert (
        cost_at(now, tokens)
        == Decimal("0.3") * 2 + Decimal("0.6") * Decimal("0.5") + Decimal("0.1") * 2
    )
    snapshot = pricing.cost_for(
        provider_id="openai", preset="openai", model=MODEL, local=False, tokens=tokens
    ).snapshot
    assert snapshot["cache_read_per_mtok"] == "0.500000"


def test_an_override_without_cache_prices_charges_cached_tokens_as_input():
    version(start=timezone.now() - timedelta(hours=1), input_price="2", output_price="8")
    tokens = Tokens(input=1_000_000, output=0, cache_read=900_000)
    assert cost_at(timezone.now(), tokens) == Decimal(2)


def test_cached_tokens_the_fake_provider_reports_are_charged_at_the_overrides_cache_prices(
    alice, make_credential, fake_provider
):
    fake_provider.configure(prompt_tokens=1200, cache_read_tokens=1000, reply_tokens=50)
    credential = make_credential(alice, "openai")
    version(
        start=timezone.now() - timedelta(minutes=1),
        input_price="10",
        output_price="20",
        cached_input_per_mtok=Decimal("1"),
    )
    request = CompletionRequest(model=MODEL, messages=(Message("user", "Hi"),))
    run_completion(user=alice, credential_id=credential.pk, request=request)
    row = UsageRecord.objects.get()
    assert (row.input_tokens, row.cache_read_tokens, row.output_tokens) == (1200, 1000, 50)
    # 200 uncached × $10 + 1,000 cached × $1 + 50 out × $20, per million.
    assert row.cost == Decimal(200 * 10 + 1000 * 1 + 50 * 20) / 1_000_000


def test_anthropic_cache_writes_the_fake_reports_are_charged_at_the_overrides_write_price(
    alice, make_credential, fake_provider
):
    fake_provider.configure(
        prompt_tokens=200, cache_read_tokens=1000, cache_write_tokens=500, reply_tokens=50
    )
    credential = make_credential(alice, "anthropic")
    PriceOverride.objects.create(
        provider_id="anthropic",
        model="claude-3-5-haiku-latest",
        effective_from=timezone.now() - timedelta(minutes=1),
        input_per_mtok=Decimal(4),
        output_per_mtok=Decimal(20),
        cached_input_per_mtok=Decimal("0.4"),
        cache_write_per_mtok=Decimal(5),
    )
    request = CompletionRequest(
        model="claude-3-5-haiku-latest", messages=(Message("user", "Hi"),), max_tokens=100
    )
    run_completion(user=alice, credential_id=credential.pk, request=request)
    row = UsageRecord.objects.get()
    assert (row.input_tokens, row.cache_read_tokens, row.cache_write_tokens) == (1700, 1000, 500)
    assert (
        row.cost
        == (Decimal(200 * 4) + Decimal(1000) * Decimal("0.4") + Decimal(500 * 5) + Decimal(50 * 20))
        / 1_000_000
    )


# --- The per-process copy ----------------------------------------------------------------------


def test_another_processs_new_price_is_seen_here_within_the_ttl(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(pricing, "_clock", lambda: clock[0])
    version(start=timezone.now() - timedelta(hours=1), input_price="1", output_price="2")
    assert cost_at(timezone.now()) == Decimal(3)  # this process read the overrides
    # Another process adds a version (no save hook runs here: bulk_create skips it).
    PriceOverride.objects.bulk_create(
        [
            PriceOverride(
                provider_id="openai",
                model=MODEL,
                effective_from=timezone.now(),
                input_per_mtok=Decimal(5),
                output_per_mtok=Decimal(5),
            )
        ]
    )
    clock[0] += pricing.OVERRIDES_TTL - 1
    assert cost_at(timezone.now()) == Decimal(3)  # still the copy
    clock[0] += 2
    assert cost_at(timezone.now()) == Decimal(10)


def test_a_price_scheduled_ahead_applies_at_its_exact_time_without_rereading(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(pricing, "_clock", lambda: clock[0])
    start = timezone.now() + timedelta(minutes=10)
    version(start=timezone.now() - timedelta(hours=1), input_price="1", output_price="2")
    version(start=start, input_price="5", output_price="5")
    assert cost_at(timezone.now()) == Decimal(3)
    queries = []
    from django.db import connection

    with connection.execute_wrapper(lambda *args: queries.append(args[1]) or args[0](*args[1:])):
        assert cost_at(start - timedelta(microseconds=1)) == Decimal(3)
        assert cost_at(start) == Decimal(10)
    assert queries == []


def test_saving_a_version_here_is_seen_here_at_once():
    assert cost_at(timezone.now()) == genai_cost()
    version(start=timezone.now())
    assert cost_at(timezone.now()) == Decimal(3)


# --- The admin ------------------------------------------------------------------------------------


@pytest.fixture
def root(db):
    user = User.objects.create_superuser("root", "root@example.com", "pw-root-123456")
    return user


@pytest.fixture
def admin_client(client, root):
    client.force_login(root)
    return client


def add_form(**fields) -> dict:
    data = {
        "provider_id": "openai",
        "model": MODEL,
        "effective_from_0": "",
        "effective_from_1": "",
        "input_per_mtok": "1",
        "output_per_mtok": "2",
        "cached_input_per_mtok": "",
        "cache_write_per_mtok": "",
        "note": "",
    }
    data.update(fields)
    return data


def test_an_admin_adds_a_version_that_starts_now_when_effective_from_is_left_empty(
    admin_client, root
):
    before = timezone.now()
    response = admin_client.post("/admin/billing/priceoverride/add/", add_form())
    assert response.status_code == 302
    created = PriceOverride.objects.get()
    assert before <= created.effective_from <= timezone.now()
    assert created.created_by == root


def test_the_admin_refuses_negative_prices_a_start_in_the_past_and_a_duplicate_start(
    admin_client,
):
    response = admin_client.post("/admin/billing/priceoverride/add/", add_form(input_per_mtok="-1"))
    assert response.status_code == 200
    assert "A price can&#x27;t be negative." in response.text

    past = timezone.localtime() - timedelta(days=1)
    response = admin_client.post(
        "/admin/billing/priceoverride/add/",
        add_form(effective_from_0=f"{past:%Y-%m-%d}", effective_from_1=f"{past:%H:%M:%S}"),
    )
    assert "can&#x27;t start in the past" in response.text

    later = (timezone.localtime() + timedelta(days=1)).replace(microsecond=0)
    when = {"effective_from_0": f"{later:%Y-%m-%d}", "effective_from_1": f"{later:%H:%M:%S}"}
    assert (
        admin_client.post("/admin/billing/priceoverride/add/", add_form(**when)).status_code == 302
    )
    response = admin_client.post("/admin/billing/priceoverride/add/", add_form(**when))
    assert response.status_code == 200
    assert "already exists" in response.text
    assert PriceOverride.objects.count() == 1


def test_the_admin_refuses_an_end_with_prices_and_a_price_without_output(admin_client):
    response = admin_client.post(
        "/admin/billing/priceoverride/add/", add_form(ends="on", input_per_mtok="1")
    )
    assert "An end of the override has no prices" in response.text
    response = admin_client.post("/admin/billing/priceoverride/add/", add_form(output_per_mtok=""))
    assert "Required (0 for free)." in response.text
    assert not PriceOverride.objects.exists()


def test_the_admin_shows_a_version_in_effect_read_only_with_the_models_history(admin_client):
    old = version(start=timezone.now() - timedelta(days=2), input_price="1")
    current = version(start=timezone.now() - timedelta(days=1), input_price="3")
    version(start=timezone.now() + timedelta(days=1), input_price="5")

    page = admin_client.get(f"/admin/billing/priceoverride/{current.pk}/change/")
    assert page.status_code == 200
    assert 'name="input_per_mtok"' not in page.text  # read-only
    assert "in effect (this one)" in page.text and "superseded" in page.text
    assert "scheduled" in page.text
    assert "Add a new version" in page.text
    assert "provider_id=openai&amp;model=gpt-4o-mini" in page.text
    assert f"/admin/billing/priceoverride/{current.pk}/delete/" not in page.text

    listing = admin_client.get("/admin/billing/priceoverride/")
    assert [s for s in ("superseded", "in effect", "scheduled") if s in listing.text] == [
        "superseded",
        "in effect",
        "scheduled",
    ]

    # Posting a change anyway changes nothing; deleting is forbidden.
    admin_client.post(
        f"/admin/billing/priceoverride/{old.pk}/change/", add_form(input_per_mtok="99")
    )
    old.refresh_from_db()
    assert old.input_per_mtok == Decimal(1)
    assert (
        admin_client.post(
            f"/admin/billing/priceoverride/{old.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    assert PriceOverride.objects.filter(pk=old.pk).exists()


def test_the_admin_edits_and_deletes_a_scheduled_version(admin_client):
    later = (timezone.localtime() + timedelta(days=1)).replace(microsecond=0)
    scheduled = version(start=later, input_price="5")
    response = admin_client.post(
        f"/admin/billing/priceoverride/{scheduled.pk}/change/",
        add_form(
            input_per_mtok="6",
            effective_from_0=f"{later:%Y-%m-%d}",
            effective_from_1=f"{later:%H:%M:%S}",
        ),
    )
    assert response.status_code == 302
    scheduled.refresh_from_db()
    assert scheduled.input_per_mtok == Decimal(6)
    response = admin_client.post(
        f"/admin/billing/priceoverride/{scheduled.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert not PriceOverride.objects.exists()


def test_the_admins_end_now_action_ends_the_selected_models_overrides(admin_client):
    current = version(start=timezone.now() - timedelta(days=1))
    response = admin_client.post(
        "/admin/billing/priceoverride/",
        {"action": "end_now", "_selected_action": [current.pk]},
    )
    assert response.status_code == 302
    assert PriceOverride.objects.filter(ends=True).count() == 1
    assert cost_at(timezone.now() + timedelta(seconds=1)) == genai_cost()


def test_only_staff_reach_the_price_admin(client_for, alice):
    response = client_for(alice).get("/admin/billing/priceoverride/")
    assert response.status_code == 302 and "/login/" in response["Location"]
