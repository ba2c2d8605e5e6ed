"""Hard-to-learn datapoints (Chen et al. 2024, Thm. 4.1; the paper's Tables
7-9): per two-response document of a reference run the log-ratio c and the
DPO loss at or below which a policy ranks the pair correctly."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lm_eval_rankacc.core import theory
from lm_eval_rankacc.analysis.base import LazyRows, Report, Section, check_betas
from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.outputs.columns import TaskSamples
from lm_eval_rankacc.outputs.runs import Run, as_run

LISTS = ("hard to learn", "easy", "easy to flip")
_SUMMARY = ["task", "pairs", "left_out", "share_c_positive", "c_min", "c_median", "c_max", "threshold_at_median_c"]
_LISTED = ("id", "c", "loss_threshold", "prompt", "chosen", "rejected")


class _Pairs:
    """The two-response documents with a strict human preference of one task
    (Thm. 4.1), as arrays: their index in the run, log-likelihoods of the
    chosen and rejected response, c, loss threshold, whether the reference
    ranks them correctly. Texts are read from the run only for the rows asked
    for (:meth:`row`)."""

    def __init__(self, task: str, ts: TaskSamples, beta: float):
        self.task, self.ts = task, ts
        self.index = np.flatnonzero((ts.sizes == 2) & ~ts.tied)
        ll = ts.array("loglik", self.index) if len(self.index) else np.zeros((0, 2))
        ranks = ts.array("ranks", self.index) if len(self.index) else np.zeros((0, 2), dtype=int)
        self.first = ranks[:, 0] < ranks[:, 1]
        self.ll_w = np.where(self.first, ll[:, 0], ll[:, 1])
        self.ll_l = np.where(self.first, ll[:, 1], ll[:, 0])
        with np.errstate(invalid="ignore", over="ignore"):  # NaN / inf scores: a NaN c, counted in a note
            self.c = theory.reference_log_ratio(self.ll_w, self.ll_l)
            self.threshold = theory.dpo_loss_threshold(self.c, beta)
            self.correct = theory.pairs_ranked_correctly(self.ll_w, self.ll_l)

    def __len__(self) -> int:
        return len(self.index)

    def row(self, k: int) -> dict[str, Any]:
        """The entry of the ``k``-th pair, with its texts."""
        i = int(self.index[k])
        doc = self.ts.docs[i]
        w = 0 if self.first[k] else 1
        return {
            "task": self.task, "id": self.ts.ids[i], "doc_hash": self.ts.hashes[i],
            "loglik_chosen": float(self.ll_w[k]), "loglik_rejected": float(self.ll_l[k]),
            "c": float(self.c[k]), "loss_threshold": float(self.threshold[k]),
            "reference_correct": bool(self.correct[k]),
            "prompt": str(doc["prompt"]), "chosen": str(doc["responses"][w]), "rejected": str(doc["responses"][1 - w]),
        }


def _summary(task: str, ts: TaskSamples, cv: np.ndarray, beta: float) -> dict[str, Any]:
    """The distribution of the finite c ``cv`` of one task."""
    positive = int((cv > 0).sum())
    return {
        "task": task, "pairs": len(cv),
        "left_out": int(len(ts) - len(cv)),
        "share_c_positive": (positive / len(cv)) if len(cv) else None,
        "c_min": float(cv.min()) if len(cv) else None,
        "c_median": float(np.median(cv)) if len(cv) else None,
        "c_max": float(cv.max()) if len(cv) else None,
        "threshold_at_median_c": float(theory.dpo_loss_threshold(np.median(cv), beta)) if len(cv) else None,
    }


def _first_smallest(values: np.ndarray, top: int) -> np.ndarray:
    """The indices of the ``top`` smallest ``values`` (finite), ties in index
    order: ``np.argsort(values, kind="stable")[:top]``, sorting only the
    values up to the ``top``-th smallest."""
    if top >= len(values):
        return np.argsort(values, kind="stable")
    bound = np.partition(values, top - 1)[top - 1]
    candidates = np.flatnonzero(values <= bound)  # every tie of the bound, in index order
    return candidates[np.argsort(values[candidates], kind="stable")[:top]]


def _lists(pairs: _Pairs, finite: np.ndarray, top: int) -> list[Section]:
    """The ``top`` hard-to-learn (largest c > 0), easy (most negative c,
    c <= 0) and easy-to-flip (smallest c > 0) datapoints; ties in c keep file order."""
    c = pairs.c
    positive, easy = np.flatnonzero(finite & (c > 0)), np.flatnonzero(finite & (c <= 0))
    chosen = {
        "hard to learn": positive[_first_smallest(-c[positive], top)],
        "easy": easy[_first_smallest(c[easy], top)],
        "easy to flip": positive[_first_smallest(c[positive], top)],
    }
    sections = []
    for name in LISTS:
        entries = [pairs.row(int(k)) for k in chosen[name]]
        sections.append(Section(f"{pairs.task}: {name}", ["rank", *_LISTED],
                                [{"rank": r + 1, **{k: e[k] for k in _LISTED}} for r, e in enumerate(entries)]))
    return sections


def _left_out_note(task: str, ts: TaskSamples, finite: np.ndarray) -> str | None:
    left = {"human ties": int(ts.tied.sum()), "n > 2 responses": int((ts.sizes > 2).sum()),
            "non-finite scores": int((~finite).sum())}
    if not any(left.values()):
        return None
    return f"{task}: left out " + ", ".join(f"{v} {k}" for k, v in left.items() if v)


def _check_top(top: Any) -> None:
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise RunError(f"top must be an integer >= 1, got {top!r}")


def hardness(
    reference: Run | str | Path,
    beta: float = 0.1,
    top: int = 20,
    tasks: str | Sequence[str] | None = None,
) -> Report:
    """Theorem 4.1 per document of the reference run: c = log pRef(y_l|x) -
    log pRef(y_w|x) (summed log-probabilities) and the DPO loss threshold
    -log sigmoid(beta c) at or below which a policy ranks the pair correctly; per
    task the ``top`` hard-to-learn (largest c > 0), easy (most negative c,
    c <= 0) and easy-to-flip (smallest c > 0) datapoints with their text
    (the paper's Tables 7-9). Only two-response documents with a strict human
    preference and finite scores have a c; the others are counted and left out.

    Examples:
        >>> from lm_eval_rankacc.analysis.in_memory import in_memory_run
        >>> ranks = [[1, 2]] * 4  # four pairs, response 1 preferred
        >>> ref = in_memory_run("ref", {"t": ([[-1.0, -2.0], [-3.0, -1.0], [-2.0, -2.5], [-4.0, -1.0]], ranks)})
        >>> report = hardness(ref, beta=0.1, top=2)
        >>> summary = report.sections[0].rows[0]
        >>> summary["share_c_positive"], summary["c_median"], [r["id"] for r in report.sections[1].rows]
        (0.5, 0.75, ['d3', 'd1'])
    """
    beta = check_betas([beta])[0]
    _check_top(top)
    ref = as_run(reference, tasks)
    summary, sections, parts, notes = [], [], [], []
    for task, ts in ref.tasks.items():
        pairs = _Pairs(task, ts, beta)
        parts.append(pairs)
        finite = np.isfinite(pairs.c)
        summary.append(_summary(task, ts, pairs.c[finite], beta))
        note = _left_out_note(task, ts, finite)
        if note:
            notes.append(note)
        sections += _lists(pairs, finite, top)
    notes.append(
        f"c = log pRef(y_l|x) - log pRef(y_w|x); a policy ranks a pair correctly iff its DPO loss on it "
        f"(beta = {beta:g}) is at most loss_threshold = -log sigmoid(beta c) (Thm. 4.1)"
    )
    notes.extend(f"reference: {n}" for n in ref.notes)
    meta = {"reference": ref.label, "reference_path": str(ref.folder), "beta": beta, "top": top}
    return Report("hardness", f"Hard-to-learn datapoints (Thm. 4.1, beta = {beta:g}): {ref.label}", meta,
                  [Section("summary", _SUMMARY, summary), *sections], notes,
                  LazyRows([(len(p), p.row) for p in parts]))
