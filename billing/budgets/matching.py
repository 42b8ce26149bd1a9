"""Which budgets a call counts against (one indexed query)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import connection

# Which budgets a call counts against (parameters user, team, credential, preset, model). Also
# a piece of the gate's one-statement admission (providers.admission), which asks only whether
# any matches.
MATCH_WHERE = """
is_active
  AND ((owner_team_id = %(team)s AND (user_id IS NULL OR user_id = %(user)s))
       OR (%(team)s IS NULL AND owner_user_id = %(user)s))
  AND (credential_id IS NULL OR credential_id = %(credential)s)
  AND preset IN ('', %(preset)s)
  AND model IN ('', %(model)s)
"""
_MATCH_SQL = f"""
SELECT id, name, owner_user_id, owner_team_id, user_id, credential_id, preset, model,
       period, time_zone, "limit", hard, thresholds
FROM billing_budget
WHERE {MATCH_WHERE}
ORDER BY id
"""  # noqa: S608 - a constant; values are parameters


@dataclass(frozen=True)
class MatchedBudget:
    id: int
    name: str
    owner_user_id: int | None
    owner_team_id: int | None
    user_id: int | None
    credential_id: int | None
    preset: str
    model: str
    period: str
    time_zone: str
    limit: Decimal
    hard: bool
    thresholds: tuple[int, ...]


def budgets_matching(
    *, user_id: int | None, team_id: int | None, credential_id, preset: str, model: str
) -> list[MatchedBudget]:
    """The active budgets whose scope matches a call. A team budget matches every call charged
    to its team (narrowed by member, credential, provider, model); a personal budget matches the
    calls its owner pays for personally."""
    with connection.cursor() as cursor:
        cursor.execute(
            _MATCH_SQL,
            {
                "user": user_id,
                "team": team_id,
                "credential": credential_id,
                "preset": preset,
                "model": model,
            },
        )
        rows = cursor.fetchall()
    return [MatchedBudget(*row[:-1], tuple(row[-1] or ())) for row in rows]
