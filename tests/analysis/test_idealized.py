"""Idealized ranking accuracy, flips and Thm. 4.1 hardness: hand-computed
values, symmetry, overflow, and the vectorised rules against the scalar ones."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers.rankacc_samples import doc, swapped, write_run

from lm_eval_rankacc import analysis

from lm_eval_rankacc.core import theory
from lm_eval_rankacc.core.theory import (
    ALPHA_EPS,
    TIE_EPS,
    dpo_loss_threshold,
    geometric_mean_prob,
    idealized_rankings_correct,
    per_unit,
    per_units,
    ranking_correct,
    rankings_correct,
    reference_log_ratio,
    response1_log_odds,
    tie_ranked_correctly,
    ties_ranked_correctly,
)

LOG999 = math.log(999.0)


# ----------------------------------------------------------------- the vectorised twins
def _random_docs(rng, count, n):
    scores = rng.normal(-10, 3, size=(count, n)).round(1)  # rounding makes exact equalities
    scores[rng.random((count, n)) < 0.05] = np.nan
    scores[rng.random((count, n)) < 0.02] = -np.inf
    ranks = rng.integers(1, n + 1, size=(count, n))
    if n > 2:
        ranks[:, 0] = 1
        ranks[:, 1] = 2  # at least one strict pair
    tie_scores = np.exp(scores / 5)
    return scores, ranks, tie_scores


@pytest.mark.parametrize("n", [2, 3, 4])
def test_rankings_correct_agrees_with_ranking_correct(n):
    rng = np.random.default_rng(n)
    scores, ranks, tie_scores = _random_docs(rng, 2000, n)
    got = rankings_correct(scores, ranks, tie_scores)
    want = [ranking_correct(list(s), [int(r) for r in rk], list(t)) for s, rk, t in zip(scores, ranks, tie_scores)]
    assert got.tolist() == want


def test_ties_and_per_unit_twins_agree():
    rng = np.random.default_rng(1)
    a = rng.normal(0, 0.01, 5000)
    b = a + rng.choice([0.0, 0.005, 0.0099, 0.01, 0.0101, np.nan, np.inf], 5000)
    assert ties_ranked_correctly(a, b).tolist() == [tie_ranked_correctly(x, y) for x, y in zip(a, b)]
    ll = rng.normal(-20, 5, 3000)
    ll[::17] = np.nan
    ll[::19] = -np.inf
    units = rng.choice([0, 1, 3, 7, np.nan], 3000)
    got = per_units(ll, units)
    want = [per_unit(x, None if np.isnan(u) else int(u)) for x, u in zip(ll, units)]
    np.testing.assert_array_equal(got, np.array(want))


def test_idealized_at_huge_beta_is_the_observed_ranking():
    rng = np.random.default_rng(2)
    scores, ranks, tie_scores = _random_docs(rng, 3000, 2)
    share = rng.choice([0.6, 0.8, 1.0, np.nan], 3000)  # of the preferred response
    alpha = np.where(ranks[:, 0] < ranks[:, 1], share, np.where(ranks[:, 0] > ranks[:, 1], 1 - share, 0.5))
    got = idealized_rankings_correct(scores, ranks, alpha, [1e300], tie_scores)[0]
    assert got.tolist() == rankings_correct(scores, ranks, tie_scores).tolist()


# ----------------------------------------------------------------- log-odds and eps
def test_log_odds_clipping_is_symmetric():
    ranks = np.array([[1, 2], [2, 1], [1, 2], [2, 1], [1, 1], [1, 2], [2, 1]])
    lo = response1_log_odds(np.array([1.0, 0.0, np.nan, np.nan, 0.5, 0.75, 0.25]), ranks)
    assert lo[0] == LOG999 or math.isclose(lo[0], LOG999, rel_tol=1e-15)
    assert lo[1] == -lo[0]  # a unanimous vote for response 2 mirrors one for response 1
    assert lo[2] == lo[0] and lo[3] == -lo[0]  # no alpha: alpha = 1 for the preferred response
    assert lo[4] == 0.0
    assert math.isclose(lo[5], math.log(3)) and lo[6] == -lo[5]
    # eps is applied at both ends: 0.9995 and 1.0 give the same log-odds
    assert response1_log_odds(np.array([0.9995, 0.0005]), ranks[:2]).tolist() == [lo[0], lo[1]]


# ----------------------------------------------------------------- hand-computed R*
# d1: y_1 preferred by 3 of 4 raters; reference prefers y_2 by 1 nat.
#     margin = -1 + log(3)/beta: beta=0.1 -> +9.99, 1 -> +0.099, 10 -> -0.89
# d2: y_2 preferred (alpha = 0.2 for y_1); reference prefers y_1 by 3 nats.
#     margin = -3 + log(4)/beta: 0.1 -> +10.9, 1 -> -1.61, 10 -> -2.86
# d3: a human tie, reference within 0.005 nats: the tie rule holds for every beta.
# d4: no rater proportions, y_1 preferred; reference prefers y_2 by 18 nats.
#     margin = -18 + log(999)/beta: 0.1 -> +51.1, 1 -> -11.1, 10 -> -17.3
BETAS = [0.1, 1.0, 10.0]
HAND = [
    doc("d1", [-10.0, -9.0], [1, 2], 0.75, n_tokens=[2, 1]),
    doc("d2", [-5.0, -8.0], [2, 1], 0.2, n_tokens=[1, 4]),
    doc("d3", [-4.0, -4.005], [1, 1], 0.5, n_tokens=[1, 1]),
    doc("d4", [-20.0, -2.0], [1, 2], None, n_tokens=[10, 1]),
]
HAND_STAR = {  # beta -> correct per document
    0.1: [True, True, True, True],
    1.0: [True, False, True, False],
    10.0: [False, False, True, False],
}
# R~* (per token): d1 -5 vs -9: margin +4 + log3/beta > 0 always;
# d2 -5 vs -2 (y_2 preferred): -2 - (-5) = +3 > 0 always;
# d3 tie on geometric-mean probabilities exp(-4) vs exp(-4.005): |diff| = 9.1e-5 < 0.01;
# d4 -2 vs -2 (y_1 preferred): 0 + log(999)/beta > 0.
HAND_STAR_NORM = [True, True, True, True]


def _arrays(entries):
    ll = np.array([e["loglik"] for e in entries])
    ranks = np.array([e["doc"]["ranks"] for e in entries])
    alpha = np.array([np.nan if e["doc"]["alpha"] is None else e["doc"]["alpha"] for e in entries])
    return ll, ranks, alpha


def test_hand_computed_r_star():
    ll, ranks, alpha = _arrays(HAND)
    got = idealized_rankings_correct(ll, ranks, alpha, BETAS)
    assert got.tolist() == [HAND_STAR[b] for b in BETAS]
    n_tok = np.array([e["n_tokens"] for e in HAND], dtype=float)
    per_tok = per_units(ll, n_tok)
    got_norm = idealized_rankings_correct(per_tok, ranks, alpha, BETAS, np.exp(per_tok))
    assert got_norm.tolist() == [HAND_STAR_NORM] * 3


def test_idealized_report_hand_values(tmp_path):
    write_run(tmp_path / "ref", {"rankacc_hand": HAND})
    rep = analysis.idealized(tmp_path / "ref", betas=BETAS)
    rows = {r["ties"]: r for r in rep.sections[0].rows}
    ex, inc = rows["excluded"], rows["included"]
    assert ex["n"] == 3 and inc["n"] == 4 and ex["alpha"] == "partial"
    # observed: d1, d2, d4 all wrong (the reference prefers y_l); d3 tie correct
    assert ex["R"] == 0.0 and inc["R"] == 0.25
    assert (ex["R_star_min"], ex["R_star_median"], ex["R_star_max"]) == (0.0, pytest.approx(1 / 3), 1.0)
    assert (inc["R_star_min"], inc["R_star_median"], inc["R_star_max"]) == (0.25, 0.5, 1.0)
    assert ex["gap"] == pytest.approx(1 / 3) and inc["gap"] == pytest.approx(0.25)
    assert [ex[f"R_star@{b:g}"] for b in BETAS] == [1.0, pytest.approx(1 / 3), 0.0]
    # per token: observed d1 (-5 vs -9) and d2 (-5 vs -2, y_2 preferred) right, d4 (-2 vs -2) right by >=
    assert ex["R_norm"] == 1.0 and ex["R_norm_star_median"] == 1.0 and ex["gap_norm"] == 0.0
    assert any("eps alone" in n for n in rep.notes)


def test_symmetry_under_swapping_outputs(tmp_path):
    rng = np.random.default_rng(3)
    entries = []
    for k in range(300):
        ranks = [[1, 2], [2, 1], [1, 1]][k % 3]
        if ranks[0] == ranks[1]:
            alpha = 0.5
        else:
            share = rng.choice([0.5 + 1 / 6, 0.75, 1.0, None])
            alpha = None if share is None else (share if ranks == [1, 2] else 1 - share)
        entries.append(doc(f"s{k}", [float(x) for x in rng.normal(-30, 8, 2)], ranks, alpha, n_tokens=[int(x) for x in rng.integers(1, 20, 2)]))
    ll, ranks, alpha = _arrays(entries)
    sw = [swapped(e) for e in entries]
    ll2, ranks2, alpha2 = _arrays(sw)
    betas = [0.01, 0.1, 1, 5, 10]
    a = idealized_rankings_correct(ll, ranks, alpha, betas)
    b = idealized_rankings_correct(ll2, ranks2, alpha2, betas)
    assert a.tolist() == b.tolist()
    write_run(tmp_path / "a", {"rankacc_sym": entries})
    write_run(tmp_path / "b", {"rankacc_sym": sw})
    ra = analysis.idealized(tmp_path / "a", betas=betas).sections[0].rows
    rb = analysis.idealized(tmp_path / "b", betas=betas).sections[0].rows
    strip = lambda rows: [{k: v for k, v in r.items()} for r in rows]  # noqa: E731
    assert strip(ra) == strip(rb)


def test_unanimous_votes_are_symmetric():
    # the released script treats a unanimous vote for output_2 unlike one for output_1; we must not
    ll = np.array([[-10.0, -10.0 + 6.0], [-10.0 + 6.0, -10.0]])
    ranks = np.array([[1, 2], [2, 1]])
    alpha = np.array([1.0, 0.0])
    for beta in [0.5, 1.0, 1.2, 2.0]:
        got = idealized_rankings_correct(ll, ranks, alpha, [beta])[0]
        assert got[0] == got[1] == (-6.0 + LOG999 / beta >= 0)


def test_no_overflow_at_small_beta_and_large_log_ratios():
    ll = np.array([[-1000.0, 0.0], [0.0, -1000.0], [-600.0, 0.0], [-1000.0, -1000.0 + 1e-9]])
    ranks = np.array([[1, 2], [2, 1], [1, 2], [1, 1]])
    alpha = np.array([0.999, 0.001, 1.0, 0.5])
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        got = idealized_rankings_correct(ll, ranks, alpha, [0.01, 1e-3])
        c = reference_log_ratio(np.array([-1000.0, 0.0]), np.array([0.0, -1000.0]))
        thr = dpo_loss_threshold(c, 0.01)
        thr_big = dpo_loss_threshold(np.array([-1e6, 1e6]), 10.0)
    # log(999)/0.01 = 690.8 < 1000; > 600
    assert got[0].tolist() == [False, False, True, True]
    assert got[1].tolist() == [True, True, True, True]
    assert thr == pytest.approx([math.log1p(math.exp(-10.0)), 10.0 + math.log1p(math.exp(-10.0))])
    assert thr_big[0] == pytest.approx(1e7) and thr_big[1] == 0.0


# ----------------------------------------------------------------- n > 2 (our generalisation)
# One Bradley-Terry reward per response, r = -(k - 1) L at dense rank level k,
# L = log(999); pi* = pRef exp(r / beta) orders every strictly ordered pair.
def test_more_than_two_responses_one_reward_per_response():
    # ranks 1 > 2 > 3 (one tie-free chain) and a partial tie 1 > {2, 2}
    ll = np.array([[-5.0, -1.0, -3.0], [-1.0, -9.0, -2.0]])
    ranks = np.array([[1, 2, 3], [1, 2, 2]])
    # doc 0: log pi* = -5, -1 - L/beta, -3 - 2L/beta. beta 1: -5, -7.9, -16.8 ok;
    #        beta 2: -5, -4.45, -9.9: y_1 below y_2, wrong
    # doc 1: all pairs right already; tied responses 2, 3 impose no order
    got = idealized_rankings_correct(ll, ranks, None, [1.0, 2.0])
    assert got.tolist() == [[True, True], [False, True]]
    assert rankings_correct(ll, ranks).tolist() == [False, True]
    with pytest.raises(ValueError, match="all tied"):
        idealized_rankings_correct(np.zeros((1, 3)), np.ones((1, 3), dtype=int), None, [1.0])


def test_issue_counter_example_is_realisable():
    # The former rule shifted every strictly ordered pair by L / beta on its own:
    # (1 over 3) needs -10 - (-2) + 6.907 >= 0, false, so R* was 0. One policy
    # does order them: log pi* = -10, -4 - 6.907, -2 - 13.815 = -10 >= -10.907 >= -15.815.
    ll, ranks = np.array([[-10.0, -4.0, -2.0]]), np.array([[1, 2, 3]])
    assert idealized_rankings_correct(ll, ranks, None, [1.0]).tolist() == [[True]]
    shifted = ll + np.array([0.0, -LOG999, -2 * LOG999])
    assert shifted[0, 0] >= shifted[0, 1] >= shifted[0, 2]


def test_counter_example_through_files_summed_and_per_token(tmp_path):
    # R~* adds the same reward r / beta to the per-token log-probabilities, as for
    # pairs. Tokens [2, 1, 1]: per token -5, -4, -2.
    # R*   beta 1: -10, -10.907, -15.815 ok;  beta 2: -10, -7.454, -8.907 wrong
    # R~*  beta 1: -5, -10.907, -15.815 ok;   beta 2: -5, -7.454, -8.907 ok
    write_run(tmp_path / "ref", {"rankacc_multi": [doc("ce", [-10.0, -4.0, -2.0], [1, 2, 3], n_tokens=[2, 1, 1])]})
    (row,) = analysis.idealized(tmp_path / "ref", betas=[1.0, 2.0]).sections[0].rows
    assert (row["R"], row["R_norm"]) == (0.0, 0.0)
    assert (row["R_star@1"], row["R_star@2"]) == (1.0, 0.0)
    assert (row["R_norm_star@1"], row["R_norm_star@2"]) == (1.0, 1.0)


def test_tied_four_response_document():
    # ranks [1, 2, 2, 3]: levels 1, 2, 2, 3; log pRef -10, -8, -5, -3.
    # beta 1: log pi* = -10, -14.907, -11.907, -16.815: y_1 above both tied
    # responses, both above y_4, the tied pair in any order -> correct. (The
    # former per-pair rule failed (1 over 4): -10 + 3 + 6.907 = -0.093 < 0.)
    # beta 2 (L / beta = 3.454): (1 over the tied y_3) -10 + 5 + 3.454 < 0 -> wrong.
    ll = np.array([[-10.0, -8.0, -5.0, -3.0]])
    ranks = np.array([[1, 2, 2, 3]])
    assert idealized_rankings_correct(ll, ranks, None, [1.0, 2.0]).tolist() == [[True], [False]]
    # the tie imposes no order: swapping the tied responses' scores changes nothing
    assert idealized_rankings_correct(ll[:, [0, 2, 1, 3]], ranks, None, [1.0, 2.0]).tolist() == [[True], [False]]
    # competition ranks [1, 2, 2, 4] are the same levels
    assert idealized_rankings_correct(ll, np.array([[1, 2, 2, 4]]), None, [1.0, 2.0]).tolist() == [[True], [False]]


def test_more_than_two_responses_exact_at_small_beta():
    # beta 0.01: L / beta = 690.78 nats per level. log pRef in the thousands,
    # probabilities exp(-3000) underflow to 0; sums of logs keep the sign of
    # margins of 1e-6 nats.
    step = 100 * LOG999
    ll = np.array([
        [-3000.0, -3000.0 + step - 1e-6, -3000.0 + 2 * step - 2e-6],  # each gap 1e-6 within L / beta: ok
        [-3000.0, -3000.0 + step + 1e-6, -3000.0 + step],  # y_2 1e-6 too likely for y_1: wrong
        [-3000.0, -1000.0, -2000.0],  # (1 over 2) short by 1309 nats at beta 0.01: wrong
    ])
    ranks = np.array([[1, 2, 3], [1, 2, 3], [1, 2, 2]])
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise", under="raise"):
        warnings.simplefilter("error")
        got = idealized_rankings_correct(ll, ranks, None, [0.01, 0.001, 1.0])
    # beta 0.001: 6908 nats per level put every document right; beta 1: 6.9 nats, none
    assert got.tolist() == [[True, False, False], [True, True, True], [False, False, False]]


def test_pairs_are_unchanged_by_the_n_gt_2_rule():
    # n = 2 without alpha is the n > 2 rule of two levels: shift L / beta
    ll = np.array([[-20.0, -2.0], [-2.0, -20.0]])
    ranks = np.array([[1, 2], [2, 1]])
    for beta in [0.1, 1.0, 2.0, 3.0]:
        got = idealized_rankings_correct(ll, ranks, None, [beta])[0]
        assert got.tolist() == [-18 + LOG999 / beta >= 0] * 2
        three = idealized_rankings_correct(np.c_[ll[:1], [[-1e9]]], np.array([[1, 2, 3]]), None, [beta])
        assert three[0, 0] == got[0]


@st.composite
def _ranked_documents(draw):
    """N documents of n in 3..6 responses: human ranks with ties (not all tied,
    not necessarily dense), log pRef from a narrow and a wide range (integers
    too, for exact equalities), a beta grid and alpha_eps."""
    n = draw(st.integers(3, 6))
    count = draw(st.integers(1, 6))
    ranks = draw(st.lists(st.lists(st.integers(1, n), min_size=n, max_size=n).filter(lambda r: len(set(r)) > 1),
                          min_size=count, max_size=count))
    value = st.one_of(st.integers(-30, 0).map(float), st.floats(-30.0, 0.0), st.floats(-5000.0, 0.0))
    ll = draw(st.lists(st.lists(value, min_size=n, max_size=n), min_size=count, max_size=count))
    betas = draw(st.lists(st.one_of(st.sampled_from([0.01, 0.1, 1.0, 5.0, 10.0]), st.floats(1e-3, 100.0)),
                          min_size=1, max_size=4))
    alpha_eps = draw(st.sampled_from([1e-3, 0.01, 0.25]))
    return np.array(ll), np.array(ranks), betas, alpha_eps


def _explicit_log_pi_star(ll, ranks, beta, alpha_eps):
    """log pi*(y_i) of one document, built on its own: rank levels from
    np.unique, reward -(k - 1) log((1 - eps) / eps), normalised over the n
    responses (a distribution: the idealized policy exists)."""
    _, level0 = np.unique(ranks, return_inverse=True)  # dense level - 1
    logits = ll - level0 * math.log((1.0 - alpha_eps) / alpha_eps) / beta
    log_pi = logits - np.logaddexp.reduce(logits)
    assert math.isclose(np.exp(log_pi).sum(), 1.0, rel_tol=1e-9)
    return log_pi


@settings(max_examples=300, deadline=None, derandomize=True)
@given(_ranked_documents())
def test_n_gt_2_outcome_is_the_order_of_one_realisable_policy(case):
    ll, ranks, betas, alpha_eps = case
    got = idealized_rankings_correct(ll, ranks, None, betas, alpha_eps=alpha_eps)
    assert got.shape == (len(betas), len(ll))
    for b, beta in enumerate(betas):
        for d in range(len(ll)):
            log_pi = _explicit_log_pi_star(ll[d], ranks[d], beta, alpha_eps)
            pairs = [(i, j) for i in range(len(ranks[d])) for j in range(len(ranks[d])) if ranks[d][i] < ranks[d][j]]
            margins = [log_pi[i] - log_pi[j] for i, j in pairs]
            scale = max(1.0, float(np.abs(log_pi).max()))
            if any(0 < abs(m) < 1e-9 * scale for m in margins):
                continue  # within rounding of the boundary: normalising may move it
            # every strictly ordered pair (Def. 2.3, >=) ...
            assert got[b, d] == all(m >= 0 for m in margins)
            # ... is the same as: sorted by log pi* (ties by human rank), the human ranks never go back up
            order = np.lexsort((ranks[d], -log_pi))
            assert got[b, d] == bool((np.diff(ranks[d][order]) >= 0).all())


def test_invalid_scores_are_wrong_for_every_beta():
    ll = np.array([[np.nan, -1.0], [-np.inf, -1.0], [np.inf, np.inf]])
    ranks = np.array([[1, 2], [1, 2], [1, 1]])
    assert not idealized_rankings_correct(ll, ranks, np.array([1.0, 1.0, 0.5]), [0.01, 1, 10]).any()


# ----------------------------------------------------------------- Thm. 4.1
def test_hardness_hand_values(tmp_path):
    entries = [
        doc("e1", [-3.0, -10.0], [1, 2], prompt="P1", responses=["good1", "bad1"]),  # c = -7
        doc("e2", [-12.0, -4.0], [2, 1], prompt="P2", responses=["bad2", "good2"]),  # c = -8
        doc("h1", [-20.0, -5.0], [1, 2]),  # c = +15
        doc("f1", [-6.0, -5.5], [1, 2]),  # c = +0.5
        doc("f2", [-2.0, -4.0], [2, 1]),  # c = +2
        doc("z0", [-1.0, -1.0], [1, 2]),  # c = 0: ranked correctly (>=)
        doc("t", [-1.0, -1.0], [1, 1], 0.5),  # a tie: left out
    ]
    write_run(tmp_path / "ref", {"rankacc_h": entries})
    rep = analysis.hardness(tmp_path / "ref", beta=0.5, top=2)
    summary = rep.sections[0].rows[0]
    assert summary["pairs"] == 6 and summary["left_out"] == 1
    assert summary["share_c_positive"] == pytest.approx(3 / 6)
    assert (summary["c_min"], summary["c_max"]) == (-8.0, 15.0)
    lists = {s.title.split(": ")[1]: s.rows for s in rep.sections[1:]}
    assert [r["id"] for r in lists["hard to learn"]] == ["h1", "f2"]
    assert [r["id"] for r in lists["easy"]] == ["e2", "e1"]
    assert [r["id"] for r in lists["easy to flip"]] == ["f1", "f2"]
    e2 = lists["easy"][0]
    assert e2["c"] == -8.0 and e2["chosen"] == "good2" and e2["rejected"] == "bad2" and e2["prompt"] == "P2"
    assert e2["loss_threshold"] == pytest.approx(-math.log(1 / (1 + math.exp(4.0))))
    assert lists["hard to learn"][0]["loss_threshold"] == pytest.approx(-math.log(1 / (1 + math.exp(-7.5))))
    docs = {d["id"]: d for d in rep.documents}
    assert docs["z0"]["c"] == 0.0 and docs["z0"]["reference_correct"] is True
    assert docs["h1"]["reference_correct"] is False and "t" not in docs
    assert any("1 human ties" in n for n in rep.notes)


def test_theorem_4_1_condition_holds():
    # a policy ranks correctly iff its DPO loss is below the threshold
    rng = np.random.default_rng(4)
    ref_w, ref_l, pol_w, pol_l = rng.normal(-20, 6, (4, 5000))
    beta = 0.3
    margin = beta * ((pol_w - ref_w) - (pol_l - ref_l))
    loss = np.logaddexp(0.0, -margin)
    thr = dpo_loss_threshold(reference_log_ratio(ref_w, ref_l), beta)
    assert ((loss < thr) == (pol_w > pol_l)).all()


# ----------------------------------------------------------------- flips
def test_flips_hand_counts(tmp_path):
    ref = [
        doc("a", [-1.0, -2.0], [1, 2]),  # right
        doc("b", [-1.0, -2.0], [1, 2]),  # right
        doc("c", [-3.0, -2.0], [1, 2]),  # wrong
        doc("d", [-3.0, -2.0], [1, 2]),  # wrong
        doc("e", [-3.0, -2.0], [1, 2]),  # wrong
        doc("t", [-2.0, -2.001], [1, 1], 0.5),  # tie right
    ]
    pol = [
        doc("e", [-1.0, -2.0], [1, 2]),  # wrong -> right (listed in another order on purpose)
        doc("a", [-1.0, -2.0], [1, 2]),  # right -> right
        doc("b", [-5.0, -2.0], [1, 2]),  # right -> wrong
        doc("c", [-3.0, -2.0], [1, 2]),  # wrong -> wrong
        doc("d", [-3.0, -2.0], [1, 2]),  # wrong -> wrong
        doc("t", [-2.0, -2.5], [1, 1], 0.5),  # tie right -> wrong
    ]
    write_run(tmp_path / "r", {"rankacc_f": ref}, model="ref")
    write_run(tmp_path / "p", {"rankacc_f": pol}, model="pol")
    rep = analysis.flips(tmp_path / "r", tmp_path / "p")
    got = {(r["ties"], r["category"]): (r["count"], r["share"]) for r in rep.sections[0].rows}
    assert got[("excluded", "correct->correct")] == (1, 0.2)
    assert got[("excluded", "correct->incorrect")] == (1, 0.2)
    assert got[("excluded", "incorrect->correct")] == (1, 0.2)
    assert got[("excluded", "incorrect->incorrect")] == (2, 0.4)
    assert got[("included", "correct->incorrect")] == (2, pytest.approx(2 / 6))
    cats = {d["id"]: d["category"] for d in rep.documents}
    assert cats == {"a": "correct->correct", "b": "correct->incorrect", "c": "incorrect->incorrect",
                    "d": "incorrect->incorrect", "e": "incorrect->correct", "t": "correct->incorrect"}
    assert rep.meta["reference"] == "ref" and rep.meta["policy"] == "pol"


def test_tie_rule_is_the_core_one():
    assert TIE_EPS == theory.TIE_EPS and ALPHA_EPS == 1e-3
    # norm tie scores are geometric-mean probabilities, exactly as in metrics.ranking_metrics
    per_tok = np.array([[-4.0, -4.2]])
    got = idealized_rankings_correct(per_tok, np.array([[1, 1]]), np.array([0.5]), [1.0], np.exp(per_tok))
    assert got[0, 0] == tie_ranked_correctly(geometric_mean_prob(-4.0), geometric_mean_prob(-4.2))


def test_mixed_sizes_through_files(tmp_path):
    entries = [
        doc("two", [-1.0, -3.0], [1, 2], 1.0),
        doc("three", [-5.0, -1.0, -3.0], [1, 2, 3]),  # wrong now; right once log(999)/beta > 4
        doc("tie3", [-1.0, -9.0, -2.0], [1, 2, 2]),
    ]
    write_run(tmp_path / "ref", {"rankacc_multi": entries})
    rep = analysis.idealized(tmp_path / "ref", betas=[1.0, 2.0])
    (row,) = rep.sections[0].rows  # no human-tied pair: one "excluded" row
    assert row["alpha"] == "partial" and row["n"] == 3
    assert row["R"] == pytest.approx(2 / 3)
    assert row["R_star@1"] == 1.0 and row["R_star@2"] == pytest.approx(2 / 3)
    assert any("n > 2 responses" in n and "eps alone" in n for n in rep.notes)
    with pytest.raises(analysis.RunError, match="alpha eps"):
        analysis.idealized(tmp_path / "ref", alpha_eps=0.0)


def test_hardness_reads_texts_of_the_listed_documents_only(tmp_path, monkeypatch):
    """The texts of a run are read back from its file for the documents a list
    shows (and for each per-document row asked for), never for all of them."""
    from lm_eval_rankacc.outputs.columns import TaskSamples

    rng = np.random.default_rng(7)
    entries = [doc(f"p{k}", list(rng.normal(-10, 3, 2)), [1, 2], prompt=f"P{k}", responses=[f"w{k}", f"l{k}"])
               for k in range(40)]
    write_run(tmp_path / "ref", {"rankacc_h": entries})
    reread = []
    original = TaskSamples._reread
    monkeypatch.setattr(TaskSamples, "_reread", lambda self, k: reread.append(k) or original(self, k))
    rep = analysis.hardness(tmp_path / "ref", beta=0.5, top=2)
    assert 0 < len(reread) <= 3 * 2
    listed = {r["id"]: r for s in rep.sections[1:] for r in s.rows}
    for key, row in listed.items():  # each listed text is its own document's, chosen / rejected by rank
        k = int(key[1:])
        assert (row["prompt"], row["chosen"], row["rejected"]) == (f"P{k}", f"w{k}", f"l{k}")
    reread.clear()
    row = rep.documents[5]
    assert len(reread) == 1 and row["id"] == "p5" and row["chosen"] == "w5" and len(rep.documents) == 40
    c = [e["loglik"][1] - e["loglik"][0] for e in entries]  # Thm. 4.1: log pRef(y_l) - log pRef(y_w)
    assert [r["c"] for r in rep.documents] == pytest.approx(c)


@pytest.mark.parametrize("top", [1, 3, 7, 50])
def test_hardness_partial_selection_is_the_stable_sort(top):
    """The lists' partial selection equals a stable sort's first ``top``, ties in file order."""
    from lm_eval_rankacc.analysis.hardness import _first_smallest
    rng = np.random.default_rng(top)
    values = rng.integers(0, 6, size=40).astype(float)  # many ties
    assert _first_smallest(values, top).tolist() == np.argsort(values, kind="stable")[:top].tolist()
