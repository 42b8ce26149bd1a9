"""Ranking models from arena votes: a Bradley–Terry fit with bootstrap confidence intervals, and
the position bias of the votes. Pure functions over (model on the left, model on the right,
outcome) triples; no ORM here.

- Bradley–Terry: P(i beats j) = p_i / (p_i + p_j), fitted by Hunter's MM iteration.
- Ties and "both bad" count as half a win for each side (the Chatbot Arena convention): they
  pull two ratings together instead of being thrown away or counted as losses.
- A weak prior — one virtual tie per model, spread evenly over all the others — keeps the fit
  finite and connected when a model has only wins or only losses (or two groups never met),
  and matters less as votes accumulate.
- Ratings are on the Elo scale (400 points = 10× the odds), centred on 1000.
- 95 % intervals: the 2.5th and 97.5th percentiles of the ratings refitted on bootstrap
  resamples of the votes (a multinomial draw over the distinct vote patterns, so the cost
  depends on the number of patterns, not of votes), never narrower than the normal
  approximation from the fit's information (±1.96 standard errors). The floor matters with few
  votes: every resample of a single vote is that same vote, so the bootstrap alone would claim
  certainty it doesn't have. Seeded: the same votes give the same page.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

A, B, TIE, BOTH_BAD = "a", "b", "tie", "both_bad"
OUTCOMES = (A, B, TIE, BOTH_BAD)
SCALE, CENTRE = 400.0, 1000.0
PRIOR_TIES = 1.0  # virtual ties of each model against the reference
BOOTSTRAP_SAMPLES = 200
SEED = 20261124


@dataclass(frozen=True)
class Vote:
    left: str  # the model shown as A
    right: str  # the model shown as B
    outcome: str  # a | b | tie | both_bad


@dataclass(frozen=True)
class Standing:
    model: str
    rating: float
    low: float  # 95 % interval
    high: float
    votes: int  # battles the model was in
    wins: int
    losses: int
    ties: int  # ties and "both bad"
    rank: int = 0

    @property
    def win_rate(self) -> float | None:
        decisive = self.wins + self.losses
        return self.wins / decisive if decisive else None


@dataclass(frozen=True)
class PositionBias:
    decisive: int  # votes for A or B
    left_wins: int
    ties: int
    share: float | None  # left wins / decisive
    low: float | None  # Wilson 95 % interval of the share
    high: float | None

    @property
    def verdict(self) -> str:
        if self.share is None:
            return "no decisive votes yet"
        if self.low is not None and self.low > 0.5:
            return "the left answer is favoured"
        if self.high is not None and self.high < 0.5:
            return "the right answer is favoured"
        return "no clear position bias"


def _patterns(votes: Iterable[Vote]) -> Counter:
    """Votes as (winner-or-first, loser-or-second, score of the first) patterns with counts."""
    patterns: Counter = Counter()
    for vote in votes:
        if vote.left == vote.right or vote.outcome not in OUTCOMES:
            continue  # a model never faces itself; unknown outcomes are not votes
        if vote.outcome == A:
            patterns[(vote.left, vote.right, 1.0)] += 1
        elif vote.outcome == B:
            patterns[(vote.right, vote.left, 1.0)] += 1
        else:
            first, second = sorted((vote.left, vote.right))
            patterns[(first, second, 0.5)] += 1
    return patterns


def fit(
    patterns: dict,
    models: list[str],
    *,
    iterations: int = 5000,
    tol: float = 1e-9,
    start: dict[str, float] | None = None,
) -> dict[str, float]:
    """Bradley–Terry strengths by MM (normalized each step: only ratios are defined), with the
    prior; returns ratings on the Elo scale, centred. `start` (ratings) warm-starts it."""
    wins = dict.fromkeys(models, 0.0)
    games: dict[str, dict[str, float]] = {m: defaultdict(float) for m in models}
    for (first, second, score), count in patterns.items():
        if not count:
            continue
        wins[first] += score * count
        wins[second] += (1 - score) * count
        games[first][second] += count
        games[second][first] += count
    if len(models) > 1:  # the prior: one virtual tie per model, spread over all the others
        weight = PRIOR_TIES / (len(models) - 1)
        for model in models:
            wins[model] += PRIOR_TIES * 0.5
            for other in models:
                if other != model:
                    games[model][other] += weight
    strength = (
        {m: 10 ** ((start[m] - CENTRE) / SCALE) for m in models}
        if start
        else dict.fromkeys(models, 1.0)
    )
    for _ in range(iterations):
        updated = {}
        for model in models:
            denominator = sum(
                count / (strength[model] + strength[other]) for other, count in games[model].items()
            )
            updated[model] = wins[model] / denominator if denominator else strength[model]
        scale = math.exp(sum(math.log(v) for v in updated.values()) / len(updated))
        updated = {m: v / scale for m, v in updated.items()}
        changed = max(abs(math.log(updated[m] / strength[m])) for m in models)
        strength = updated
        if changed < tol:
            break
    return {m: CENTRE + SCALE * math.log10(s) for m, s in strength.items()}


def standard_errors(
    patterns: dict, models: list[str], ratings: dict[str, float]
) -> dict[str, float]:
    """Each rating's standard error (Elo points) from the fit's observed information, with the
    prior's virtual ties counted as the fit counts them (the diagonal: the other ratings held)."""
    strength = {m: 10 ** ((r - CENTRE) / SCALE) for m, r in ratings.items()}
    information = dict.fromkeys(models, 0.0)

    def add(a: str, b: str, count: float) -> None:
        p = strength[a] / (strength[a] + strength[b])
        information[a] += count * p * (1 - p)
        information[b] += count * p * (1 - p)

    for (first, second, _), count in patterns.items():
        add(first, second, count)
    if len(models) > 1:
        weight = PRIOR_TIES / (len(models) - 1)
        for i, a in enumerate(models):
            for b in models[i + 1 :]:
                add(a, b, 2 * weight)  # each side's half of the virtual game, as in fit()
    per_logit = SCALE / math.log(10)
    return {
        m: per_logit / math.sqrt(information[m]) if information[m] else float("inf") for m in models
    }


