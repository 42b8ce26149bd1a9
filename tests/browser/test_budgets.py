"""Budgets in a real browser (issue 10): a refusal names the budget in chat and in Try it; the
budget list shows what is left; the bell counts the alert and the notifications page clears it;
adding a budget with the keyboard. Screenshots at 1280 and 390 px, light and dark."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from billing.models import Budget, PriceOverride, UsageRecord
from chats import services as chat_services
from providers.models import ProviderModel

WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 390, "height": 844}
REFUSAL = re.compile(r"Budget “Acme monthly” \(team Acme, monthly\) has \$0\.01 left of \$1\.00")


@pytest.fixture
def shots(screenshot):
    """`shots(page, name)`: the state at 1280 and 390 px wide, light and dark."""

    def take(page, name: str) -> None:
        size = page.viewport_size
        for theme in ("light", "dark"):
            page.evaluate("(t) => { document.documentElement.dataset.theme = t; }", theme)
            for label, viewport in (("1280", WIDE), ("390", NARROW)):
                page.set_viewport_size(viewport)
                page.wait_for_timeout(50)
                screenshot(page, f"{name}-{theme}-{label}", full_page=label == "1280")
        page.evaluate("() => { delete document.documentElement.dataset.theme; }")
        page.set_viewport_size(size)

    return take


@pytest.fixture
def spent_out(alice, team, make_credential):
    """Acme's $1.00 hard monthly budget with $0.99 already spent on its OpenAI key."""
    PriceOverride.objects.create(
        provider_id="openai", model="gpt-4o-mini", input_per_mtok=1, output_per_mtok=1000
    )
    key = make_credential(team, "openai", name="Acme OpenAI")
    ProviderModel.objects.create(credential=key, model_id="gpt-4o-mini", kind="chat")
    UsageRecord.objects.create(
        user=alice,
        team=team,
        credential=key,
        preset="openai",
        provider_id="openai",
        model="gpt-4o-mini",
        status="ok",
        cost=Decimal("0.99"),
        cost_source="provider",
    )
    budget = Budget(name="Acme monthly", limit=Decimal("1.00"), thresholds=[50, 80])
    budget.set_owner(team)
    budget.save()
    return {"key": key, "budget": budget}


def test_a_refusal_names_the_budget_in_chat_and_try_it_and_the_bell_tells_the_owner(
    page, login, shots, alice, team, spent_out, fake_provider
):
    conversation = chat_services.conversation_start(
        actor=alice, owner_team=team, credential=spent_out["key"], model="gpt-4o-mini"
    )
    login(page, alice)

    page.goto(f"/chat/{conversation.pk}/")
    expect(page.locator("#connection")).to_have_text("Live")
    page.fill("#composer-input", "Hello?")
    page.locator("#composer-input").press("Enter")
    error = page.locator("article.msg.role-assistant .msg-error")
    expect(error).to_contain_text("budget_exceeded")
    expect(error).to_contain_text(REFUSAL)
    expect(error).to_contain_text("It resets")
    assert fake_provider.requests == []
    shots(page, "budget-refused-chat")

    page.goto(f"/settings/providers/{spent_out['key'].pk}/")
    page.fill("#try-model", "gpt-4o-mini")
    page.fill("#try-message", "Hello?")
    page.locator("#try").get_by_role("button", name="Send").click()
    meta = page.locator("#try .try-meta")
    expect(meta).to_contain_text("budget_exceeded: ")
    expect(meta).to_contain_text(REFUSAL)
    shots(page, "budget-refused-try")

    # The refusal told the budget's owner once: the bell counts it.
    bell = page.get_by_test_id("bell")
    expect(bell).to_have_attribute("aria-label", "Notifications: 1 unread")
    bell.click()
    expect(page.get_by_role("heading", name="Notifications")).to_be_visible()
    expect(page.get_by_test_id("notifications")).to_contain_text(
        "Budget “Acme monthly” reached its limit"
    )
    shots(page, "notifications")
    page.get_by_role("button", name="Mark all read").click()
    expect(page.get_by_test_id("bell")).to_have_attribute("aria-label", "Notifications")

    # The list shows what is left and when it resets.
    page.goto("/settings/budgets/")
    row = page.locator(f"#budget-{spent_out['budget'].pk}")
    expect(row).to_contain_text("$0.99 of $1.00 · 99 %")
    expect(row.get_by_test_id("left")).to_have_text("$0.01")
    expect(row).to_contain_text("resets")
    shots(page, "budgets-list")


def test_alice_adds_a_team_budget_on_one_provider_with_the_keyboard(
    page, login, shots, alice, team
):
    login(page, alice)
    page.goto("/settings/budgets/")
    expect(page.get_by_test_id("empty-state")).to_contain_text("No budgets yet.")
    page.get_by_role("link", name="Add a budget").click()

    page.get_by_label("Name").fill("Acme on Anthropic")
    page.get_by_label("Whose budget").select_option(label="Acme")
    page.get_by_label("Provider").select_option(label="Anthropic")
    page.get_by_label("Period").select_option(label="Weekly (from Monday)")
    page.get_by_label("Time zone").fill("Europe/Paris")
    page.get_by_label("Limit (USD)").fill("25")
    page.get_by_label("Alert at (% of the limit)").fill("50, 80, 100")
    shots(page, "budget-form")
    page.get_by_label("Limit (USD)").press("Enter")

    expect(page.locator(".messages")).to_contain_text("Budget “Acme on Anthropic” saved.")
    budget = Budget.objects.get()
    row = page.locator(f"#budget-{budget.pk}")
    expect(row).to_contain_text("team Acme · Anthropic")
    expect(row).to_contain_text("Weekly")
    expect(row.get_by_test_id("left")).to_have_text("$25.00")
    assert (budget.owner_team_id, budget.preset, budget.time_zone) == (
        team.pk,
        "anthropic",
        "Europe/Paris",
    )
