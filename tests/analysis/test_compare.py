"""Reward accuracy beside ranking accuracy (``rankacc flips``) and the paired
statistics of ``rankacc compare`` / ``flips`` / ``idealized``: McNemar's
exact p-value against scipy, the vectorised bootstrap against a plain loop,
TRL's ``rewards/accuracies`` computed independently on hand-made samples."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from tests.helpers.rankacc_samples import doc, write_run
from scipy.stats import binomtest

from lm_eval_rankacc import analysis

from lm_eval_rankacc.core import stats
from lm_eval_rankacc.cli import main
from lm_eval_rankacc.core.errors import RunError


# ----------------------------------------------------------------- stats
@pytest.mark.parametrize("b, c", [(0, 0), (0, 1), (1, 0), (3, 3), (2, 9), (12, 0), (40, 61), (0, 25), (500, 430)])
def test_mcnemar_matches_scipy_binomtest(b, c):
    expected = 1.0 if b + c == 0 else binomtest(min(b, c), b + c, 0.5, alternative="two-sided").pvalue
    assert stats.mcnemar_exact_p(b, c) == pytest.approx(expected, rel=1e-9, abs=1e-300)



def _exact_two_sided(b: int, c: int) -> float:
    """McNemar's p in exact integers, written here: 2 sum_{i <= min} C(n, i) / 2^n, capped at 1."""
    n, k = b + c, min(b, c)
    term, tail = 1, 1
    for i in range(1, k + 1):
        term = term * (n - i + 1) // i
        tail += term
    return min(1.0, 2 * tail / 2**n)


@pytest.mark.parametrize("b, c", [(30000, 31000), (100000, 100600), (40000, 45000), (50000, 50001), (7, 400000),
                                  (2000, 2100), (31, 40)])
def test_mcnemar_float_tail_matches_exact_integers(b, c, monkeypatch):
    """The floating-point tail (taken beyond EXACT_TAIL_WORK; forced here) equals the exact sum to 1e-12."""
    monkeypatch.setattr(stats, "EXACT_TAIL_WORK", 0)
    expected = _exact_two_sided(b, c)
    assert stats.mcnemar_exact_p(b, c) == pytest.approx(expected, rel=1e-12, abs=1e-300)
    assert stats.mcnemar_exact_p(b, c) == pytest.approx(binomtest(min(b, c), b + c, 0.5).pvalue, rel=1e-9,
                                                        abs=1e-300)

def _loop_means(values, n_boot, seed):
    """The bootstrap as a plain loop: one draw of N documents per replicate."""
    rng = np.random.default_rng(seed)
    n = values.shape[1]
    out = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, size=n)
        row = []
        for v in values:
            picked = [v[i] for i in idx if not np.isnan(v[i])]
            row.append(sum(picked) / len(picked) if picked else np.nan)
        out.append(row)
    return np.array(out)


@pytest.mark.parametrize("n, n_boot, seed", [(37, 300, 0), (5, 50, 7), (1, 10, 3)])
def test_bootstrap_matches_plain_loop(n, n_boot, seed, monkeypatch):
    rng = np.random.default_rng(100 + n)
    values = (rng.random((3, n)) < 0.6).astype(float)
    values[2, ::3] = np.nan  # left-out documents (the released convention)
    monkeypatch.setattr(stats, "_BLOCK_CELLS", 4 * n)  # several blocks: the stream must continue across them
    fast = stats.bootstrap_means(values, n_boot, seed)
    slow = _loop_means(values, n_boot, seed)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)
    a, b = values[0], values[1]
    diff = slow[:, 1] - slow[:, 0]
    assert stats.paired_difference_interval(a, b, n_boot, seed) == pytest.approx(
        tuple(np.percentile(diff, [2.5, 97.5])))


