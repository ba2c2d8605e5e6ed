"""What every analysis shares: the :class:`Report` it returns (plain data,
rendered by :mod:`lm_eval_rankacc.report`) and the per-document rules over
one task's logged samples: which documents a run ranks correctly
(:func:`observed_correct`), which the idealized model built on it does
(:func:`idealized_correct`), where alpha comes from, the ties subsets, and
the checks of the common options. The mathematics is
:mod:`lm_eval_rankacc.theory`; this module only selects and aggregates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lm_eval_rankacc import theory
from lm_eval_rankacc.errors import RunError
from lm_eval_rankacc.runs import Run, TaskSamples

DEFAULT_BETAS = (0.01, 0.1, 1.0, 5.0, 10.0)


# ----------------------------------------------------------------- the result of an analysis
@dataclass
class Section:
    """One table: a title, the column keys in order, and the rows."""

    title: str
    columns: list[str]
    rows: list[dict[str, Any]]


@dataclass
class Report:
    """The result of one analysis: ``kind`` (``idealized``, ``flips``,
    ``hardness``, ``leaderboard``) picks its layout when rendered; sections
    of rows keyed by column, notes, metadata and optionally one row per document."""

    kind: str
    title: str
    meta: dict[str, Any]
    sections: list[Section]
    notes: list[str] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)


# ----------------------------------------------------------------- per-document rules
def check_metric(metric: str) -> None:
    """A core per-document metric (:data:`theory.METRIC_UNITS`), else :class:`RunError`."""
    if metric not in theory.METRIC_UNITS:
        raise RunError(f"unknown metric {metric!r}; one of {', '.join(theory.METRIC_UNITS)}")


def metric_scores(ts: TaskSamples, index: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(scores, tie_scores) of the documents ``index`` (all of one size) under
    a core metric (:func:`theory.metric_scores`); None when the run lacks the
    metric's unit (no token counts)."""
    check_metric(metric)
    unit = theory.METRIC_UNITS[metric]
    units = None if unit is None else ts.array(unit, index)
    if units is not None and np.isnan(units).any():
        return None
    return theory.metric_scores(ts.array("loglik", index), units)


def _task_error(ts: TaskSamples, err: ValueError) -> RunError:
    return RunError(f"{ts.task} ({ts.path.name}): {err}")


def observed_correct(ts: TaskSamples, metric: str = "rank_acc") -> np.ndarray | None:
    """Boolean per document (file order): the run ranks it correctly under
    ``metric`` (the rule of the core metrics, recomputed from ``scores``)."""
    out = np.zeros(len(ts), dtype=bool)
    for _, idx in ts.groups().items():
        scores = metric_scores(ts, idx, metric)
        if scores is None:
            return None
        try:
            out[idx] = theory.rankings_correct(scores[0], ts.array("ranks", idx), scores[1])
        except ValueError as err:
            raise _task_error(ts, err) from None
    return out


def idealized_correct(
    ts: TaskSamples,
    betas: Sequence[float],
    metric: str = "rank_acc",
    alpha_eps: float = theory.ALPHA_EPS,
) -> np.ndarray | None:
    """Boolean (len(betas), N): the idealized model built on this run as the
    reference ranks each document correctly (R* for ``rank_acc``, R~* for
    ``rank_acc_norm``); see :func:`theory.idealized_rankings_correct`."""
    out = np.zeros((len(betas), len(ts)), dtype=bool)
    for _, idx in ts.groups().items():
        scores = metric_scores(ts, idx, metric)
        if scores is None:
            return None
        try:
            out[:, idx] = theory.idealized_rankings_correct(
                scores[0], ts.array("ranks", idx), ts.array("alpha", idx), betas, scores[1], alpha_eps
            )
        except ValueError as err:
            raise _task_error(ts, err) from None
    return out


def invalid_note(label: str, task: str, ts: TaskSamples) -> str | None:
    """A note counting the documents of a run with a NaN or infinite
    log-likelihood (:func:`theory.is_valid`): every rule ranks them wrongly."""
    count = sum(not all(theory.is_valid(x) for x in ll) for ll in ts.loglik)
    if not count:
        return None
    return (f"{label}: {task}: {count} of {len(ts)} documents have NaN or infinite log-likelihoods and count as "
            "ranked wrongly")


def alpha_source(ts: TaskSamples) -> str:
    """``votes`` when every document carries rater proportions (pairs with
    alpha, ties need none), ``none`` when no pair does, else ``partial``.
    Documents of n > 2 responses never carry alpha."""
    sizes, tied = ts.sizes, ts.tied
    needs = [i for i in range(len(ts)) if not tied[i]]
    have = [i for i in needs if sizes[i] == 2 and ts.docs[i].get("alpha") is not None]
    if len(have) == len(needs):
        return "votes"
    return "none" if not have else "partial"


def subsets(ts: TaskSamples) -> list[tuple[str, np.ndarray]]:
    """("excluded", non-tie documents) and, where the task has ties, ("included", all)."""
    tied = ts.tied
    out = [("excluded", ~tied)]
    if tied.any():
        out.append(("included", np.ones(len(ts), dtype=bool)))
    return out


def mean(values: np.ndarray | None, mask: np.ndarray):
    """Share of True over the documents in ``mask``: a float for (N,) values,
    one per row for (B, N); None without values or documents."""
    if values is None or not mask.any():
        return None
    means = values[..., mask].mean(axis=-1)
    return float(means) if values.ndim == 1 else means


# ----------------------------------------------------------------- options and labels
def beta_key(beta: float) -> str:
    return f"{beta:g}"


def check_betas(betas: Sequence[float] | str) -> list[float]:
    """A beta grid (numbers or ``"0.1,1,10"``) as floats, all finite and > 0."""
    if isinstance(betas, str):
        try:
            betas = [float(b) for b in betas.split(",") if b.strip()]
        except ValueError:
            raise RunError(f"betas must be comma-separated numbers, got {betas!r}") from None
    betas = [float(b) for b in betas]
    if not betas or not all(np.isfinite(b) and b > 0 for b in betas):
        raise RunError(f"betas must be finite numbers > 0, got {betas}")
    return betas


def unique_labels(runs: Sequence[Run]) -> list[str]:
    """The runs' labels, a clashing one followed by its folder."""
    labels = [r.label for r in runs]
    return [
        f"{label} ({run.folder})" if labels.count(label) > 1 else label for label, run in zip(labels, runs)
    ]
