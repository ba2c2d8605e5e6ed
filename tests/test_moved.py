"""The module paths of release 0.1 (``lm_eval_rankacc.harness``, ``.theory``,
...) stay importable for one release: each warns with a DeprecationWarning
naming its new place and gives the very objects of the new modules."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

from lm_eval_rankacc import _moved

# (old dotted name, the object it must be)
DOCUMENTED = [
    ("lm_eval_rankacc.harness.load_docs", "lm_eval_rankacc.lmeval.dataset.load_docs"),
    ("lm_eval_rankacc.harness.documents", "lm_eval_rankacc.loading.documents.documents"),
    ("lm_eval_rankacc.harness.TaskDataError", "lm_eval_rankacc.core.errors.TaskDataError"),
    ("lm_eval_rankacc.authoring.load_docs", "lm_eval_rankacc.lmeval.dataset.load_fields_docs"),
    ("lm_eval_rankacc.theory.ranking_correct", "lm_eval_rankacc.core.theory.ranking_correct"),
    ("lm_eval_rankacc.runs.load_run", "lm_eval_rankacc.outputs.runs.load_run"),
    ("lm_eval_rankacc.models.prefix.HFPrefixLM", "lm_eval_rankacc.lmeval.models.prefix.HFPrefixLM"),
]


def _resolve(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("old, new", DOCUMENTED)
def test_old_paths_give_the_new_objects(old, new):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert _resolve(old) is _resolve(new)


@pytest.mark.parametrize("old", sorted(_moved.MOVED))
def test_every_old_module_warns_once_naming_its_new_home(old):
    code = (f"import warnings\nwith warnings.catch_warnings(record=True) as seen:\n"
            f"    warnings.simplefilter('always', DeprecationWarning)\n    import lm_eval_rankacc.{old}\n"
            f"print([str(w.message) for w in seen if w.category is DeprecationWarning])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count(f"lm_eval_rankacc.{old} is deprecated") == 1
    assert f"lm_eval_rankacc.{_moved.MOVED[old][0]}" in out.stdout


def test_every_new_home_exists():
    for homes in _moved.MOVED.values():
        for home in homes:
            importlib.import_module(f"lm_eval_rankacc.{home}")
    for target in _moved.RENAMED.values():
        module, _, name = target.partition(":")
        assert hasattr(importlib.import_module(f"lm_eval_rankacc.{module}"), name), target


def test_an_unknown_name_is_an_attribute_error():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        theory = importlib.import_module("lm_eval_rankacc.theory")
    with pytest.raises(AttributeError, match="moved to core.theory"):
        theory.no_such_rule


def test_the_package_root_holds_few_modules():
    """The root keeps the entry points and the hook; every other module lives in a package by role."""
    from pathlib import Path

    import lm_eval_rankacc

    root = Path(lm_eval_rankacc.__file__).parent
    assert sorted(p.name for p in root.glob("*.py")) == ["__init__.py", "__main__.py", "_autoload.py", "_moved.py"]


def test_renamed_analysis_names_warn_and_resolve():
    """``analysis.metric_scores`` (0.1) is ``analysis.task_scores``: it shares no name with ``theory.metric_scores``."""
    import lm_eval_rankacc.analysis as analysis

    with pytest.warns(DeprecationWarning, match="use lm_eval_rankacc.analysis.task_scores"):
        old = analysis.metric_scores
    assert old is analysis.task_scores
    with pytest.raises(AttributeError):
        analysis.no_such_name
