"""The Usage dashboard in a real browser (issue 10): seeded calls over a month, the filters
(from the mouse and the keyboard, through htmx, the URL following), eight charts visible in light
and dark with their tables, a bad range explained in place, the drill-down to a call's
conversation; axe-clean in both schemes. Screenshots at 1280 and 390 px, light and dark."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from playwright.sync_api import expect

from billing import services as billing_services
from billing.models import CallStatus, CostSource
from billing.selectors import budget_statuses
from billing.tests.conftest import write_call
from chats.models import Conversation

WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 390, "height": 844}
MODELS = [
    ("openai", "openai", "gpt-4o", Decimal("0.02")),
    ("openai", "openai", "gpt-4o-mini", Decimal("0.002")),
    ("anthropic", "anthropic", "claude-3-5-haiku-latest", Decimal("0.01")),
    ("groq", "groq", "llama-3.1-8b-instant", None),  # unpriced
    ("ollama", "", "llama3.2", Decimal(0)),  # local
]


@pytest.fixture
def shots(screenshot):
    def take(page, name: str) -> None:
        size = page.viewport_size
        for theme in ("light", "dark"):
            page.evaluate("(t) => { document.documentElement.dataset.theme = t; }", theme)
            for label, viewport in (("1280", WIDE), ("390", NARROW)):
                page.set_viewport_size(viewport)
                page.wait_for_timeout(80)
                screenshot(page, f"{name}-{theme}-{label}", full_page=True)
        page.evaluate("() => { delete document.documentElement.dataset.theme; }")
        page.set_viewport_size(size)

    return take


@pytest.fixture
def month_of_calls(alice, team, bob_teammate):
    """A month of Acme's calls: five models on four providers, errors, unpriced and local calls,
    one conversation; a budget at 85 %."""
    rng = random.Random(10)
    now = timezone.now()
    conversation = Conversation.objects.create(owner_team=team, title="Pricing questions")
    for back in range(0, 32):
        for _ in range(rng.randint(2, 6)):
            preset, provider_id, model, price = rng.choice(MODELS)
            output = rng.randint(50, 900)
            write_call(
                user=rng.choice([alice, bob_teammate]),
                team=team,
                preset=preset,
                provider_id=provider_id,
                model=model,
                feature=rng.choice(["chat", "playground", "api"]),
                status=CallStatus.ERROR if rng.random() < 0.08 else CallStatus.OK,
                at=now - timedelta(days=back, minutes=rng.randint(0, 600)),
                cost=None if price is None else price * rng.randint(1, 8),
                cost_source=(
                    CostSource.UNPRICED
                    if price is None
                    else CostSource.LOCAL
                    if preset == "ollama"
                    else CostSource.PROVIDER
                ),
                input_tokens=rng.randint(100, 4000),
                output_tokens=output,
                ttft_ms=rng.uniform(150, 1200) * (0.3 if preset == "groq" else 1),
                tokens_per_second=rng.uniform(30, 90) * (5 if preset == "groq" else 1),
                context={"conversation": conversation.pk},
            )
    write_call(user=alice, team=team, model="gpt-4o", cost=Decimal("1"), at=now)
    budget = billing_services.budget_create(
        actor=alice, owner_team=team, name="Acme monthly", limit=Decimal("100000"), hard=False
    )
    [status] = budget_statuses(user=alice, budgets=[budget])
    billing_services.budget_update(
        actor=alice, budget=budget, limit=(status.spent / Decimal("0.85")).quantize(Decimal("0.01"))
    )
    return {"conversation": conversation, "budget": budget}


def test_alice_filters_her_teams_month_and_drills_down_to_a_conversation(
    page, login, shots, alice, team, month_of_calls
):
    login(page, alice)
    page.goto("/usage/")
    # Her own calls first (the switcher is on Personal): she has made none of her own outside
    # the team, but the team's count as hers — so the dashboard is not empty.
    expect(page.get_by_test_id("usage-scope")).to_contain_text("Your own calls")

    page.get_by_test_id("usage-filters").get_by_label("Whose calls").select_option(
        label="Team Acme"
    )
    expect(page.get_by_test_id("usage-scope")).to_contain_text("Every call charged to Acme")
    expect(page.get_by_test_id("charts").locator("svg[role=img]")).to_have_count(8)
    assert f"team={team.pk}" in page.url  # htmx pushed the filters into the address
    expect(page.get_by_test_id("notice-budget")).to_contain_text("Acme monthly")
    total = page.get_by_test_id("total-cost")
    expect(total).to_contain_text("unpriced call")
    for key in ("spend", "share", "models", "requests", "tokens", "ttft", "tps", "errors"):
        expect(page.get_by_test_id(f"chart-{key}").locator("svg")).to_be_visible()
    shots(page, "usage-team-month")

    # The keyboard: open a chart's table, then narrow to one provider and submit with Enter.
    summary = page.get_by_test_id("chart-spend").locator("summary")
    summary.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("chart-spend").locator("table")).to_be_visible()
    page.get_by_test_id("usage-filters").get_by_label("Provider").focus()
    page.get_by_test_id("usage-filters").get_by_label("Provider").select_option("anthropic")
    expect(page.get_by_test_id("model-row")).to_have_count(1)
    expect(page.get_by_test_id("model-row")).to_contain_text("claude-3-5-haiku-latest")
    page.get_by_test_id("usage-filters").get_by_label("Provider").select_option("")
    expect(page.get_by_test_id("model-row")).to_have_count(5)
    model = page.get_by_test_id("usage-filters").get_by_label("Model", exact=True)
    model.fill("gpt-4o-mini")
    model.press("Enter")
    expect(page.get_by_test_id("model-row")).to_have_count(1)
    expect(page.get_by_test_id("model-row")).to_contain_text("gpt-4o-mini")
    model.fill("")
    model.press("Enter")
    expect(page.get_by_test_id("model-row")).to_have_count(5)

    # A backwards range is explained in place (a 400 the form swaps in), nothing else lost.
    page.get_by_test_id("usage-filters").get_by_label("Period").select_option("custom")
    expect(page.get_by_test_id("usage-scope")).to_contain_text("Custom range")
    page.locator("#id_start").fill("2026-03-10")
    page.locator("#id_end").fill("2026-03-01")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_test_id("filter-errors")).to_contain_text(
        "The first day is after the last day."
    )
    # The browser logs the 400 it was meant to get; nothing else may be in the console.
    page.console_errors[:] = [e for e in page.console_errors if "status of 400" not in e]
    page.get_by_test_id("usage-filters").get_by_label("Period").select_option("7d")
    expect(page.get_by_test_id("filter-errors")).to_have_count(0)
    expect(page.get_by_test_id("charts").locator("svg[role=img]")).to_have_count(8)
    shots(page, "usage-team-week")

    # Drill down from the table to the calls, and from a call to its conversation.
    page.get_by_role("link", name="Calls to gpt-4o", exact=True).click()
    expect(page.get_by_role("heading", name="Calls", level=1)).to_be_visible()
    rows = page.get_by_test_id("call-row")
    expect(rows.first).to_contain_text("gpt-4o")
    shots(page, "usage-calls")
    page.get_by_role("link", name="Conversation").first.click()
    expect(page).to_have_url(f"/chat/{month_of_calls['conversation'].pk}/")


def test_the_dashboard_is_axe_clean_in_light_and_dark(page, login, alice, team, month_of_calls):
    axe = Axe()
    login(page, alice)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for url in (f"/usage/?team={team.pk}", f"/usage/calls/?team={team.pk}"):
            page.goto(url)
            page.locator("details.chart-table").evaluate_all(
                "(all) => all.forEach(d => d.open = true)"
            )
            results = axe.run(page)
            serious = [
                f"{v['id']}: {v['help']} {[n['target'] for n in v['nodes'][:3]]}"
                for v in results.response["violations"]
                if v["impact"] in {"serious", "critical"}
            ]
            assert not serious, (scheme, url, serious)


def test_a_new_user_sees_the_empty_state(page, login, shots, charlie_outsider):
    login(page, charlie_outsider)
    page.goto("/usage/")
    expect(page.get_by_test_id("empty-state")).to_contain_text("No calls yet")
    shots(page, "usage-empty")