def test_bootstrap_options_are_checked(tmp_path):
    ref = write_run(tmp_path / "a", {"rankacc_x": [doc("d", [-1.0, -2.0], [1, 2])]}, model="a")
    for bad in ({"bootstrap": -1}, {"bootstrap": 1.5}, {"seed": -2}):
        with pytest.raises(analysis.RunError):
            analysis.compare(ref, ref, **bad)


# ----------------------------------------------------------------- reward accuracy
#: (id, reference loglik, policy loglik, ranks): hand-made so that reward and ranking accuracy disagree.
PAIRS = [
    ("r1", [-10.0, -12.0], [-14.0, -20.0], [1, 2]),   # both fall, chosen less: reward right; policy ranks right
    ("r2", [-5.0, -9.0], [-6.0, -8.0], [1, 2]),       # policy right, but margin shrank: reward wrong
    ("r3", [-8.0, -3.0], [-9.0, -6.0], [1, 2]),       # policy wrong, rejected fell more: reward right
    ("r4", [-4.0, -7.0], [-7.0, -4.0], [2, 1]),       # listed other way round; reward right, ranking right
    ("r5", [-3.0, -3.0], [-2.0, -2.0], [1, 2]),       # equal everywhere: ranking right (>=), reward wrong (>)
    ("r6", [-2.0, -2.0], [-1.0, -5.0], [1, 1]),       # a human tie: no reward accuracy
    ("r7", [-1.0, -2.0, -3.0], [-1.0, -2.0, -3.0], [1, 2, 3]),  # n = 3: none either
]
TOKENS = {"r1": [2, 10], "r2": [1, 4], "r3": [3, 1], "r4": [1, 1], "r5": [1, 1]}


def _trl_reward_accuracy(pairs):
    """TRL's rewards/accuracies, independently: chosen_rewards > rejected_rewards with
    rewards = beta * (policy_logps - reference_logps), summed log-probabilities."""
    beta, hits = 0.1, []
    for _, ref, pol, ranks in pairs:
        w, lose = (0, 1) if ranks[0] < ranks[1] else (1, 0)
        hits.append(beta * (pol[w] - ref[w]) > beta * (pol[lose] - ref[lose]))
    return sum(hits) / len(hits)


@pytest.fixture()
def reward_runs(tmp_path):
    def entries(which):
        return [doc(i, ref if which == "ref" else pol, ranks, n_tokens=TOKENS.get(i, [1] * len(ranks)))
                for i, ref, pol, ranks in PAIRS]
    return write_run(tmp_path / "ref", {"rankacc_x": entries("ref")}, model="ref"), write_run(
        tmp_path / "pol", {"rankacc_x": entries("pol")}, model="pol")


def test_reward_accuracy_is_trls(reward_runs):
    report = analysis.flips(*reward_runs, bootstrap=0)
    (row,) = report.sections[1].rows
    strict = [p for p in PAIRS if len(p[3]) == 2 and p[3][0] != p[3][1]]
    assert row["pairs"] == 5 and row["not_counted"] == 2
    assert row["reward_acc"] == pytest.approx(_trl_reward_accuracy(strict)) == pytest.approx(3 / 5)
    # reference-free (RewardBench): the policy's summed / per-token log-probability, strictly
    assert row["ref_free_sum_acc"] == pytest.approx(3 / 5)  # r1, r2, r4 (r5 equal: wrong)
    assert row["ref_free_mean_acc"] == pytest.approx(2 / 5)  # r3 (-3 > -6) and r4; r1 -7 < -2, r2 -6 < -2, r5
    assert row["R"] == pytest.approx(4 / 5)  # r1, r2, r4, r5 (>=)
    assert (row["both"], row["reward_only"], row["R_only"], row["neither"]) == (2, 1, 2, 0)
    assert any("not_counted counts the others" in n for n in report.notes)


