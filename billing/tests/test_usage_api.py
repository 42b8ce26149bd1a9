"""GET /api/usage/summary/: the dashboard's figures from the same selectors, the same filters and
the same rules (a foreign id is a 404, bad values a 400)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing import usage, usage_figures
from billing.models import CallStatus
from billing.tests.conftest import write_call

pytestmark = pytest.mark.django_db


def seed(alice, team, bob_teammate):
    write_call(user=alice, team=team, model="gpt-4o", cost=Decimal("4.12"), ttft_ms=100)
    write_call(user=bob_teammate, team=team, model="gpt-4o", cost=None, ttft_ms=300)
    write_call(
        user=bob_teammate,
        team=team,
        preset="anthropic",
        model="claude",
        cost=Decimal("0.5"),
        status=CallStatus.ERROR,
    )
    write_call(user=alice, model="mine", cost=Decimal("1"))


def test_the_summary_has_the_dashboards_figures_for_the_same_filters(
    alice, team, bob_teammate, api_for
):
    seed(alice, team, bob_teammate)
    response = api_for(alice).get("/api/usage/summary/", {"team": team.pk, "period": "7d"})
    assert response.status_code == 200, response.content
    body = response.json()
    figures = usage_figures.usage_figures(
        q=usage.usage_query_for(user=alice, team=team, period="7d")
    )
    assert body["totals"]["cost"] == "4.62" and body["totals"]["calls"] == figures.totals.calls
    assert body["totals"]["cost_display"] == figures.totals.cost_label == "$4.62 + 1 unpriced call"
    assert [m["model"] for m in body["models"]] == [m.model for m in figures.models]
    assert body["models"][0]["avg_ttft_ms"] == pytest.approx(200)
    assert len(body["days"]) == 7 and body["days"][-1]["cost_by_provider"]["openai"] == "4.12"
    assert (body["team"], body["period"], body["time_zone"]) == (team.pk, "7d", "UTC")
    assert body["notices"]["week_change_percent"] is None


def test_without_a_team_it_is_your_own_calls_and_filters_narrow_it(
    alice, team, bob_teammate, api_for
):
    seed(alice, team, bob_teammate)
    mine = api_for(alice).get("/api/usage/summary/").json()
    assert (mine["team"], mine["user"], mine["totals"]["cost"]) == (None, alice.pk, "5.12")
    errors = api_for(bob_teammate).get(
        "/api/usage/summary/", {"team": team.pk, "status": "error", "user": bob_teammate.pk}
    )
    assert errors.json()["totals"]["calls"] == 1


def test_foreign_ids_are_404_and_bad_values_400(
    alice, team, bob_teammate, charlie_outsider, api_for
):
    seed(alice, team, bob_teammate)
    outsider, member = api_for(charlie_outsider), api_for(bob_teammate)
    assert outsider.get("/api/usage/summary/", {"team": team.pk}).status_code == 404
    assert outsider.get("/api/usage/summary/", {"user": alice.pk}).status_code == 404
    assert member.get("/api/usage/summary/", {"team": team.pk, "user": alice.pk}).status_code == 404
    bad = member.get("/api/usage/summary/", {"period": "custom", "start": "2026-02-01"})
    assert bad.status_code == 400 and "custom range" in bad.content.decode()
    assert member.get("/api/usage/summary/", {"status": "running"}).status_code == 400
