"""Access-matrix cases for the Usage dashboard: its three routes and every id its filters carry
(team, member, credential) — as query parameters, since the dashboard is a GET form.

Rules: a team's usage is readable by its members and viewers; only its admins and owners may
single out another member (anyone may single out themself); a credential filter takes a key of
the scope shown. Any other id is a 404, never a silently unfiltered page."""

from __future__ import annotations

from tests.access_matrix import Case, FieldCase
from tests.access_matrix import team_rule as _rule

team_q = lambda w: {"team": w["team"].pk}  # noqa: E731

USAGE_CASES: list[Case] = []
for route in ("billing:index", "billing:usage_export", "billing:usage_calls"):
    USAGE_CASES += [
        Case(route, _rule(200, 200, 200, charlie=200), note="own calls"),
        Case(route, _rule(200, 200, 200), query=team_q, note="a team's calls"),
        Case(
            route,
            _rule(200, 404, 404),
            query=lambda w: {"team": w["team"].pk, "user": w["alice"].pk},
            note="alice singled out: her team's managers and herself only",
        ),
        Case(
            route,
            _rule(200, 200, 200),
            query=lambda w: {"team": w["team"].pk, "credential": w["team_credential"].pk},
            note="the team's key",
        ),
        Case(
            route,
            _rule(200, 404, 404),
            query=lambda w: {"credential": w["alice_credential"].pk},
            note="alice's own key",
        ),
        Case(
            route,
            _rule(404, 404, 404),
            query=lambda w: {"team": w["team"].pk, "credential": w["alice_credential"].pk},
            note="a personal key is not one of the team's",
        ),
    ]

# The REST twin: the same filters, the same answers (401 without a token).
_api = dict(anonymous=401)
USAGE_CASES += [
    Case("api-usage-summary", _rule(200, 200, 200, charlie=200, **_api), api=True, note="own"),
    Case("api-usage-summary", _rule(200, 200, 200, **_api), query=team_q, api=True, note="team"),
    Case(
        "api-usage-summary",
        _rule(200, 404, 404, **_api),
        query=lambda w: {"team": w["team"].pk, "user": w["alice"].pk},
        api=True,
        note="alice singled out",
    ),
    Case(
        "api-usage-summary",
        _rule(200, 200, 200, **_api),
        query=lambda w: {"team": w["team"].pk, "credential": w["team_credential"].pk},
        api=True,
        note="the team's key",
    ),
    Case(
        "api-usage-summary",
        _rule(200, 404, 404, **_api),
        query=lambda w: {"credential": w["alice_credential"].pk},
        api=True,
        note="alice's own key",
    ),
]

USAGE_FIELD_CASES: list[FieldCase] = [
    FieldCase(
        "billing.forms.UsageFilterForm.team",
        Case("billing:index", _rule(200, 200, 200), query=team_q, note="team field"),
    ),
    FieldCase(
        "billing.forms.UsageFilterForm.user",
        Case(
            "billing:index",
            _rule(404, 200, 404),
            query=lambda w: {"user": w["bob_teammate"].pk},
            note="bob singled out in own calls: only bob himself",
        ),
    ),
    FieldCase(
        "billing.forms.UsageFilterForm.credential",
        Case(
            "billing:index",
            _rule(200, 200, 200),
            query=lambda w: {"credential": w["team_credential"].pk},
            note="the team's key in own calls",
        ),
    ),
]
