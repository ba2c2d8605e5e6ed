"""The released idealized rule on a pair won unanimously by response 2
(docs/conventions.md, the differences table, row 15): its vote ratio is
a1 / a2 = 0 / 1 = 0, so the posterior 0 ** (1/beta) x (the reference's ratio)
is 0 for every beta and every finite reference ratio, which ranks [2, 1]: the
pair is correct whatever the reference says. The mirror case (response 1
unanimous) is not: a2 = 0 becomes a1 / 0.001 = 1000, and 1000 ** (1/beta)
times a reference ratio far enough below 1 ranks [2, 1], wrong.

The expected outcomes are computed here by hand (plain floats and
``math``), not by the released module."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lm_eval_rankacc.core import released, theory

BETAS = [0.01, 0.1, 1.0, 5.0, 10.0]
# (summed log-likelihoods of responses 1 and 2, their token counts): the reference strongly for response 1,
# strongly for response 2, indifferent, and with very different lengths
REFERENCES = [((-1.0, -500.0), (5, 5)), ((-500.0, -1.0), (5, 5)), ((-7.0, -7.0), (3, 3)),
              ((-2.0, -300.0), (1, 200)), ((-0.5, -40.0), (2, 9))]


def _band(ratio: float) -> tuple[int, int]:
    """The released client's banding of a ratio (a tie within 0.05 of 1), restated for the test."""
    if abs(ratio - 1.0) < 0.05:
        return (1, 1)
    return (1, 2) if ratio >= 1.05 else (2, 1)


def _reference_ratio(ll: tuple[float, float], n: tuple[int, int], normalized: bool) -> float:
    """ppl_2 / ppl_1 with ppl = exp(-LL / n) (R~*), or LL_1 / LL_2 (R*)."""
    if normalized:
        return math.exp(-ll[1] / n[1]) / math.exp(-ll[0] / n[0])
    return ll[0] / ll[1]


def _by_hand(a1: float, a2: float, ll, n, beta: float, normalized: bool) -> float:
    vote_ratio = a1 / a2 if a2 > 0.0 else a1 / 0.001
    try:
        tempered = vote_ratio ** (1.0 / beta)
    except OverflowError:
        tempered = 1e300
    posterior = tempered * _reference_ratio(ll, n, normalized)
    return 1.0 if _band(posterior) == _band(vote_ratio) else 0.0


@pytest.mark.parametrize("normalized", [True, False])
@pytest.mark.parametrize("ll, n", REFERENCES)
def test_response_2_unanimous_is_correct_at_every_beta(ll, n, normalized):
    expected = [_by_hand(0.0, 1.0, ll, n, beta, normalized) for beta in BETAS]
    assert expected == [1.0] * len(BETAS)  # 0 ** (1/beta) x any finite ratio = 0 -> [2, 1], as the votes say
    out = released.idealized_rankings_correct(np.array([ll]), np.array([n]), np.array([[2, 1]]), np.array([0.0]),
                                              BETAS, normalized)
    assert out[:, 0].tolist() == expected


def test_the_paper_rule_lets_the_reference_win_at_large_beta():
    """The same pair under the paper's rule: alpha clipped to 0.001, so (1/beta) log(0.999/0.001) = 0.69 nats
    at beta = 10 cannot undo a reference gap of 499 nats for response 1; at beta = 0.01 it can (690.7)."""
    ll = np.array([[-1.0, -500.0]])
    out = theory.idealized_rankings_correct(ll, np.array([[2, 1]]), np.array([0.0]), [0.01, 10.0])
    log_odds = math.log(0.999 / 0.001)
    expected = [(-500.0 - -1.0) + log_odds / beta >= 0.0 for beta in (0.01, 10.0)]
    assert expected == [True, False]
    assert out[:, 0].tolist() == expected


def test_response_1_unanimous_is_not_immune():
    """a2 = 0: the vote ratio is 1 / 0.001 = 1000; at beta = 10, 1000 ** 0.1 = 1.995 times a reference ratio
    of exp(-99.8) (response 1 far less likely per token) is below 0.95: [2, 1], wrong; at beta = 0.01 the
    overflow (1e300) wins."""
    ll, n = (-500.0, -1.0), (5, 5)
    expected = [_by_hand(1.0, 0.0, ll, n, beta, True) for beta in (0.01, 10.0)]
    assert expected == [1.0, 0.0]
    out = released.idealized_rankings_correct(np.array([ll]), np.array([n]), np.array([[1, 2]]), np.array([1.0]),
                                              [0.01, 10.0], True)
    assert out[:, 0].tolist() == expected


def test_an_infinite_reference_ratio_is_left_out_not_counted():
    """The one exception to 'whatever the reference says': a reference ratio that is not finite
    (LL_2 = 0 makes LL_1 / LL_2 infinite) gives 0 x inf = NaN, and the pair is left out at that beta."""
    out = released.idealized_rankings_correct(np.array([[-3.0, 0.0]]), np.array([[2, 2]]), np.array([[2, 1]]),
                                              np.array([0.0]), BETAS, False)
    assert np.isnan(out[:, 0]).all()
