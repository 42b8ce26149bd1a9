"""Budget alerts: once per threshold per period, to the budget's managers — a notification (the
bell), an email, and a stored webhook event — even when concurrent calls cross together."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection

from accounts.models import Role
from billing.budgets import BudgetExceeded, budget_reserve, budget_settle
from billing.models import Budget, BudgetAlert, Notification, PriceOverride
from conftest import make_user
from webhooks.models import Event

MODEL = "priced-model"


@pytest.fixture(autouse=True)
def immediate_tasks(settings):
    """Run the email task at once (the database backend needs a worker)."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}


@pytest.fixture
def acme(team, alice, bob_teammate, vera_viewer, make_credential):
    PriceOverride.objects.create(
        provider_id="openai", model=MODEL, input_per_mtok=0, output_per_mtok=1000
    )
    ada = make_user("ada_admin")
    team.memberships.create(user=ada, role=Role.ADMIN)
    budget = Budget(name="Acme monthly", limit=Decimal("1.00"), thresholds=[50, 80])
    budget.set_owner(team)
    budget.save()
    key = make_credential(team, "openai", name="Acme OpenAI")
    return {"budget": budget, "key": key, "managers": [alice, ada], "bob": bob_teammate}


def spend(world, cost: str, user=None):
    try:
        reservation = budget_reserve(
            user=user or world["bob"],
            team=world["key"].owner_team_id,
            credential_id=world["key"].pk,
            provider_id="openai",
            model=MODEL,
            max_tokens=30,  # held: $0.03
            preset="openai",
        )
    except BudgetExceeded as refused:
        refused.deliver_alert()  # as the gate does, once its transaction is over
        raise
    budget_settle(reservation, cost=Decimal(cost))


def titled(fragment: str) -> list[Notification]:
    return list(Notification.objects.filter(title__contains=fragment).order_by("user_id"))


@pytest.mark.django_db(transaction=True)
def test_crossing_80_percent_tells_each_manager_once_in_the_app_and_by_email(acme):
    spend(acme, "0.60")  # crosses 50 %
    mail.outbox.clear()

    spend(acme, "0.25")  # crosses 80 %
    spend(acme, "0.05")  # still past 80 %: nothing new

    eighty = titled("passed 80 %")
    assert [n.user for n in eighty] == sorted(acme["managers"], key=lambda u: u.pk)
    assert all("$0.85 of $1.00 spent" in n.body and "It resets" in n.body for n in eighty)
    assert all(n.url == "/settings/budgets/" for n in eighty)
    assert sorted(m.to[0] for m in mail.outbox) == ["ada_admin@example.com", "alice@example.com"]
    assert all("passed 80 %" in m.subject for m in mail.outbox)
    assert all("http://" in m.body and "/settings/budgets/" in m.body for m in mail.outbox)
    assert not Notification.objects.filter(user=acme["bob"]).exists()  # members aren't managers
    events = Event.objects.filter(type="budget.threshold_crossed").order_by("id")
    assert [e.payload["threshold"] for e in events] == [50, 80]
    assert events[1].owner_team_id == acme["budget"].owner_team_id
    assert events[1].payload["spent"] == "0.85" and events[1].payload["limit"] == "1"


@pytest.mark.django_db(transaction=True)
def test_calls_crossing_a_threshold_together_alert_exactly_once(acme):
    spend(acme, "0.70")
    mail.outbox.clear()
    start = threading.Barrier(8)
    errors = []

    def call():
        try:
            start.wait()
            spend(acme, "0.03")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert BudgetAlert.objects.filter(threshold=80).count() == 1
    assert len(titled("passed 80 %")) == 2  # one per manager
    assert len(mail.outbox) == 2
    assert Event.objects.filter(type="budget.threshold_crossed", payload__threshold=80).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_refused_call_alerts_that_the_limit_is_reached_once_per_period(acme):
    spend(acme, "0.99")
    mail.outbox.clear()

    for _ in range(3):
        with pytest.raises(BudgetExceeded):
            spend(acme, "0.01")

    reached = titled("reached its limit")
    assert len(reached) == 2 and "A call was refused" in reached[0].body
    assert len(mail.outbox) == 2
    [event] = Event.objects.filter(type="budget.exceeded")
    assert event.payload["refused"] is True and event.payload["threshold"] == 100


@pytest.mark.django_db(transaction=True)
def test_a_personal_budget_alerts_only_its_owner(alice, make_credential):
    PriceOverride.objects.create(
        provider_id="openai", model=MODEL, input_per_mtok=0, output_per_mtok=1000
    )
    budget = Budget(name="Mine", limit=Decimal("1.00"), thresholds=[50], hard=False)
    budget.set_owner(alice)
    budget.save()
    key = make_credential(alice, "openai")
    world = {"key": key, "bob": alice}

    spend(world, "0.70")

    assert [n.user for n in Notification.objects.all()] == [alice]
    [event] = Event.objects.all()
    assert (event.owner_user_id, event.owner_team_id) == (alice.pk, None)
