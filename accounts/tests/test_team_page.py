"""The team page says up front what the last owner cannot do (issue 9, bug 21)."""

from __future__ import annotations

from accounts.models import Role


def test_a_sole_owner_sees_why_they_cant_leave_instead_of_a_confirmation(
    team, alice, bob_teammate, client_for
):
    """BUG: "Leave team" asked "Leave Acme?" first, then refused."""
    page = client_for(alice).get(f"/settings/teams/{team.pk}/").content.decode()

    assert "Leave Acme?" not in page
    assert 'type="button" disabled aria-describedby="leave-why">Leave team</button>' in page
    assert "You're the only owner: make someone else an owner first" in page


def test_with_a_second_owner_leaving_is_offered_with_a_confirmation(
    team, alice, bob_teammate, client_for
):
    team.memberships.filter(user=bob_teammate).update(role=Role.OWNER)

    page = client_for(alice).get(f"/settings/teams/{team.pk}/").content.decode()

    assert 'data-confirm="Leave Acme? You lose access' in page
    assert "You're the only owner" not in page


def test_tables_have_no_empty_header_cells(team, alice, client_for):
    client = client_for(alice)
    client.post("/settings/tokens/", {"name": "CI", "scope": "read"})
    for url in (f"/settings/teams/{team.pk}/", "/settings/teams/", "/settings/tokens/"):
        assert "<th></th>" not in client.get(url).content.decode(), url
