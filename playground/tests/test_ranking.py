"""The leaderboard's maths (playground.ranking) against seeded vote sets with a known ranking.

ACCEPTANCE (issue 12): "Leaderboard maths tested against a seeded vote set with a known ranking
(and CIs that shrink with more votes)"."""

from __future__ import annotations

import math
import random

from playground.ranking import Vote, fit, leaderboard, position_bias

# True strengths on the Elo scale: a clear order, equal gaps of 150 points.
TRUE = {"alpha": 1225.0, "bravo": 1075.0, "charlie": 925.0, "delta": 775.0}


def simulate(
    n: int, *, seed: int = 7, tie_rate: float = 0.1, left_bonus: float = 0.0
) -> list[Vote]:
    """n votes between random pairs, won by the Bradley–Terry odds of TRUE (plus a bonus for
    the left side, in rating points), a share of ties and "both bad"."""
    rng = random.Random(seed)
    models = sorted(TRUE)
    votes = []
    for _ in range(n):
        left, right = rng.sample(models, 2)
        if rng.random() < tie_rate:
            votes.append(Vote(left, right, rng.choice(["tie", "both_bad"])))
            continue
        p_left = 1 / (1 + 10 ** ((TRUE[right] - TRUE[left] - left_bonus) / 400))
        votes.append(Vote(left, right, "a" if rng.random() < p_left else "b"))
    return votes


def width(standing) -> float:
    return standing.high - standing.low


def test_the_known_ranking_comes_back_in_order_with_sensible_ratings():
    board = leaderboard(simulate(4000))
    assert [s.model for s in board] == ["alpha", "bravo", "charlie", "delta"]
    assert [s.rank for s in board] == [1, 2, 3, 4]  # intervals apart at this many votes
    ratings = {s.model: s.rating for s in board}
    # Ties pull ratings together a little; the gaps stay close to the true 150 points.
    for upper, lower in (("alpha", "bravo"), ("bravo", "charlie"), ("charlie", "delta")):
        assert 100 < ratings[upper] - ratings[lower] < 200, ratings
    assert abs(sum(ratings.values()) / 4 - 1000) < 1e-6  # centred
    for s in board:
        assert s.low < s.rating < s.high
        assert s.low < TRUE[s.model] - 0 + 200 and s.votes == s.wins + s.losses + s.ties


def test_intervals_shrink_as_votes_accumulate():
    widths = []
    for n in (60, 600, 6000):
        board = leaderboard(simulate(n, seed=11))
        widths.append(sum(width(s) for s in board) / len(board))
    assert widths[0] > widths[1] > widths[2], widths
    # Roughly 1/sqrt(n): ten times the votes, about a third of the width.
    assert widths[1] / widths[2] > 2.0 and widths[0] / widths[1] > 2.0, widths


def test_few_votes_give_wide_intervals_and_shared_ranks():
    board = leaderboard(simulate(12, seed=3))
    assert all(width(s) > 100 for s in board)
    assert len({s.rank for s in board}) < 4  # overlapping intervals share a rank


def test_ties_pull_two_models_together_instead_of_being_dropped():
    decisive = [Vote("x", "y", "a")] * 6 + [Vote("y", "x", "b")] * 2
    with_ties = decisive + [Vote("x", "y", "tie")] * 8 + [Vote("y", "x", "both_bad")] * 8
    gap = lambda votes: (lambda r: r["x"] - r["y"])(  # noqa: E731
        {s.model: s.rating for s in leaderboard(votes, samples=0)}
    )
    assert gap(decisive) > gap(with_ties) > 0
    only_ties = leaderboard([Vote("x", "y", "tie"), Vote("y", "x", "both_bad")] * 10, samples=50)
    assert abs(only_ties[0].rating - only_ties[1].rating) < 1e-6
    assert only_ties[0].ties == 20 and only_ties[0].wins == 0


def test_a_model_with_only_wins_stays_finite():
    board = leaderboard([Vote("champ", "other", "a")] * 20, samples=50)
    assert all(math.isfinite(s.rating) and math.isfinite(s.high) for s in board)
    assert board[0].model == "champ" and board[0].rating > board[1].rating


def test_a_model_never_faces_itself_and_unknown_outcomes_are_not_votes():
    board = leaderboard(
        [Vote("x", "x", "a"), Vote("x", "y", "maybe"), Vote("x", "y", "a")], samples=0
    )
    assert sum(s.votes for s in board) == 2  # one vote, counted for both models


def test_the_same_votes_give_the_same_board():
    votes = simulate(300, seed=5)
    assert leaderboard(votes) == leaderboard(list(votes))


def test_the_fit_matches_the_bradley_terry_likelihood_optimum():
    """At the fit, the gradient of the log-likelihood (with the prior) is zero: each model's
    expected wins equal its actual wins."""
    from playground.ranking import PRIOR_TIES, SCALE, _patterns

    votes = simulate(500, seed=9)
    patterns = _patterns(votes)
    models = sorted(TRUE)
    ratings = fit(patterns, models)
    strength = {m: 10 ** (r / SCALE) for m, r in ratings.items()}
    weight = PRIOR_TIES / (len(models) - 1)
    for model in models:
        actual = PRIOR_TIES * 0.5
        expected = 0.0
        for other in models:
            if other == model:
                continue
            expected += weight * strength[model] / (strength[model] + strength[other])
        for (first, second, score), count in patterns.items():
            if model in (first, second):
                other = second if model == first else first
                actual += count * (score if model == first else 1 - score)
                expected += count * strength[model] / (strength[model] + strength[other])
        assert abs(actual - expected) < 1e-6, (model, actual, expected)


def test_position_bias_is_found_when_the_left_side_is_favoured_and_not_otherwise():
    fair = position_bias(simulate(3000, seed=2))
    assert fair.verdict == "no clear position bias"
    assert fair.low < 0.5 < fair.high
    biased = position_bias(simulate(3000, seed=2, left_bonus=120))
    assert biased.verdict == "the left answer is favoured" and biased.low > 0.5
    assert position_bias([]).verdict == "no decisive votes yet"
    ties_only = position_bias([Vote("x", "y", "tie")])
    assert (ties_only.decisive, ties_only.ties, ties_only.share) == (0, 1, None)
