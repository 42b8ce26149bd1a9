"""The Usage dashboard's selectors on real PostgreSQL: scopes and every filter, days in the
instance's zone, figures that equal the ledger, notices, the drill-down's pages and links."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Count, Sum
from django.http import Http404
from django.test.utils import override_settings
from django.utils import timezone

from accounts import services as account_services
from billing import ledger_pages, services, usage, usage_figures
from billing.models import CallStatus, CostSource, UsageRecord
from billing.tests.conftest import random_calls, write_call

pytestmark = pytest.mark.django_db

DAY = date(2026, 3, 10)


def noon(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def query(user, team=None, **filters):
    filters.setdefault("period", "30d")
    return usage.usage_query_for(user=user, team=team, day=DAY, **filters)


# --- Scope and access ----------------------------------------------------------------------------


def test_alice_sees_her_own_calls_everywhere_and_the_teams_calls_in_the_team(
    alice, team, bob_teammate
):
    write_call(user=alice, at=noon(DAY), cost=Decimal("1"))
    write_call(user=alice, team=team, at=noon(DAY), cost=Decimal("2"))
    write_call(user=bob_teammate, team=team, at=noon(DAY), cost=Decimal("4"))
    write_call(user=bob_teammate, at=noon(DAY), cost=Decimal("8"))  # bob's personal call
    assert usage_figures.usage_figures(q=query(alice)).totals.cost == Decimal("3")
    assert usage_figures.usage_figures(q=query(alice, team)).totals.cost == Decimal("6")
    assert usage_figures.usage_figures(q=query(bob_teammate, team)).totals.cost == Decimal("6")


def test_alice_as_owner_may_single_out_bob_but_bob_may_only_single_out_himself(
    alice, team, bob_teammate, vera_viewer
):
    write_call(user=alice, team=team, at=noon(DAY), cost=Decimal("2"))
    write_call(user=bob_teammate, team=team, at=noon(DAY), cost=Decimal("4"))
    assert (
        usage_figures.usage_figures(q=query(alice, team, member=bob_teammate.pk)).totals.cost == 4
    )
    assert (
        usage_figures.usage_figures(q=query(bob_teammate, team, member=bob_teammate.pk)).totals.cost
        == 4
    )
    with pytest.raises(Http404):
        query(bob_teammate, team, member=alice.pk)
    with pytest.raises(Http404):
        query(vera_viewer, team, member=bob_teammate.pk)


def test_charlie_outsider_can_neither_read_the_team_nor_name_its_people_or_keys(
    alice, team, bob_teammate, charlie_outsider, make_key
):
    key = make_key(team)
    with pytest.raises(Http404):
        query(charlie_outsider, team)
    with pytest.raises(Http404):
        query(charlie_outsider, member=bob_teammate.pk)
    with pytest.raises(Http404):
        query(charlie_outsider, credential=key.pk)
    with pytest.raises(Http404):
        query(alice, member="1; DROP TABLE")  # not an id at all


def test_a_credential_filter_only_takes_a_key_of_the_scope_shown(alice, team, make_key):
    own, shared = make_key(alice), make_key(team, "anthropic")
    write_call(user=alice, team=team, credential=shared, at=noon(DAY), cost=Decimal("5"))
    write_call(user=alice, team=team, at=noon(DAY), cost=Decimal("1"))
    assert usage_figures.usage_figures(q=query(alice, team, credential=shared.pk)).totals.cost == 5
    with pytest.raises(Http404):  # alice's own key is not one of the team's
        query(alice, team, credential=own.pk)


def test_vera_viewer_reads_the_teams_figures(alice, team, vera_viewer):
    write_call(user=alice, team=team, at=noon(DAY), cost=Decimal("2"))
    figures = usage_figures.usage_figures(q=query(vera_viewer, team))
    assert figures.totals.cost == 2 and not figures.query.can_single_out


# --- Periods and days --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "first"),
    [
        ("today", DAY),
        ("7d", date(2026, 3, 4)),
        ("30d", date(2026, 2, 9)),
        ("month", date(2026, 3, 1)),
    ],
)
def test_each_period_counts_the_calls_of_its_days(alice, period, first):
    for back in range(0, 40):
        write_call(user=alice, at=noon(DAY - timedelta(days=back)), cost=Decimal("1"))
    figures = usage_figures.usage_figures(q=query(alice, period=period))
    assert (figures.query.start, figures.query.end) == (first, DAY)
    assert figures.totals.calls == (DAY - first).days + 1
    assert figures.days[0].day == first and len(figures.days) == figures.totals.calls


def test_a_custom_range_counts_its_days_inclusive(alice):
    for back in range(0, 10):
        write_call(user=alice, at=noon(DAY - timedelta(days=back)))
    q = query(alice, period="custom", start=date(2026, 3, 2), end=date(2026, 3, 4))
    assert usage_figures.usage_figures(q=q).totals.calls == 3


@override_settings(TIME_ZONE="America/New_York")
def test_days_are_the_instances_days_on_either_side_of_its_midnight(alice):
    # 03:30 UTC on 10 March is still 9 March in New York; 05:30 UTC is 10 March there.
    with timezone.override("Asia/Tokyo"):  # the caller's zone changes nothing
        write_call(user=alice, at=datetime(2026, 3, 10, 3, 30, tzinfo=UTC), cost=Decimal("1"))
        write_call(user=alice, at=datetime(2026, 3, 10, 5, 30, tzinfo=UTC), cost=Decimal("2"))
    today = usage_figures.usage_figures(q=query(alice, period="today"))
    assert today.totals.cost == Decimal("2")
    week = usage_figures.usage_figures(q=query(alice, period="7d"))
    assert [(d.day.day, d.cost) for d in week.days[-2:]] == [(9, 1), (10, 2)]
    # The drill-down uses the same days.
    calls = ledger_pages.usage_calls(q=query(alice, period="today"))
    assert [row.record.cost for row in calls.rows] == [Decimal("2")]


# --- Filters, figures equal to the ledger ---------------------------------------------------------


def test_every_filter_gives_the_same_figures_as_the_ledger(
    alice, team, bob_teammate, charlie_outsider, make_key
):
    rng = random.Random(7)
    keys = [None, make_key(team), make_key(team, "anthropic")]
    random_calls(
        rng,
        n=300,
        people=[alice, bob_teammate],
        teams=[team, None],
        keys=keys,
        start=noon(DAY - timedelta(days=12), 0),
        days=13,
    )
    cases = [
        {},
        {"member": bob_teammate.pk},
        {"credential": keys[1].pk},
        {"preset": "anthropic"},
        {"model": "gpt-4o"},
        {"feature": "playground"},
        {"feature": usage.EMBEDDING},
        {"status": CallStatus.ERROR},
        {"preset": "openai", "status": CallStatus.OK, "feature": "chat"},
    ]
    for filters in cases:
        q = query(alice, team, period="7d", **filters)
        figures = usage_figures.usage_figures(q=q)
        ledger = usage.narrow(
            UsageRecord.objects.filter(
                created_at__gte=noon(q.start, 0), created_at__lt=noon(q.end + timedelta(days=1), 0)
            ),
            q,
        ).aggregate(cost=Sum("cost"), calls=Count("id"), output=Sum("output_tokens"))
        assert figures.totals.calls == ledger["calls"], filters
        assert figures.totals.cost == (ledger["cost"] or 0), filters
        assert figures.totals.output_tokens == (ledger["output"] or 0), filters
        assert sum(d.calls for d in figures.days) == ledger["calls"], filters
        assert sum(m.calls for m in figures.models) == ledger["calls"], filters


def test_a_model_row_is_honest_about_cost_speed_and_errors(alice):
    at = noon(DAY)
    write_call(
        user=alice,
        at=at,
        cost=Decimal("4.12"),
        ttft_ms=100,
        output_tokens=100,
        tokens_per_second=50,
    )
    write_call(user=alice, at=at, cost=None, ttft_ms=300, output_tokens=300, tokens_per_second=100)
    write_call(
        user=alice, at=at, cost=None, status=CallStatus.ERROR, ttft_ms=None, tokens_per_second=None
    )
    write_call(user=alice, at=at, cost=None, cost_source=CostSource.UNPRICED)
    [row] = usage_figures.usage_figures(q=query(alice)).models
    assert row.cost_label == "$4.12 + 3 unpriced calls"
    assert row.avg_ttft_ms == pytest.approx((100 + 300 + 200) / 3)
    # 450 tokens over 2 s + 3 s + 1 s of generating — not the average of 50, 100 and 50.
    assert row.tokens_per_second == pytest.approx((100 + 300 + 50) / (2 + 3 + 1))
    assert (row.errors, row.error_rate) == (1, 25)


def test_models_come_costliest_first_and_providers_add_up(alice):
    write_call(user=alice, at=noon(DAY), model="cheap", cost=Decimal("0.1"))
    write_call(user=alice, at=noon(DAY), model="dear", cost=Decimal("3"))
    write_call(user=alice, at=noon(DAY), model="claude", preset="anthropic", cost=Decimal("1"))
    figures = usage_figures.usage_figures(q=query(alice))
    assert [m.model for m in figures.models] == ["dear", "claude", "cheap"]
    assert [(p[0], p[2]) for p in figures.providers] == [
        ("openai", Decimal("3.1")),
        ("anthropic", Decimal("1")),
    ]


# --- Notices -----------------------------------------------------------------------------------------


def test_the_last_week_is_compared_with_the_four_weeks_before(alice):
    now = noon(DAY)
    for back in range(1, 36):  # $1 a day for the 4 weeks before, $2 a day last week
        write_call(
            user=alice, at=noon(DAY - timedelta(days=back)), cost=Decimal(2 if back <= 7 else 1)
        )
    notices = usage_figures.usage_notices(q=query(alice), now=now)
    assert (notices.week, notices.week_average, notices.history_days) == (14, 7, 28)
    assert notices.week_change == 100


def test_a_short_history_is_averaged_over_the_days_it_has_not_over_four_weeks(alice):
    for back in range(1, 15):  # 14 days of $1: 7 days of history before the last week
        write_call(user=alice, at=noon(DAY - timedelta(days=back)), cost=Decimal(1))
    notices = usage_figures.usage_notices(q=query(alice), now=noon(DAY))
    assert (notices.history_days, notices.week_average, notices.week_change) == (7, 7, 0)
    write_call(user=alice, at=noon(DAY - timedelta(days=3)), cost=Decimal(1))
    assert usage_figures.usage_notices(q=query(alice), now=noon(DAY)).week_change == 14


def test_no_history_means_no_comparison(alice):
    write_call(user=alice, at=noon(DAY - timedelta(days=1)), cost=Decimal(1))
    notices = usage_figures.usage_notices(q=query(alice), now=noon(DAY))
    assert notices.week_change is None


def test_month_end_is_projected_from_this_months_pace(alice):
    # 9.5 days into March (31 days) with $19 spent: $2 a day → $62.
    for back in range(0, 10):
        write_call(
            user=alice,
            at=noon(DAY - timedelta(days=back), 0),
            cost=Decimal(2) if back else Decimal(1),
        )
    write_call(user=alice, at=noon(date(2026, 2, 28)), cost=Decimal(100))  # last month: not counted
    notices = usage_figures.usage_notices(q=query(alice), now=noon(DAY))
    assert notices.month_to_date == 19
    assert notices.projected == pytest.approx(Decimal(62), abs=Decimal("0.01"))


def test_budgets_near_their_limit_are_named_in_the_teams_notices(alice, team, bob_teammate):
    budget = services.budget_create(
        actor=alice, owner_team=team, name="Acme monthly", limit=Decimal(10)
    )
    services.budget_create(actor=alice, owner_team=team, name="Roomy", limit=Decimal(1000))
    write_call(user=bob_teammate, team=team, cost=Decimal("9"))
    [warning] = usage_figures.usage_notices(
        q=usage.usage_query_for(user=bob_teammate, team=team)
    ).budgets
    assert warning.budget == budget and warning.percent == 90
    # In his own calls' view, bob sees the budgets his calls count against — not another
    # team's of alice's, nor a personal budget of hers.
    other = account_services.team_create(user=alice, name="Other")
    services.budget_create(actor=alice, owner_team=other, name="Other's", limit=Decimal(1))
    services.budget_create(actor=alice, name="Alice's own", limit=Decimal(1))
    write_call(user=alice, team=other, cost=Decimal("5"))
    write_call(user=alice, cost=Decimal("5"))
    own = usage_figures.usage_notices(q=usage.usage_query_for(user=bob_teammate, team=None)).budgets
    assert [s.budget.name for s in own] == ["Acme monthly"]


# --- The drill-down ---------------------------------------------------------------------------------


def test_the_calls_come_newest_first_a_page_at_a_time_with_no_row_twice(alice):
    base = noon(DAY)
    for i in range(ledger_pages.PAGE_SIZE * 2 + 5):
        # Pairs of calls at the same instant: the cursor's id breaks the tie.
        write_call(user=alice, at=base - timedelta(minutes=i // 2), model=f"m{i}")
    seen, cursor = [], None
    while True:
        page = ledger_pages.usage_calls(q=query(alice), before=cursor)
        seen += [row.record.pk for row in page.rows]
        if not page.next_cursor:
            break
        cursor = ledger_pages.parse_cursor(page.next_cursor)
    assert len(seen) == len(set(seen)) == ledger_pages.PAGE_SIZE * 2 + 5
    stamps = list(
        UsageRecord.objects.filter(pk__in=seen)
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)
    )
    assert seen == stamps


@pytest.mark.parametrize(
    "bad", ["", "abc", "12-", "-5", "1-0", "9" * 30 + "-1", "9" * 18 + "-1", "12-²", "１２-3"]
)
def test_a_cursor_that_is_not_ours_is_refused(bad):
    assert ledger_pages.parse_cursor(bad) is None


def test_a_call_links_to_its_conversation_only_for_people_who_may_read_it(
    alice, team, bob_teammate
):
    from chats.models import Conversation

    mine = Conversation.objects.create(owner_user=alice, title="Alice's")
    shared = Conversation.objects.create(owner_team=team, title="Team chat")
    write_call(user=alice, team=team, at=noon(DAY), context={"conversation": mine.pk})
    write_call(user=bob_teammate, team=team, at=noon(DAY), context={"conversation": shared.pk})
    write_call(user=bob_teammate, team=team, at=noon(DAY), context={"conversation": "x"})
    links = {
        row.record.context.get("conversation"): row.link
        for row in ledger_pages.usage_calls(q=query(bob_teammate, team)).rows
    }
    assert links[shared.pk] == f"/chat/{shared.pk}/"
    assert links[mine.pk] is None  # alice's own conversation: bob sees the call, not the chat
    assert links["x"] is None
    alice_links = {
        r.record.context.get("conversation"): r.link
        for r in ledger_pages.usage_calls(q=query(alice, team)).rows
    }
    assert alice_links[mine.pk] == f"/chat/{mine.pk}/"


def test_a_playground_call_links_to_its_comparison_for_people_who_may_read_it(
    alice, team, bob_teammate
):
    from playground.models import Comparison, Run

    shared = Comparison(title="Team comparison")
    shared.set_owner(team)
    shared.save()
    team_run = Run(comparison=shared)
    team_run.set_owner(team)
    team_run.save()
    private = Comparison(title="Alice's")
    private.set_owner(alice)
    private.save()
    private_run = Run(comparison=private)
    private_run.set_owner(alice)
    private_run.save()
    write_call(
        user=bob_teammate,
        team=team,
        at=noon(DAY),
        feature="playground",
        context={"run": team_run.pk},
    )
    write_call(
        user=alice, team=team, at=noon(DAY), feature="playground", context={"run": private_run.pk}
    )
    links = {
        row.record.context["run"]: row.link
        for row in ledger_pages.usage_calls(q=query(bob_teammate, team)).rows
    }
    assert links == {team_run.pk: f"/playground/{shared.pk}/", private_run.pk: None}