def _resample(patterns: Counter, rng: random.Random) -> Counter:
    """A bootstrap resample of the votes: multinomial over patterns via conditional binomials."""
    total = sum(patterns.values())
    left, drawn = total, Counter()
    remaining_weight = float(total)
    for pattern, count in patterns.items():
        if left <= 0:
            break
        p = min(1.0, count / remaining_weight) if remaining_weight > 0 else 0.0
        k = rng.binomialvariate(left, p) if p < 1.0 else left
        drawn[pattern] = k
        left -= k
        remaining_weight -= count
    return drawn


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def leaderboard(
    votes: Iterable[Vote], *, samples: int = BOOTSTRAP_SAMPLES, seed: int = SEED
) -> list[Standing]:
    votes = list(votes)
    patterns = _patterns(votes)
    models = sorted({m for pattern in patterns for m in pattern[:2]})
    if not models:
        return []
    ratings = fit(patterns, models)
    rng = random.Random(seed)  # noqa: S311 - bootstrap resampling, not secrets
    boot: dict[str, list[float]] = {m: [] for m in models}
    for _ in range(samples):
        sample = fit(_resample(patterns, rng), models, tol=1e-5, start=ratings)
        for model in models:
            boot[model].append(sample[model])
    counts = {m: Counter() for m in models}
    for (first, second, score), count in patterns.items():
        if score == 1.0:
            counts[first]["wins"] += count
            counts[second]["losses"] += count
        else:
            counts[first]["ties"] += count
            counts[second]["ties"] += count
    errors = standard_errors(patterns, models, ratings)
    z = 1.959963984540054

    def interval(model: str) -> tuple[float, float]:
        low, high = ratings[model] - z * errors[model], ratings[model] + z * errors[model]
        if samples:
            low = min(low, _percentile(boot[model], 0.025))
            high = max(high, _percentile(boot[model], 0.975))
        return low, high

    standings = [
        Standing(
            model=model,
            rating=ratings[model],
            low=interval(model)[0],
            high=interval(model)[1],
            votes=sum(counts[model].values()),
            wins=counts[model]["wins"],
            losses=counts[model]["losses"],
            ties=counts[model]["ties"],
        )
        for model in models
    ]
    standings.sort(key=lambda s: (-s.rating, s.model))
    # Rank as the arena does: one plus the number of models whose interval lies wholly above.
    return [
        Standing(**{**s.__dict__, "rank": 1 + sum(other.low > s.high for other in standings)})
        for s in standings
    ]


def position_bias(votes: Iterable[Vote]) -> PositionBias:
    decisive = left_wins = ties = 0
    for vote in votes:
        if vote.outcome == A:
            decisive += 1
            left_wins += 1
        elif vote.outcome == B:
            decisive += 1
        elif vote.outcome in (TIE, BOTH_BAD):
            ties += 1
    if not decisive:
        return PositionBias(0, 0, ties, None, None, None)
    share = left_wins / decisive
    z = 1.959963984540054
    centre = (share + z * z / (2 * decisive)) / (1 + z * z / decisive)
    margin = (
        z
        * math.sqrt(share * (1 - share) / decisive + z * z / (4 * decisive**2))
        / (1 + z * z / decisive)
    )
    return PositionBias(decisive, left_wins, ties, share, centre - margin, centre + margin)
