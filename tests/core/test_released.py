"""The rules of the authors' released code (``lm_eval_rankacc.core.released``),
each against documents computed by hand, with the boundary cases: equal
scores, margins of exactly 0.01 and just above, human ties among n = 4,
NaN and infinite scores, all-tied documents, the 0.05 band of the idealized
rule, the special cases of the ratio a1 / a2 and its overflow."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lm_eval_rankacc.core import released


def _one(values) -> np.ndarray:
    return np.array([values], dtype=float)


# ----------------------------------------------------------------- scores (calibration_metrics_lib.py, rank)
def test_scores_are_rebuilt_from_the_perplexity():
    loglik, n = np.array([[-10.0, -4.0]]), np.array([[5, 2]])
    assert released.perplexities(loglik, n)[0] == pytest.approx([math.exp(2.0), math.exp(2.0)])
    assert released.scores(loglik, n, normalized=True)[0] == pytest.approx([math.exp(-2.0)] * 2)  # 1 / ppl
    assert released.scores(loglik, n, normalized=False)[0] == pytest.approx([-10.0, -4.0])  # -n log ppl
    # -inf is ranked normally (1/ppl = 0, -n log ppl = -inf); NaN stays NaN
    s = released.scores(np.array([[-np.inf, np.nan]]), np.array([[3, 3]]), normalized=True)
    assert s[0, 0] == 0.0 and math.isnan(s[0, 1])
    assert released.scores(np.array([[-np.inf]]), np.array([[3]]), normalized=False)[0, 0] == -np.inf
    # no token count: no normalized score; the unnormalized one is the summed log-likelihood itself
    unknown = np.array([[np.nan, 4.0]])
    assert math.isnan(released.scores(np.array([[-3.0, -3.0]]), unknown, True)[0, 0])
    assert released.scores(np.array([[-3.0, -3.0]]), unknown, False)[0, 0] == -3.0


# ----------------------------------------------------------------- rankings
def test_competition_ranks_equal_scipy_rankdata_max_reversed():
    values = np.array([[3.0, 1.0, 3.0, 2.0], [-np.inf, -np.inf, 0.0, 5.0], [1.0, 1.0, 1.0, 1.0]])
    assert released.competition_ranks(values).tolist() == [[1, 4, 1, 3], [3, 3, 2, 1], [1, 1, 1, 1]]
    stats = pytest.importorskip("scipy.stats")  # not a dependency: only this cross-check needs it
    rng = np.random.default_rng(0)
    for row in rng.integers(0, 4, size=(50, 5)).astype(float):
        expected = [len(row) + 1 - r for r in stats.rankdata(row, method="max")]
        assert released.competition_ranks(row[None, :])[0].tolist() == expected


def test_human_ranking_is_the_competition_ranking_of_the_ranks():
    ranks = np.array([[1, 1, 2], [2, 1, 3], [1, 2, 2]])
    assert released.human_ranking(ranks).tolist() == [[1, 1, 3], [2, 1, 3], [1, 2, 2]]
    assert released.human_ranking(np.array([[1, 2, 2, 3]])).tolist() == [[1, 2, 2, 4]]


def test_exact_match_rule():
    correct = released.rankings_correct
    assert correct(_one([-1.0, -2.0]), np.array([[1, 2]])).tolist() == [1.0]
    assert correct(_one([-2.0, -1.0]), np.array([[1, 2]])).tolist() == [0.0]
    # equal scores of a strict pair are wrong (Def. 2.3's >= would count them correct)
    assert correct(_one([-1.0, -1.0]), np.array([[1, 2]])).tolist() == [0.0]
    # a human pair tie outside the ties path: correct only when the scores are exactly equal
    assert correct(_one([-1.0, -1.0]), np.array([[1, 1]])).tolist() == [1.0]
    assert correct(_one([-1.0, -1.0 - 1e-12]), np.array([[1, 1]])).tolist() == [0.0]


def test_human_tie_among_four_needs_an_exact_model_tie():
    ranks = np.array([[1, 2, 2, 3]] * 3)  # dense ranks; the released list is [1, 2, 2, 4]
    scores = np.array([[-1.0, -2.0, -2.0, -5.0],   # the model ties the tied pair exactly: correct
                       [-1.0, -2.0, -2.1, -5.0],   # any order of the tied pair: wrong (the paper: correct)
                       [-1.0, -2.1, -2.0, -5.0]])
    assert released.rankings_correct(scores, ranks).tolist() == [1.0, 0.0, 0.0]


def test_all_tied_documents_are_kept_and_wrong_unless_every_score_is_equal():
    ranks = np.array([[1, 1, 1], [1, 1, 1]])
    assert released.rankings_correct(np.array([[-1.0, -2.0, -3.0], [-4.0, -4.0, -4.0]]), ranks).tolist() == [0.0, 1.0]


def test_nan_leaves_the_document_out_and_infinity_is_ranked():
    ranks = np.array([[1, 2], [2, 1], [1, 2], [1, 2]])
    scores = np.array([[np.nan, -1.0], [-np.inf, -3.0], [-np.inf, -np.inf], [-1.0, -np.inf]])
    out = released.rankings_correct(scores, ranks)
    assert math.isnan(out[0]) and out[1:].tolist() == [1.0, 0.0, 1.0]  # -inf == -inf is a tie: wrong
    assert released.accuracy(out) == pytest.approx(2 / 3)  # the mean over the kept documents
    assert released.accuracy(np.array([np.nan])) is None


# ----------------------------------------------------------------- the Alpaca Farm ties path
@pytest.mark.parametrize("pair, expected", [
    ([0.01, 0.0], [1, 1]),             # a margin of exactly 0.01 is a tie (inclusive)
    ([0.0, 0.01], [1, 1]),
    ([0.0100001, 0.0], [1, 2]),        # just above: strict
    ([0.0, 0.0100001], [2, 1]),
    ([0.5, 0.5], [1, 1]),
    ([-np.inf, -np.inf], [1, 1]),      # inf - inf: neither margin holds
    ([-2.0, -np.inf], [1, 2]),
])
def test_ties_path_margin(pair, expected):
    assert released.pair_ranking_with_ties(_one(pair)).tolist() == [expected]


def test_ties_path_outcomes():
    scores = np.array([[0.01, 0.0], [0.01, 0.0], [0.0100001, 0.0], [0.3, 0.3]])
    ranks = np.array([[1, 1], [1, 2], [1, 2], [1, 2]])
    # a tie at a gap of exactly 0.01 is correct; a strict pair needs more than 0.01; equal scores are a tie
    assert released.rankings_correct(scores, ranks, ties_path=True).tolist() == [1.0, 0.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="pairs only"):
        released.rankings_correct(np.zeros((1, 3)), np.array([[1, 2, 3]]), ties_path=True)


# ----------------------------------------------------------------- the idealized rule (rlhf_minimizer_client.py)
def test_vote_shares_and_the_simulated_proportion():
    ranks = np.array([[1, 2], [1, 2], [2, 1], [1, 1]])
    a1, a2 = released.vote_shares(np.array([0.75, np.nan, np.nan, np.nan]), ranks)
    assert a1.tolist() == [0.75, 0.75, 0.25, 0.25] and a2.tolist() == [0.25, 0.25, 0.75, 0.25]


def test_expected_ratio_special_cases():
    a1, a2 = np.array([0.75, 1.0, 0.0, 0.5]), np.array([0.25, 0.0, 1.0, 0.5])
    assert released.expected_ratio(a1, a2) == pytest.approx([3.0, 1000.0, 0.0, 1.0])  # a2 = 0: a1 / 0.001


def test_tempered_ratio_overflow_becomes_1e300():
    assert released.tempered_ratio(np.array([3.0]), 1.0).tolist() == [3.0]
    assert released.tempered_ratio(np.array([3.0]), 0.1) == pytest.approx([3.0 ** 10])
    assert released.tempered_ratio(np.array([0.0]), 0.01).tolist() == [0.0]
    assert released.tempered_ratio(np.array([1000.0]), 0.01) == pytest.approx([1e300])  # no overflow yet
    assert released.tempered_ratio(np.array([1e4]), 0.01).tolist() == [1e300]  # 1e400: overflow


@pytest.mark.parametrize("ratio, expected", [
    (1.0, [1, 1]), (1.0499, [1, 1]), (0.9501, [1, 1]),
    (1.05, [1, 2]), (1e300, [1, 2]),   # >= 1.05: response 1 first
    (0.95, [2, 1]), (0.0, [2, 1]),     # |r - 1| = 0.05 is not < 0.05
])
def test_ratio_band_edges(ratio, expected):
    assert released.ratio_ranking(np.array([ratio])).tolist() == [expected]


def test_model_ratio_and_the_inverted_unnormalized_rule():
    loglik, n = np.array([[-10.0, -20.0]]), np.array([[5, 5]])
    assert released.model_ratio(loglik, n, normalized=True) == pytest.approx([math.exp(2.0)])  # ppl2 / ppl1
    assert released.model_ratio(loglik, n, normalized=False) == pytest.approx([0.5])  # LL1 / LL2 = -10 / -20


def test_idealized_hand_computed():
    ideal = released.idealized_rankings_correct
    n = np.array([[5, 5]])
    # alpha 0.75: ratio 3. Normalized, beta 10: 3**0.1 * e**2 = 8.2 >= 1.05 -> [1, 2], as expected
    assert ideal(np.array([[-10.0, -20.0]]), n, np.array([[1, 2]]), np.array([0.75]), [10.0], True).tolist() == [[1.0]]
    # response 1 less likely: normalized 3**0.1 * e**-2 = 0.15 -> [2, 1], wrong; the unnormalized rule
    # (LL1 / LL2 = 2) calls it right: it rewards the less likely response
    worse = np.array([[-20.0, -10.0]])
    assert ideal(worse, n, np.array([[1, 2]]), np.array([0.75]), [10.0], True).tolist() == [[0.0]]
    assert ideal(worse, n, np.array([[1, 2]]), np.array([0.75]), [10.0], False).tolist() == [[1.0]]
    # a human tie (alpha 0.5): expected [1, 1]; right while the reference's ratio stays within 5% of 1
    tie = np.array([[-10.0, -10.1]])  # ppl2 / ppl1 = exp(0.02) = 1.0202
    assert ideal(tie, n, np.array([[1, 1]]), np.array([0.5]), [1.0], True).tolist() == [[1.0]]


def test_idealized_band_is_applied_to_the_posterior():
    n = np.array([[1, 1]])
    ranks, alpha = np.array([[1, 2]]), np.array([0.75])
    for target, expected in ((1.04, 0.0), (1.06, 1.0)):  # posterior just inside / outside the band
        reference = target / 3.0  # beta 1: posterior = 3 * ppl2 / ppl1, ppl2 / ppl1 = exp(loglik1 - loglik2)
        loglik = np.array([[-5.0, -5.0 - math.log(reference)]])
        assert released.idealized_rankings_correct(loglik, n, ranks, alpha, [1.0], True).tolist() == [[expected]]


def test_idealized_drops_non_finite_posteriors_per_beta():
    n = np.array([[1, 1], [1, 1], [1, 1]])
    ranks = np.array([[1, 2], [1, 2], [2, 1]])
    alpha = np.array([1.0, 0.75, 0.0])
    # doc 0: a2 = 0 -> ratio 1000, 1000**100 = 1e300, times ppl2/ppl1 = e**30: inf at beta 0.01, kept at beta 1;
    # doc 1: NaN log-likelihood; doc 2: a1 = 0 -> ratio 0, times ppl2/ppl1 = inf (loglik -inf): NaN
    loglik = np.array([[0.0, -30.0], [np.nan, -1.0], [-1.0, -np.inf]])
    out = released.idealized_rankings_correct(loglik, n, ranks, alpha, [0.01, 1.0], True)
    assert math.isnan(out[0, 0]) and out[1, 0] == 1.0
    assert np.isnan(out[:, 1]).all() and np.isnan(out[:, 2]).all()


def test_idealized_without_proportions_assumes_three_to_one():
    # alpha unknown, response 2 preferred: a1 / a2 = 0.25 / 0.75; beta 1, ppl2 / ppl1 = 1 / 2: 1/6 -> [2, 1]
    loglik = np.array([[-math.log(2.0), 0.0]])
    out = released.idealized_rankings_correct(loglik, np.array([[1, 1]]), np.array([[2, 1]]), None, [1.0], True)
    assert out.tolist() == [[1.0]]
    with pytest.raises(ValueError, match="pairs"):
        released.idealized_rankings_correct(np.zeros((1, 3)), np.ones((1, 3)), np.array([[1, 2, 3]]), None, [1.0],
                                            True)
    with pytest.raises(ValueError, match="betas"):
        released.idealized_rankings_correct(loglik, np.ones((1, 2)), np.array([[2, 1]]), None, [0.0], True)
