"""Count-like and time-like options are checked when the command line is
parsed (issue 20, items 5 and 6): one line naming the option, exit 2, before
any run is read; sizes that cannot be held are refused, not attempted."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from lm_eval_rankacc.cli import main
from lm_eval_rankacc.core import released, stats, theory
from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.analysis.base import check_betas

MISSING = "no-such-run"  # never read: the options are refused first


@pytest.mark.parametrize("argv, option", [
    (["idealized", MISSING, "--bootstrap", "1000000000"], "--bootstrap"),
    (["compare", MISSING, MISSING, "--bootstrap", "-1"], "--bootstrap"),
    (["flips", MISSING, MISSING, "--bootstrap", "ten"], "--bootstrap"),
    (["flips", MISSING, MISSING, "--seed", "-1"], "--seed"),
    (["hardness", MISSING, "--top", "0"], "--top"),
    (["hardness", MISSING, "--beta", "0"], "--beta"),
    (["hardness", MISSING, "--beta", "1e-320"], "--beta"),
    (["hardness", MISSING, "--beta", "inf"], "--beta"),
    (["idealized", MISSING, "--alpha-eps", "0.5"], "--alpha-eps"),
    (["idealized", MISSING, "--alpha-eps", "nan"], "--alpha-eps"),
    (["tiny-model", "unused-dir", "--seed", "-3"], "--seed"),
])
def test_a_bad_count_or_number_is_refused_at_parse_time(argv, option, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"rankacc {argv[0]}: error: argument {option}"), err
    assert "Traceback" not in "\n".join(err)


def test_the_bootstrap_bound_is_the_one_rule_of_every_caller():
    stats.check_bootstrap(stats.MAX_BOOTSTRAP)
    with pytest.raises(ValueError, match="at most 1,000,000"):
        stats.check_bootstrap(stats.MAX_BOOTSTRAP + 1)


@pytest.mark.parametrize("beta", [1e-320, 5e-324, 0.0, -1.0, np.inf])
def test_betas_below_the_float_range_are_refused_in_one_line(beta):
    with pytest.raises(RunError, match="betas must be finite numbers >= 1e-300"):
        check_betas([0.1, beta])
    with pytest.raises(ValueError):
        theory.idealized_rankings_correct(np.array([[-1.0, -2.0]]), np.array([[1, 2]]), None, [beta])
    with pytest.raises(ValueError):
        released.idealized_rankings_correct(np.array([[-1.0, -2.0]]), np.array([[1, 1]]), np.array([[1, 2]]), None,
                                            [beta], False)


def test_the_smallest_beta_gives_the_human_ranking_without_warnings():
    """At beta = MIN_BETA the preference term decides (the limit beta -> 0):
    every document's human ranking, ties by the reference scores, no overflow
    warning (at 1e-320, 1/beta overflowed and 0 x inf made a tie NaN)."""
    scores = np.array([[-1.0, -2.0, -3.0], [-3.0, -1.0, -2.0]])
    ranks = np.array([[1, 2, 3], [1, 2, 3]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = theory.idealized_rankings_correct(scores, ranks, None, [theory.MIN_BETA])
        pair = theory.idealized_rankings_correct(np.array([[-9.0, -1.0]]), np.array([[1, 2]]), np.array([0.75]),
                                                 [theory.MIN_BETA])
    assert got.tolist() == [[True, True]] and pair.tolist() == [[True]]


@pytest.mark.parametrize("option, value, message", [
    ("--timeout", "-1", "--timeout must be a number of seconds > 0, got -1.0"),
    ("--timeout", "nan", "--timeout must be a number of seconds > 0, got nan"),
    ("--workers", "0", "--workers must be an integer >= 1, got 0"),
    ("--workers", "-3", "--workers must be an integer >= 1, got -3"),
    ("--judge-max-tokens", "0", "--judge-max-tokens must be an integer >= 1, got 0"),
])
def test_the_judge_options_are_checked_before_any_run_is_read(option, value, message, capsys):
    """The same check serves ``judging.winrate`` from Python (``judges.check_judge_options``)."""
    rc = main(["winrate", MISSING, MISSING, "--judge-url", "http://127.0.0.1:9/v1", "--judge-model", "m",
               option, value])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [f"rankacc winrate: error: {message}"]
