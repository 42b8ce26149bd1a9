"""The Usage pages: the dashboard (empty states, the team switcher, filters as a GET form and
through htmx, charts with text alternatives under the CSP), the CSV, the calls behind the
figures — and who may see what."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.middleware import SESSION_KEY
from billing import ledger_pages
from billing.models import CallStatus, CostSource
from billing.tests.conftest import write_call

pytestmark = pytest.mark.django_db


def seed(alice, team, bob_teammate):
    now = timezone.now()
    write_call(user=alice, team=team, model="gpt-4o", cost=Decimal("4.12"), at=now)
    write_call(user=bob_teammate, team=team, model="gpt-4o", cost=None, at=now)
    write_call(user=bob_teammate, team=team, model="gpt-4o", cost=None, at=now - timedelta(days=1))
    write_call(
        user=bob_teammate,
        team=team,
        preset="anthropic",
        provider_id="anthropic",
        model="claude-3-5-haiku-latest",
        cost=Decimal("0.5"),
        status=CallStatus.ERROR,
        at=now - timedelta(days=2),
    )
    write_call(user=alice, model="personal-model", cost=Decimal("1"), at=now)


def in_team(client, team):
    session = client.session
    session[SESSION_KEY] = team.pk
    session.save()
    return client


def test_a_new_user_gets_an_empty_state_with_ways_to_start(alice, client_for):
    response = client_for(alice).get("/usage/")
    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="empty-state"' in page and "No calls yet" in page
    assert "Start a chat" in page and 'data-testid="charts"' not in page


def test_alice_sees_totals_eight_charts_with_text_alternatives_and_the_model_table(
    alice, team, bob_teammate, client_for
):
    seed(alice, team, bob_teammate)
    page = in_team(client_for(alice), team).get("/usage/").content.decode()
    assert "Every call charged to <strong>Acme</strong>" in page
    assert "$4.62 + 2 unpriced calls" in page  # the total says what it leaves out
    charts = re.findall(r'<svg class="plot [a-z]+"[^>]*role="img"', page)
    assert len(charts) == 8
    assert len(re.findall(r"<title id=\"chart-[a-z]+-title\">", page)) == 8
    assert len(re.findall(r"<desc id=\"chart-[a-z]+-desc\">", page)) == 8
    assert page.count('<details class="chart-table small">') == 8
    rows = re.findall(r'data-testid="model-row">.*?</tr>', page, re.S)
    assert [re.search(r'usage-model">([^<]+)', r).group(1) for r in rows] == [
        "gpt-4o",
        "claude-3-5-haiku-latest",
    ]
    assert "$4.12 + 2 unpriced calls" in rows[0]
    assert "personal-model" not in page  # alice's own call is not the team's


def test_nothing_in_the_page_needs_inline_script_or_style(alice, team, bob_teammate, client_for):
    seed(alice, team, bob_teammate)
    page = in_team(client_for(alice), team).get("/usage/").content.decode()
    assert " style=" not in page
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)
    assert not re.search(r"\son[a-z]+=", page)


def test_own_calls_are_shown_when_the_switcher_is_on_personal(
    alice, team, bob_teammate, client_for
):
    seed(alice, team, bob_teammate)
    page = client_for(alice).get("/usage/").content.decode()
    assert "Your own calls" in page and "personal-model" in page
    assert "$5.12" in page  # her team call and her personal one


def test_a_filter_change_through_htmx_answers_only_the_results(
    alice, team, bob_teammate, client_for
):
    seed(alice, team, bob_teammate)
    response = client_for(alice).get(
        "/usage/",
        {"team": team.pk, "provider": "anthropic", "partial": "results"},
        headers={"HX-Request": "true"},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith('<div id="usage-results"') and "<html" not in page
    # The form stays; the fields that depend on the results come along out of band.
    assert '<div class="usage-scoped-fields" id="usage-scoped-fields" hx-swap-oob="true">' in page
    assert '<datalist id="usage-models" hx-swap-oob="true">' in page
    assert response["HX-Push-Url"] == f"/usage/?team={team.pk}&provider=anthropic&period=30d"
    assert "claude-3-5-haiku-latest" in page and ">gpt-4o<" not in page


def test_the_filters_work_as_a_plain_get_form_without_script(alice, team, bob_teammate, client_for):
    seed(alice, team, bob_teammate)
    page = client_for(alice).get("/usage/", {"team": team.pk, "status": "error"}).content.decode()
    assert '<form class="card usage-filters" method="get"' in page
    assert '<option value="error" selected>' in page
    assert 'data-testid="total-calls">1<' in page


def test_a_bad_custom_range_is_a_400_that_says_why_and_shows_the_default_period(alice, client_for):
    write_call(user=alice)
    response = client_for(alice).get(
        "/usage/", {"period": "custom", "start": "2026-03-10", "end": "2026-03-01"}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "The first day is after the last day." in page and "last 30 days without it" in page


@pytest.mark.parametrize(
    "params",
    [
        {"period": "custom", "start": "2026-01-01", "end": "2027-06-01"},
        {"period": "custom", "start": "0001-01-01", "end": "0001-01-02"},
        {"period": "custom", "start": "9999-12-30", "end": "9999-12-31"},
        {"period": "custom", "start": "not a day", "end": ""},
        {"period": "forever"},
        {"status": "running"},
        {"feature": "x" * 50},
        {"model": "m" * 201},
    ],
)
def test_out_of_range_or_unknown_filter_values_are_400_never_500(alice, client_for, params):
    for url in ("/usage/", "/usage/calls/", "/usage/export.csv"):
        assert client_for(alice).get(url, params).status_code == 400, (url, params)


def test_ids_alice_may_not_use_are_404_in_every_filter_and_page(
    alice, team, bob_teammate, vera_viewer, charlie_outsider, client_for, make_key
):
    key = make_key(team)
    seed(alice, team, bob_teammate)
    outsider = client_for(charlie_outsider)
    for url in ("/usage/", "/usage/calls/", "/usage/export.csv"):
        assert outsider.get(url, {"team": team.pk}).status_code == 404
        assert outsider.get(url, {"credential": key.pk}).status_code == 404
        assert outsider.get(url, {"user": bob_teammate.pk}).status_code == 404
        assert outsider.get(url, {"team": "2²"}).status_code == 404
        # A member singles out only themself; a viewer likewise.
        assert (
            client_for(bob_teammate).get(url, {"team": team.pk, "user": alice.pk}).status_code
            == 404
        )
        assert (
            client_for(vera_viewer).get(url, {"team": team.pk, "user": bob_teammate.pk}).status_code
            == 404
        )
        assert (
            client_for(alice).get(url, {"team": team.pk, "user": bob_teammate.pk}).status_code
            == 200
        )


def test_vera_viewer_reads_the_teams_usage_but_cannot_single_anyone_out(
    alice, team, bob_teammate, vera_viewer, client_for
):
    seed(alice, team, bob_teammate)
    page = client_for(vera_viewer).get("/usage/", {"team": team.pk}).content.decode()
    assert "$4.62 + 2 unpriced calls" in page
    assert f'<option value="{vera_viewer.pk}">Only me</option>' in page
    assert f'value="{bob_teammate.pk}"' not in page


def test_the_csv_has_the_tables_rows_for_the_same_filters_with_formulas_defused(
    alice, team, bob_teammate, client_for
):
    seed(alice, team, bob_teammate)
    write_call(user=alice, team=team, model='=HYPERLINK("http://x")', cost=Decimal("0.01"))
    response = client_for(alice).get("/usage/export.csv", {"team": team.pk, "provider": "openai"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["model"] for r in rows] == ["gpt-4o", '\'=HYPERLINK("http://x")']
    assert rows[0]["cost_usd"] == "4.12" and rows[0]["unpriced_calls"] == "2"
    assert rows[0]["cost"] == "$4.12 + 2 unpriced calls"


def test_the_calls_page_lists_the_views_calls_with_who_and_pages_by_cursor(
    alice, team, bob_teammate, client_for
):
    seed(alice, team, bob_teammate)
    for i in range(ledger_pages.PAGE_SIZE):
        write_call(
            user=bob_teammate, team=team, model="bulk", at=timezone.now() - timedelta(minutes=i)
        )
    client = client_for(alice)
    first = client.get("/usage/calls/", {"team": team.pk}).content.decode()
    assert first.count('data-testid="call-row"') == ledger_pages.PAGE_SIZE
    older = re.search(r'href="\?([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = client.get(f"/usage/calls/?{older}").content.decode()
    assert second.count('data-testid="call-row"') == 4  # 54 calls in the team
    assert "bob_teammate" in second and "personal-model" not in first + second
    assert client.get("/usage/calls/", {"team": team.pk, "before": "nonsense"}).status_code == 400


def test_a_model_rows_calls_link_narrows_the_drill_down_to_that_model(
    alice, team, bob_teammate, client_for
):
    seed(alice, team, bob_teammate)
    page = client_for(alice).get("/usage/", {"team": team.pk}).content.decode()
    link = re.search(r'href="(/usage/calls/\?[^"]+)" aria-label="Calls to claude', page).group(1)
    calls = client_for(alice).get(link.replace("&amp;", "&")).content.decode()
    assert calls.count('data-testid="call-row"') == 1 and "claude-3-5-haiku-latest" in calls


def test_estimated_costs_are_named_in_the_total(alice, client_for):
    write_call(user=alice, cost=Decimal("0.42"), cost_source=CostSource.ESTIMATED)
    page = client_for(alice).get("/usage/").content.decode()
    assert "$0.42 (1 estimated)" in page
    assert "of it estimated from locally counted tokens" in page


def test_a_stale_running_call_is_settled_before_the_dashboard_adds_up(alice, client_for):
    from billing.services import usage_open

    row = usage_open(local=False, user=alice, preset="openai", provider_id="openai", model="m")
    type(row).objects.filter(pk=row.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    page = client_for(alice).get("/usage/").content.decode()
    assert 'data-testid="total-calls">1<' in page