# ----------------------------------------------------------------- compare end to end
def _run(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_compare_cli_formats_and_python(reward_runs, capsys):
    a, b = reward_runs
    rc, out, err = _run(["compare", a, b, "--format", "json", "--bootstrap", "500", "--seed", "3"], capsys)
    assert rc == 0, err
    data = json.loads(out)
    assert data["kind"] == "compare" and data["meta"]["bootstrap"] == 500 and data["meta"]["seed"] == 3
    rows = {(r["ties"], r["metric"]): r for r in data["sections"][0]["rows"]}
    r = rows[("excluded", "rank_acc")]
    # without the tie r6: r1..r5 and r7 (A = ref: r1, r2, r4, r5, r7 right; B = pol: r1, r2, r4, r5, r7 right)
    assert r["n"] == 6 and r["diff"] == pytest.approx(r["acc_b"] - r["acc_a"])
    assert r["p_mcnemar"] == pytest.approx(stats.mcnemar_exact_p(r["a_only"], r["b_only"]))
    assert r["ci_low"] <= r["diff"] <= r["ci_high"]
    assert {m for _, m in rows} == {"rank_acc", "rank_acc_norm", "rank_acc_bytes"}
    report = analysis.compare(a, b, bootstrap=500, seed=3)
    assert report.sections[0].rows == data["sections"][0]["rows"]
    rc, out, _ = _run(["compare", a, b, "--format", "csv", "--bootstrap", "0"], capsys)
    first = next(csv.DictReader(io.StringIO(out)))
    assert first["ci_low"] == "" and first["metric"] == "rank_acc"
    rc, out, _ = _run(["compare", a, b, "--bootstrap", "100"], capsys)
    assert rc == 0 and "| task | ties | metric | n | acc_a | acc_b | diff | ci_low |" in out
    with pytest.raises(SystemExit) as stop:  # refused when parsed (tests/cli/test_option_bounds.py)
        _run(["compare", a, b, "--bootstrap", "-5"], capsys)
    assert stop.value.code == 2 and "argument --bootstrap: expected an integer from 0" in capsys.readouterr().err
    with pytest.raises(RunError, match="bootstrap replicates must be an integer >= 0"):  # and from Python
        analysis.compare(a, b, bootstrap=-5)


def test_compare_other_documents_is_an_error(tmp_path, capsys):
    a = write_run(tmp_path / "a", {"rankacc_x": [doc("d1", [-1.0, -2.0], [1, 2])]}, model="a")
    b = write_run(tmp_path / "b", {"rankacc_x": [doc("d2", [-1.0, -2.0], [1, 2])]}, model="b")
    rc, _, err = _run(["compare", a, b], capsys)
    assert rc == 2 and "score different documents" in err


def test_idealized_gap_intervals_are_paired_bootstrap(reward_runs):
    ref, pol = reward_runs
    report = analysis.idealized(ref, [pol], betas=[1.0, 10.0], bootstrap=400, seed=5)
    rows = report.sections[0].rows
    row = next(r for r in rows if r["ties"] == "excluded" and r["role"] == "policy")
    assert row["gap_low"] <= row["gap"] <= row["gap_high"]
    # by hand: the same replicates over the reference's R* at each beta and the policy's R
    from lm_eval_rankacc.analysis.base import idealized_correct, observed_correct
    from lm_eval_rankacc.outputs.runs import load_run

    ts_ref, ts_pol = load_run(ref).tasks["rankacc_x"], load_run(pol).tasks["rankacc_x"]
    mask = ~ts_ref.tied
    star = idealized_correct(ts_ref, [1.0, 10.0], "rank_acc")[:, mask].astype(float)
    obs = observed_correct(ts_pol, "rank_acc")[mask].astype(float)  # same order: written in the same order
    loop = _loop_means(np.vstack([star, obs]), 400, 5)
    expected = np.percentile(np.median(loop[:, :2], axis=1) - loop[:, 2], [2.5, 97.5])
    assert (row["gap_low"], row["gap_high"]) == pytest.approx(tuple(expected))
    assert "gap_low" not in analysis.idealized(ref, [pol], betas=[1.0], bootstrap=0).sections[0].rows[0]
