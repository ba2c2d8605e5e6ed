"""Analyses of finished rankacc runs: idealized ranking accuracy and the
alignment gap, ranking flips between two checkpoints (with reward
accuracy), paired statistics of any two runs (:func:`compare`), hard-to-learn
datapoints (Chen et al. 2024, Sec. 3-4), and the leaderboard of many models
(``leaderboard(..., paper=True)`` adds the paper's published rows,
:func:`published_rows`).
Reads lm-eval's outputs through :mod:`lm_eval_rankacc.outputs.runs` (``--log_samples``)
and :mod:`lm_eval_rankacc.outputs.results` (results JSON); never reruns a model.

Each analysis is a function returning a :class:`Report` (plain data),
rendered by :func:`lm_eval_rankacc.report.tables.render`::

    report = analysis.idealized("out/ref", ["out/dpo"])
    print(tables.render(report, "md"))

The mathematics is in :mod:`lm_eval_rankacc.core.theory`; the analyses only
select documents, match runs and aggregate. Nothing here imports
:mod:`lm_eval_rankacc.report`.
"""

from __future__ import annotations

from lm_eval_rankacc.analysis.base import (
    CONVENTIONS,
    DEFAULT_BETAS,
    Report,
    Section,
    alpha_source,
    idealized_correct,
    observed_correct,
    task_scores,
)
from lm_eval_rankacc.analysis.compare import compare
from lm_eval_rankacc.analysis.flips import flips
from lm_eval_rankacc.analysis.hardness import hardness
from lm_eval_rankacc.analysis.idealized import idealized
from lm_eval_rankacc.analysis.in_memory import in_memory_run
from lm_eval_rankacc.analysis.leaderboard import DEFAULT_METRICS, leaderboard
from lm_eval_rankacc.analysis.paper import published_rows
from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.core.theory import CATEGORIES

__all__ = [
    "CATEGORIES", "CONVENTIONS", "DEFAULT_BETAS", "DEFAULT_METRICS", "Report", "RunError", "Section", "alpha_source",
    "compare", "flips", "hardness", "idealized", "idealized_correct", "in_memory_run", "leaderboard", "observed_correct",
    "published_rows", "task_scores",
]

#: Names of release 0.1 that changed: old name -> new name (importable for one release, with a warning).
RENAMED = {"metric_scores": "task_scores"}


def __getattr__(name: str):
    if name in RENAMED:
        import warnings

        warnings.warn(f"lm_eval_rankacc.analysis.{name} is deprecated and will be removed in the next release: "
                      f"use lm_eval_rankacc.analysis.{RENAMED[name]}", DeprecationWarning, stacklevel=2)
        return globals()[RENAMED[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
