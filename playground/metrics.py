"""What a run's answers say side by side: badges (fastest, cheapest, most tokens) and the
numbers behind them. Only complete answers compete; a badge everyone shares says nothing and
is not given."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from playground.models import Answer, AnswerStatus

FASTEST, CHEAPEST, MOST_TOKENS = "fastest", "cheapest", "most tokens"


def _best(answers: list[Answer], value: Callable[[Answer], object], *, lowest: bool) -> set[int]:
    scored = [(value(a), a.pk) for a in answers if value(a) is not None]
    if len(scored) < 2:
        return set()
    values = [v for v, _ in scored]
    best = min(values) if lowest else max(values)
    winners = {pk for v, pk in scored if v == best}
    return set() if len(winners) == len(scored) else winners


def badges_for(answers: Iterable[Answer]) -> dict[int, list[str]]:
    """{answer id: ["fastest", …]} over the run's complete answers."""
    done = [a for a in answers if a.status == AnswerStatus.COMPLETE]
    badges: dict[int, list[str]] = {a.pk: [] for a in done}
    rules = (
        (FASTEST, lambda a: a.duration_ms, True),
        (CHEAPEST, lambda a: a.cost if a.cost_source != "unpriced" else None, True),
        (MOST_TOKENS, lambda a: a.output_tokens, False),
    )
    for name, value, lowest in rules:
        for pk in _best(done, value, lowest=lowest):
            badges[pk].append(name)
    return {pk: names for pk, names in badges.items() if names}
