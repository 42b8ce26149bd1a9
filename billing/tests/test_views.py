"""Settings → Budgets and the notifications page: who sees what, who may change what, what a
form refuses, and what the bell says."""

from __future__ import annotations

import re
from decimal import Decimal

from billing import services
from billing.models import Budget, BudgetWindow, Notification, UsageRecord
from billing.notifications import notification_create


def team_budget(team, alice, **fields) -> Budget:
    fields.setdefault("limit", Decimal("10"))
    return services.budget_create(actor=alice, owner_team=team, name="Acme monthly", **fields)


def form(**fields) -> dict:
    return {"limit": "5", "period": "month", "time_zone": "UTC", "thresholds": "50, 80", **fields}


def test_a_team_admin_adds_a_team_budget_on_one_provider(alice, team, client_for):
    response = client_for(alice).post(
        "/settings/budgets/add/",
        form(name="Acme on Anthropic", owner_team=team.pk, preset="anthropic", hard="on"),
    )

    assert response.status_code == 302
    budget = Budget.objects.get()
    assert (budget.owner_team, budget.preset, budget.limit, budget.hard) == (
        team,
        "anthropic",
        Decimal("5"),
        True,
    )
    assert budget.thresholds == [50, 80]
    page = client_for(alice).get("/settings/budgets/").content.decode()
    assert "Acme on Anthropic" in page and "team Acme · Anthropic" in page


def test_members_and_viewers_see_team_budgets_and_what_is_left_but_cannot_change_them(
    alice, team, bob_teammate, vera_viewer, client_for
):
    budget = team_budget(team, alice, user=bob_teammate)
    UsageRecord.objects.create(
        user=bob_teammate,
        team=team,
        preset="openai",
        model="gpt-4o",
        status="ok",
        cost=Decimal("2.5"),
        cost_source="provider",
    )
    for person in (bob_teammate, vera_viewer):
        client = client_for(person)
        page = client.get("/settings/budgets/").content.decode()
        row = re.search(rf'id="budget-{budget.pk}".*?</tr>', page, re.S).group(0)
        assert "$2.50 of $10.00" in row and "$7.50" in row
        assert "managed by the team's admins" in row
        assert ("applies to you" in row) is (person == bob_teammate)
        assert client.post(f"/settings/budgets/{budget.pk}/edit/", form()).status_code == 403
        assert client.post(f"/settings/budgets/{budget.pk}/delete/").status_code == 403
    assert Budget.objects.filter(pk=budget.pk).exists()


def test_the_form_explains_what_it_refuses(alice, team, client_for):
    client = client_for(alice)
    response = client.post(
        "/settings/budgets/add/",
        form(limit="0", time_zone="Mars/Olympus", thresholds="50, 2000", preset="nope"),
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "“Mars/Olympus” is not a time zone" in page
    assert "whole percentage from 1 to 1000" in page
    assert "Ensure this value is greater than or equal to 0.01" in page
    assert "Select a valid choice" in page
    assert not Budget.objects.exists()


def test_changing_what_a_budget_covers_restarts_its_period_from_the_ledger(alice, team, client_for):
    budget = team_budget(team, alice)
    BudgetWindow.objects.create(
        budget=budget, start="2026-11-01T00:00Z", end="2026-12-01T00:00Z", spent=Decimal("3")
    )
    response = client_for(alice).post(
        f"/settings/budgets/{budget.pk}/edit/", form(name="Acme monthly", model="gpt-4o")
    )
    assert response.status_code == 302
    budget.refresh_from_db()
    assert (budget.model, budget.limit) == ("gpt-4o", Decimal("5"))
    assert not BudgetWindow.objects.filter(budget=budget).exists()


def test_the_bell_counts_unread_notifications_and_the_page_marks_them_read(alice, client_for):
    for i in range(3):
        notification_create(
            user=alice, kind="budget", title=f"Budget {i} passed 80 %", url="/settings/budgets/"
        )
    client = client_for(alice)

    home = client.get("/").content.decode()
    assert 'aria-label="Notifications: 3 unread"' in home
    page = client.get("/notifications/").content.decode()
    assert page.count('class="notification unread"') == 3
    assert "Budget 2 passed 80 %" in page

    assert client.post("/notifications/read/", {"next": "https://evil.example/"}).url == (
        "/notifications/"
    )
    assert not Notification.objects.filter(read_at__isnull=True).exists()
    assert 'aria-label="Notifications"' in client.get("/").content.decode()


def test_an_empty_budget_list_says_what_budgets_do(alice, client_for):
    page = client_for(alice).get("/settings/budgets/").content.decode()
    assert "No budgets yet." in page and "Add a budget" in page


def test_a_budgets_spend_counts_the_unpriced_calls_it_leaves_out(
    alice, team, bob_teammate, client_for
):
    budget = team_budget(team, alice, hard=False)
    for cost, source in ((Decimal("1.25"), "provider"), (None, "unpriced"), (None, "unpriced")):
        UsageRecord.objects.create(
            user=bob_teammate,
            team=team,
            preset="openai",
            model="my-finetune",
            status="ok",
            cost=cost,
            cost_source=source,
        )
    page = client_for(bob_teammate).get("/settings/budgets/").content.decode()
    row = re.search(rf'id="budget-{budget.pk}".*?</tr>', page, re.S).group(0)
    assert "$1.25 of $10.00" in row and "+ 2 unpriced calls" in row
