"""REST for budgets and notifications: the same rules as the pages, clear 4xx on bad input."""

from __future__ import annotations

from decimal import Decimal

from billing.models import Budget
from billing.notifications import notification_create
from tests.api_client import assert_error

BODY = {"limit": "25", "period": "week", "time_zone": "Europe/Paris", "thresholds": [80, 50]}


def test_an_admin_creates_reads_changes_and_deletes_a_team_budget(alice, team, api_for):
    api = api_for(alice)

    created = api.post(
        "/api/budgets/", {**BODY, "owner_team": team.pk, "name": "Acme weekly", "hard": True}
    )

    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["owner_team"], body["limit"], body["thresholds"]) == (team.pk, "25", [50, 80])
    assert body["scope"] == "team Acme"
    assert body["current"]["spent"] == "0" and body["current"]["left"] == "25"
    assert body["current"]["resets_at"].endswith(("+00:00", "Z"))
    assert body["can_manage"] is True and body["applies_to_me"] is True
    pk = body["id"]

    listed = api.get("/api/budgets/", {"team": team.pk}).json()["results"]
    assert [b["id"] for b in listed] == [pk]
    changed = api.patch(f"/api/budgets/{pk}/", {"limit": "30", "owner_team": None})
    assert changed.status_code == 200 and changed.json()["limit"] == "30"
    assert Budget.objects.get(pk=pk).owner_team_id == team.pk  # the owner never changes
    assert api.delete(f"/api/budgets/{pk}/").status_code == 204
    assert not Budget.objects.exists()


def test_bad_budget_input_gets_a_clear_400_and_saves_nothing(alice, api_for):
    api = api_for(alice)
    for body, field in (
        ({**BODY, "limit": "-1"}, "limit"),
        ({**BODY, "limit": "1e30"}, "limit"),
        ({**BODY, "thresholds": list(range(1, 13))}, "thresholds"),
        ({**BODY, "thresholds": [0]}, "thresholds"),
        ({**BODY, "time_zone": "Nowhere/Land"}, "time_zone"),
        ({**BODY, "preset": "not-a-provider"}, "preset"),
        ({**BODY, "period": "fortnight"}, "period"),
        ({**BODY, "user": "x"}, None),
    ):
        response = api.post("/api/budgets/", body)
        assert response.status_code in (400, 404), (body, response.content)
        if field:
            assert response.status_code == 400
            assert field in response.content.decode(), (field, response.content)
    assert not Budget.objects.exists()


def test_a_viewer_reads_a_team_budget_but_cannot_change_it(alice, team, vera_viewer, api_for):
    pk = api_for(alice).post("/api/budgets/", {**BODY, "owner_team": team.pk}).json()["id"]
    api = api_for(vera_viewer)

    assert api.get(f"/api/budgets/{pk}/").json()["can_manage"] is False
    assert_error(api.patch(f"/api/budgets/{pk}/", {"limit": "1"}), 403, "permission_denied")
    assert Budget.objects.get(pk=pk).limit == Decimal("25")


def test_notifications_are_listed_and_marked_read_only_for_their_owner(
    alice, charlie_outsider, api_for
):
    mine = notification_create(user=alice, kind="budget", title="Budget passed 80 %")
    theirs = notification_create(user=charlie_outsider, kind="budget", title="Not yours")

    listed = api_for(alice).get("/api/notifications/").json()["results"]
    assert [n["title"] for n in listed] == ["Budget passed 80 %"]
    marked = api_for(alice).post("/api/notifications/read/", {"ids": [mine.pk, theirs.pk]})
    assert marked.json() == {"marked": 1}
    theirs.refresh_from_db()
    assert theirs.read_at is None
