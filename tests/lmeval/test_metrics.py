"""process_results: the per-document metrics lm-eval aggregates, on hand-computed cases."""

import math

import pytest

from lm_eval_rankacc.lmeval import metrics
from lm_eval_rankacc.lmeval.loglikelihood import Loglikelihood


def doc(responses, ranks):
    return {"id": "d", "prompt": "p", "responses": responses, "ranks": ranks, "votes": [], "alpha": None}


def res(ll, n=None):
    return Loglikelihood((ll, False), n)


def test_summed_and_normalised_disagree():
    # y_w: 10 tokens, -10 in all (mean -1.0); y_l: 2 tokens, -4 (mean -2.0)
    d = doc(["a" * 19, "b" * 3], [1, 2])  # 20 and 4 bytes with the joining space
    out = metrics.process_results(d, [res(-10.0, 10), res(-4.0, 2)])
    assert out["rank_acc"] == 0.0  # -10 < -4
    assert out["rank_acc_norm"] == 1.0  # -1.0 >= -2.0
    assert out["rank_acc_bytes"] == 1.0  # -10/20 = -0.5 >= -4/4 = -1.0
    assert out["scores"] == {"loglik": [-10.0, -4.0], "n_tokens": [10, 2], "n_bytes": [20, 4]}
    assert out["invalid"] == 0
    assert "pair_acc" not in out


def test_tie_rules_per_variant():
    # tie: summed log-probs differ by 0.005 (< eps) -> R correct
    d = doc(["x", "y"], [1, 1])
    out = metrics.process_results(d, [res(-2.000, 2), res(-2.005, 2)])
    assert out["rank_acc"] == 1.0
    # normalised: exp(-1.0) vs exp(-1.0025): differ by ~0.0009 (< eps) -> correct
    assert out["rank_acc_norm"] == 1.0
    # summed differ by 0.5 -> wrong; per token exp(-0.5)=0.6065 vs exp(-0.75)=0.4724 -> wrong
    out = metrics.process_results(d, [res(-1.0, 2), res(-1.5, 2)])
    assert out["rank_acc"] == 0.0 and out["rank_acc_norm"] == 0.0
    # very unlikely responses: summed differ by 2 (wrong) but geometric means are both ~0 (right)
    out = metrics.process_results(d, [res(-40.0, 4), res(-42.0, 4)])
    assert out["rank_acc"] == 0.0 and out["rank_acc_norm"] == 1.0


def test_nan_counts_as_wrong_and_is_counted(caplog):
    d = doc(["x", "y"], [1, 2])
    out = metrics.process_results(d, [res(math.nan, 1), res(-5.0, 1)])
    assert out["rank_acc"] == 0.0 and out["rank_acc_norm"] == 0.0 and out["rank_acc_bytes"] == 0.0
    assert out["invalid"] == 1
    out = metrics.process_results(d, [res(-1.0, 1), res(-math.inf, 1)])
    assert out["rank_acc"] == 0.0 and out["invalid"] == 1


def test_identical_responses_correct_in_either_order():
    for ranks in ([1, 2], [2, 1]):
        out = metrics.process_results(doc(["same", "same"], ranks), [res(-3.0, 3), res(-3.0, 3)])
        assert out["rank_acc"] == out["rank_acc_norm"] == out["rank_acc_bytes"] == 1.0


def test_many_responses_with_ties():
    d = doc(["a", "b", "c", "d"], [1, 2, 2, 3])
    out = metrics.process_results(d, [res(-1.0, 1), res(-2.0, 1), res(-0.5, 1), res(-3.0, 1)])
    # pairs: (a,b) ok, (a,c) wrong, (a,d) ok, (b,d) ok, (c,d) ok
    assert out["rank_acc"] == 0.0
    assert out["pair_acc"] == pytest.approx(4 / 5)
    assert out["pair_acc_norm"] == pytest.approx(4 / 5)


def test_no_token_counts_leaves_norm_out(caplog):
    d = doc(["x", "y"], [1, 2])
    out = metrics.process_results(d, [(-1.0, False), (-2.0, False)])  # plain lm-eval tuples
    assert "rank_acc_norm" not in out
    assert out["rank_acc"] == 1.0 and out["scores"]["n_tokens"] == [None, None]


def test_result_count_must_match():
    with pytest.raises(ValueError, match="1 results for 2 responses"):
        metrics.process_results(doc(["x", "y"], [1, 2]), [res(-1.0, 1)])


def test_aggregations():
    assert metrics.total([0, 2, 1]) == 3
    assert metrics.count_responses([{"loglik": [1, 2]}, {"loglik": [1, 2, 3]}]) == 5


def test_loglikelihood_result_survives_pickle():
    import pickle

    r = pickle.loads(pickle.dumps(res(-1.25, 7)))
    assert tuple(r) == (-1.25, False) and r.n_tokens == 7
