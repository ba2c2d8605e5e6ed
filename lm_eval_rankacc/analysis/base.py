"""What every analysis shares: the :class:`Report` it returns (plain data,
rendered by :mod:`lm_eval_rankacc.report`) and the per-document rules over
one task's logged samples: which documents a run ranks correctly
(:func:`observed_correct`), which the idealized model built on it does
(:func:`idealized_correct`), where alpha comes from, the ties subsets, and
the checks of the common options. The mathematics is
:mod:`lm_eval_rankacc.core.theory` (the paper's definitions, convention ``paper``)
and :mod:`lm_eval_rankacc.core.released` (the rules of the authors' released code,
convention ``released``); this module only selects and aggregates.

Per-document outcomes are boolean arrays under ``paper``; under ``released``
they are float arrays, 1.0 / 0.0 and NaN for a document the released code
leaves out of the mean (:func:`mean` skips it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lm_eval_rankacc.core import released, theory
from lm_eval_rankacc.core.theory import DEFAULT_BETAS  # noqa: F401 - the analyses' default grid, named here too
from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.outputs.columns import TaskSamples
from lm_eval_rankacc.outputs.runs import Run

#: The rules an analysis computes under: the paper's definitions (:mod:`theory`)
#: or the authors' released code (:mod:`released`); ``docs/conventions.md``.
CONVENTIONS = ("paper", "released")
#: The metrics the released code computes: whether its score is length-normalized.
RELEASED_METRICS = {"rank_acc": False, "rank_acc_norm": True}


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
    documents: Sequence[dict[str, Any]] = field(default_factory=list)  # a list or :class:`LazyRows`


class LazyRows(Sequence):
    """Per-document rows (a :class:`Report`'s ``documents``) built only when
    asked for: ``parts`` of (number of rows, row(k)), in order. Keeps a
    million-document report from holding a dict per document, and a row's
    texts from being read back from its run before it is shown."""

    def __init__(self, parts: Sequence[tuple[int, Callable[[int], dict[str, Any]]]] = ()):
        self._parts = list(parts)
        self._ends = np.cumsum([n for n, _ in self._parts], dtype=np.int64)

    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def __getitem__(self, k):  # noqa: ANN001, ANN204 - an int or a slice
        if isinstance(k, slice):
            return [self[j] for j in range(*k.indices(len(self)))]
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(k)
        part = int(np.searchsorted(self._ends, k, side="right"))
        return self._parts[part][1](k - (int(self._ends[part - 1]) if part else 0))


# ----------------------------------------------------------------- per-document rules
def check_metric(metric: str) -> None:
    """A core per-document metric (:data:`theory.METRIC_UNITS`), else :class:`RunError`."""
    if metric not in theory.METRIC_UNITS:
        raise RunError(f"unknown metric {metric!r}; one of {', '.join(theory.METRIC_UNITS)}")


def task_scores(ts: TaskSamples, index: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(scores, tie_scores) of the documents ``index`` (all of one size) under
    a core metric (:func:`theory.metric_scores`); None when the run lacks the
    metric's unit (no token counts).

    Examples:
        >>> from lm_eval_rankacc.analysis.in_memory import in_memory_run
        >>> ranks = [[1, 2]] * 4  # four pairs, response 1 preferred
        >>> ref = in_memory_run("ref", {"t": ([[-1.0, -2.0], [-3.0, -1.0], [-2.0, -2.5], [-4.0, -1.0]], ranks)})
        >>> scores, tie_scores = task_scores(ref.tasks["t"], [0, 1], "rank_acc")
        >>> scores
        array([[-1., -2.],
               [-3., -1.]])
    """
    check_metric(metric)
    unit = theory.METRIC_UNITS[metric]
    units = None if unit is None else ts.array(unit, index)
    if units is not None and np.isnan(units).any():
        return None
    return theory.metric_scores(ts.array("loglik", index), units)


def check_convention(convention: str, metrics: Sequence[str] = ()) -> None:
    """One of :data:`CONVENTIONS`, and under ``released`` only the metrics the
    released code computes (R and R~); else :class:`RunError`."""
    if convention not in CONVENTIONS:
        raise RunError(f"unknown convention {convention!r}; one of {', '.join(CONVENTIONS)}")
    other = [m for m in metrics if convention == "released" and m not in RELEASED_METRICS]
    if other:
        raise RunError(f"{', '.join(other)}: the released code has no counterpart; --convention released "
                       f"computes {', '.join(RELEASED_METRICS)} only")


def _task_error(ts: TaskSamples, err: ValueError) -> RunError:
    return RunError(f"{ts.task} ({ts.path.name}): {err}")


def _released_arrays(ts: TaskSamples, index: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(loglik, n_tokens) of the documents ``index`` for a released rule of
    ``metric``; None when R~ needs token counts the run lacks."""
    n_tokens = ts.array("n_tokens", index)
    if RELEASED_METRICS[metric] and np.isnan(n_tokens).any():
        return None
    return ts.array("loglik", index), n_tokens


def _released_observed(ts: TaskSamples, metric: str) -> np.ndarray | None:
    """Per document, :func:`released.rankings_correct` (the ties path on
    :data:`released.TIES_PATH_TASKS`)."""
    out = np.full(len(ts), np.nan)
    for n, idx in ts.groups().items():
        arrays = _released_arrays(ts, idx, metric)
        if arrays is None:
            return None
        doc_scores = released.scores(*arrays, normalized=RELEASED_METRICS[metric])
        ties_path = n == 2 and ts.task in released.TIES_PATH_TASKS
        out[idx] = released.rankings_correct(doc_scores, ts.array("ranks", idx), ties_path)
    return out


def observed_correct(ts: TaskSamples, metric: str = "rank_acc", convention: str = "paper") -> np.ndarray | None:
    """Per document (file order): whether the run ranks it correctly under
    ``metric``, recomputed from ``scores`` with the rule of the core metrics
    (``paper``, booleans) or of the released code (``released``, 1.0 / 0.0 /
    NaN = left out); None when the run lacks the metric's token counts.

    Examples:
        >>> from lm_eval_rankacc.analysis.in_memory import in_memory_run
        >>> ranks = [[1, 2]] * 4  # four pairs, response 1 preferred
        >>> ref = in_memory_run("ref", {"t": ([[-1.0, -2.0], [-3.0, -1.0], [-2.0, -2.5], [-4.0, -1.0]], ranks)})
        >>> observed_correct(ref.tasks["t"])
        array([ True, False,  True, False])
    """
    check_convention(convention, [metric])
    key = ("observed_correct", metric, convention)
    if key not in ts.derived:  # computed once per run (flips asks for each metric twice), read-only
        out = _observed(ts, metric, convention)
        if out is not None:
            out.flags.writeable = False
        ts.derived[key] = out
    return ts.derived[key]


def _observed(ts: TaskSamples, metric: str, convention: str) -> np.ndarray | None:
    if convention == "released":
        return _released_observed(ts, metric)
    out = np.zeros(len(ts), dtype=bool)
    for _, idx in ts.groups().items():
        scores = task_scores(ts, idx, metric)
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
    convention: str = "paper",
) -> np.ndarray | None:
    """(len(betas), N): the idealized model built on this run as the
    reference ranks each document correctly (R* for ``rank_acc``, R~* for
    ``rank_acc_norm``); booleans of :func:`theory.idealized_rankings_correct`,
    or under ``released`` the outcomes of
    :func:`released.idealized_rankings_correct` (NaN: left out; the released
    rule scores pairs, so documents of n > 2 responses are left out).

    Examples:
        >>> from lm_eval_rankacc.analysis.in_memory import in_memory_run
        >>> ranks = [[1, 2]] * 4  # four pairs, response 1 preferred
        >>> ref = in_memory_run("ref", {"t": ([[-1.0, -2.0], [-3.0, -1.0], [-2.0, -2.5], [-4.0, -1.0]], ranks)})
        >>> idealized_correct(ref.tasks["t"], [0.1]).astype(int)  # one row per beta
        array([[1, 1, 1, 1]])
    """
    check_convention(convention, [metric])
    if convention == "released":
        return _released_idealized(ts, betas, metric)
    out = np.zeros((len(betas), len(ts)), dtype=bool)
    for _, idx in ts.groups().items():
        scores = task_scores(ts, idx, metric)
        if scores is None:
            return None
        try:
            out[:, idx] = theory.idealized_rankings_correct(
                scores[0], ts.array("ranks", idx), ts.array("alpha", idx), betas, scores[1], alpha_eps
            )
        except ValueError as err:
            raise _task_error(ts, err) from None
    return out


def _released_idealized(ts: TaskSamples, betas: Sequence[float], metric: str) -> np.ndarray | None:
    out = np.full((len(betas), len(ts)), np.nan)
    pairs = np.flatnonzero(ts.sizes == 2)
    arrays = _released_arrays(ts, pairs, metric) if len(pairs) else None
    if arrays is None:
        return None if len(pairs) else out
    out[:, pairs] = released.idealized_rankings_correct(
        *arrays, ts.array("ranks", pairs), ts.array("alpha", pairs), betas, RELEASED_METRICS[metric])
    return out


def invalid_note(label: str, task: str, ts: TaskSamples, convention: str = "paper") -> str | None:
    """A note counting the documents of a run with a NaN or infinite
    log-likelihood (:func:`theory.is_valid`): every paper rule ranks them
    wrongly; the released code leaves a NaN out and ranks an infinity."""
    flat = getattr(ts.loglik, "flat", None)
    if flat is not None and np.isfinite(flat).all():  # the common case at once, without a per-document pass
        return None
    count = int(sum((~np.isfinite(ts.array("loglik", idx))).any(axis=1).sum() for idx in ts.groups().values()))
    if not count:
        return None
    if convention == "released":
        return (f"{label}: {task}: {count} of {len(ts)} documents have NaN or infinite log-likelihoods: under the "
                "released convention a NaN leaves the document out of the mean, an infinity is ranked like any "
                "other score")
    return (f"{label}: {task}: {count} of {len(ts)} documents have NaN or infinite log-likelihoods and count as "
            "ranked wrongly")


def left_out_note(label: str, task: str, what: str, outcomes: np.ndarray | None) -> str | None:
    """Under the released convention: how many documents ``outcomes`` leaves
    out of the mean of ``what`` (NaN), per beta for a (B, N) array."""
    if outcomes is None or outcomes.dtype.kind != "f":
        return None
    left = np.isnan(outcomes).sum(axis=-1)
    if not np.any(left):
        return None
    count = str(int(left)) if outcomes.ndim == 1 else "/".join(str(int(k)) for k in left) + " (per beta)"
    return f"{label}: {task}: {what}: {count} of {outcomes.shape[-1]} documents left out (released convention)"


def alpha_source(ts: TaskSamples) -> str:
    """``votes`` when every document carries rater proportions (pairs with
    alpha, ties need none), ``none`` when no pair does, else ``partial``.
    Documents of n > 2 responses never carry alpha.

    Examples:
        >>> from lm_eval_rankacc.analysis.in_memory import in_memory_run
        >>> ranks = [[1, 2]] * 4  # four pairs, response 1 preferred
        >>> ref = in_memory_run("ref", {"t": ([[-1.0, -2.0], [-3.0, -1.0], [-2.0, -2.5], [-4.0, -1.0]], ranks)})
        >>> alpha_source(ref.tasks["t"])  # no rater shares: the preferred response gets alpha = 1
        'none'
    """
    needs = ~ts.tied
    have = int((needs & (ts.sizes == 2) & ~np.isnan(ts.alpha)).sum())
    if have == int(needs.sum()):
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
    """Share of correct documents in ``mask``: a float for (N,) values, one
    per row for (B, N); None without values or documents. Float outcomes
    (the released convention) leave out their NaN documents, as the released
    code's ``np.nanmean`` does (NaN where a row keeps none)."""
    if values is None or not mask.any():
        return None
    chosen = values if mask.all() else values[..., mask]
    if chosen.dtype.kind == "f":
        kept = ~np.isnan(chosen)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(kept, chosen, 0.0).sum(axis=-1) / kept.sum(axis=-1)
        if values.ndim == 1:
            return None if np.isnan(means) else float(means)
        return means
    means = np.count_nonzero(chosen, axis=-1) / chosen.shape[-1]  # booleans: the exact mean
    return float(means) if values.ndim == 1 else means


def common_tasks(a: Run, b: Run, label_a: str, label_b: str, notes: list[str],
                 roles: tuple[str, str] = ("reference", "policy")) -> list[str]:
    """The tasks of both runs (``a``'s order); those of one run only named in ``notes``."""
    for name, one, other in ((label_b, a, b), (label_a, b, a)):
        missing = sorted(set(one.tasks) - set(other.tasks))
        if missing:
            notes.append(f"{name}: missing task(s) {', '.join(missing)}: not compared")
    common = [t for t in a.tasks if t in b.tasks]
    if not common:
        raise RunError(f"the runs share no rankacc task ({roles[0]}: {', '.join(a.tasks)}; "
                       f"{roles[1]}: {', '.join(b.tasks)})")
    return common


# ----------------------------------------------------------------- options and labels
def beta_key(beta: float) -> str:
    return f"{beta:g}"


def check_betas(betas: Sequence[float] | str) -> list[float]:
    """A beta grid (numbers or ``"0.1,1,10"``) as floats, by :func:`theory.check_betas`'s rule."""
    if isinstance(betas, str):
        try:
            betas = [float(b) for b in betas.split(",") if b.strip()]
        except ValueError:
            raise RunError(f"betas must be comma-separated numbers, got {betas!r}") from None
    try:
        return theory.check_betas([float(b) for b in betas]).tolist()
    except (TypeError, ValueError) as err:
        raise RunError(str(err)) from None


def unique_labels(runs: Sequence[Run]) -> list[str]:
    """The runs' labels, a clashing one followed by its folder."""
    labels = [r.label for r in runs]
    return [
        f"{label} ({run.folder})" if labels.count(label) > 1 else label for label, run in zip(labels, runs)
    ]
