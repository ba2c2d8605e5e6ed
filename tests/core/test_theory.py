"""The ranking rules of lm_eval_rankacc.core.theory, checked on hand-worked cases."""

import math

import numpy as np
import pytest

from lm_eval_rankacc.core.theory import (
    TIE_EPS,
    geometric_mean_prob,
    level_rewards,
    pair_accuracy,
    per_unit,
    rank_levels,
    ranking_correct,
    strictly_ordered_pairs,
)

NAN, NEG_INF = math.nan, -math.inf


@pytest.mark.parametrize(
    "scores, ranks, expected",
    [
        ([-1.0, -2.0], [1, 2], True),  # preferred scores higher
        ([-2.0, -1.0], [1, 2], False),
        ([-2.0, -1.0], [2, 1], True),  # preferred response listed second
        ([-1.5, -1.5], [1, 2], True),  # equal scores count as correct (>=)
        ([-1.5, -1.5], [2, 1], True),  # ... whatever the order
    ],
)
def test_pairs(scores, ranks, expected):
    assert ranking_correct(scores, ranks) is expected


def test_ties_use_eps_strictly():
    assert ranking_correct([-1.0, -1.0 - 0.009], [1, 1])
    assert not ranking_correct([-1.0, -1.0 - 0.011], [1, 1])
    assert not ranking_correct([-1.0, -1.0 - TIE_EPS * 1.0001], [1, 1])
    # the tie scores, not the ranking scores, decide a tie
    assert ranking_correct([-1.0, -5.0], [1, 1], tie_scores=[0.50, 0.505])
    assert not ranking_correct([-1.0, -1.0], [1, 1], tie_scores=[0.50, 0.52])


@pytest.mark.parametrize("bad", [NAN, NEG_INF, math.inf])
def test_invalid_scores_are_wrong(bad):
    assert not ranking_correct([bad, -3.0], [1, 2])
    assert not ranking_correct([-3.0, bad], [1, 2])
    assert not ranking_correct([bad, bad], [1, 1])
    assert not ranking_correct([-1.0, -2.0, bad], [1, 2, 2])


def test_more_than_two_responses():
    # 1 > {2, 3} tied > 4: the tied middle pair imposes no order
    ranks = [1, 2, 2, 3]
    assert ranking_correct([-1.0, -3.0, -2.0, -4.0], ranks)
    assert ranking_correct([-1.0, -2.0, -3.0, -4.0], ranks)
    assert not ranking_correct([-1.0, -2.0, -5.0, -4.0], ranks)  # 3 below 4
    assert not ranking_correct([-2.5, -2.0, -1.0, -4.0], ranks)  # 1 below 2 and 3
    # ties with n > 2 are not held to eps
    assert ranking_correct([-1.0, -2.0, -9.0, -10.0], ranks)


def test_rank_levels_and_rewards_of_n_gt_2():
    # dense levels: tied responses share one, gaps in the ranks close up
    ranks = np.array([[1, 2, 3], [1, 2, 2], [3, 1, 3], [1, 3, 3]])
    assert rank_levels(ranks).tolist() == [[1, 2, 3], [1, 2, 2], [2, 1, 2], [1, 2, 2]]
    assert rank_levels(np.array([[4, 2, 2, 1]])).tolist() == [[3, 2, 2, 1]]
    # r = -(k - 1) log((1 - eps) / eps): log(999) per level at eps 0.001, log(3) at 0.25
    big = math.log(999.0)
    np.testing.assert_allclose(level_rewards(np.array([[1, 2, 2, 4]])), [[0.0, -big, -big, -2 * big]], rtol=1e-15)
    np.testing.assert_allclose(level_rewards(np.array([[2, 1, 3]]), 0.25), [[-math.log(3), 0.0, -2 * math.log(3)]])


def test_all_tied_many_responses_rejected():
    with pytest.raises(ValueError, match="of 3 responses are all tied"):
        ranking_correct([-1.0, -2.0, -3.0], [1, 1, 1])


def test_pair_accuracy():
    ranks = [1, 2, 2, 3]
    assert strictly_ordered_pairs(ranks) == [(0, 1), (0, 2), (0, 3), (1, 3), (2, 3)]
    # (0,1) -2>=-3 ok, (0,2) -2<-1 wrong, (0,3) -2<-1.5 wrong, (1,3) -3<-1.5 wrong, (2,3) ok
    assert pair_accuracy([-2.0, -3.0, -1.0, -1.5], ranks) == pytest.approx(2 / 5)
    assert pair_accuracy([-1.0, -1.0], [1, 1]) is None
    assert pair_accuracy([NAN, -1.0, -2.0], [1, 2, 3]) == pytest.approx(1 / 3)


def test_normalisation():
    assert per_unit(-6.0, 3) == -2.0
    assert math.isnan(per_unit(-6.0, 0))
    assert math.isnan(per_unit(-6.0, None))
    assert math.isnan(per_unit(NEG_INF, 3))
    assert geometric_mean_prob(math.log(0.25)) == pytest.approx(0.25)
    assert math.isnan(geometric_mean_prob(NAN))
