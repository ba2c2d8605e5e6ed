"""The ``Examples:`` of the pure rules and the analyses (their docstrings)
run as doctests: a docstring whose example no longer holds fails here."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import lm_eval_rankacc.analysis
import lm_eval_rankacc.core

MODULES = sorted(
    info.name
    for package in (lm_eval_rankacc.core, lm_eval_rankacc.analysis)
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}.")
)


@pytest.mark.parametrize("name", MODULES)
def test_examples_hold(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed (pytest --doctest-modules {module.__file__})"


def test_the_public_rules_and_analyses_have_examples():
    """Every public function of theory and of the analyses' entry points carries an example."""
    from lm_eval_rankacc import analysis
    from lm_eval_rankacc.core import rewards, theory

    documented = [analysis.idealized, analysis.flips, analysis.compare, analysis.hardness, analysis.observed_correct,
                  analysis.idealized_correct, analysis.alpha_source, analysis.task_scores, analysis.published_rows,
                  theory.ranking_correct, theory.rankings_correct, theory.idealized_rankings_correct,
                  theory.metric_scores, theory.flip_categories, theory.dpo_loss_threshold, rewards.rewards_correct]
    assert [f.__name__ for f in documented if ">>> " not in (f.__doc__ or "")] == []
