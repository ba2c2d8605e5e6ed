"""Ranking flips between two runs of the same documents (Chen et al. 2024,
Sec. 4, Fig. 2): per document whether each run ranks it correctly, and per
task the four flip categories of :func:`theory.flip_categories`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lm_eval_rankacc import theory
from lm_eval_rankacc.analysis.base import (
    Report,
    Section,
    check_convention,
    check_metric,
    invalid_note,
    observed_correct,
    subsets,
    unique_labels,
)
from lm_eval_rankacc.errors import RunError
from lm_eval_rankacc.runs import Run, TaskSamples, as_run, match_documents


def _common_tasks(ref: Run, pol: Run, label_ref: str, label_pol: str, notes: list[str]) -> list[str]:
    """The tasks of both runs (reference order); those of one run only named in ``notes``."""
    for name, a, b in ((label_pol, ref, pol), (label_ref, pol, ref)):
        missing = sorted(set(a.tasks) - set(b.tasks))
        if missing:
            notes.append(f"{name}: missing task(s) {', '.join(missing)}: not compared")
    common = [t for t in ref.tasks if t in pol.tasks]
    if not common:
        raise RunError(
            f"the runs share no rankacc task (reference: {', '.join(ref.tasks)}; policy: {', '.join(pol.tasks)})"
        )
    return common


#: The category code of a document left out by the released convention (a NaN score in either run).
LEFT_OUT = -1


def _categories(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """:func:`theory.flip_categories` per document; :data:`LEFT_OUT` where
    either verdict is NaN (the released convention's left-out documents)."""
    if before.dtype.kind != "f":  # the paper convention: booleans, every document kept
        return theory.flip_categories(before, after)
    category = theory.flip_categories(before == 1.0, after == 1.0)
    return np.where(np.isnan(before) | np.isnan(after), LEFT_OUT, category)


def _verdict(value: float) -> bool | None:
    return None if np.isnan(value) else bool(value)


def _category_rows(task: str, ts: TaskSamples, category: np.ndarray) -> list[dict]:
    """Count and share of each category per ties setting (left-out documents not counted)."""
    rows = []
    for ties, mask in subsets(ts):
        mask = mask & (category != LEFT_OUT)
        n = int(mask.sum())
        counts = np.bincount(category[mask], minlength=len(theory.CATEGORIES))
        for name, count in zip(theory.CATEGORIES, counts):
            rows.append({"task": task, "ties": ties, "category": name, "count": int(count),
                         "share": (count / n) if n else None, "n": n})
    return rows


def _document_rows(task: str, ts: TaskSamples, before: np.ndarray, after: np.ndarray,
                   category: np.ndarray) -> list[dict]:
    tied = ts.tied
    return [{
        "task": task, "id": ts.ids[k], "doc_hash": ts.hashes[k], "tie": bool(tied[k]),
        "reference_correct": _verdict(before[k]), "policy_correct": _verdict(after[k]),
        "category": "left out" if category[k] == LEFT_OUT else theory.CATEGORIES[category[k]],
    } for k in range(len(ts))]


def flips(
    reference: Run | str | Path,
    policy: Run | str | Path,
    tasks: str | Sequence[str] | None = None,
    metric: str = "rank_acc",
    convention: str = "paper",
) -> Report:
    """Ranking flips between two runs of the same documents (any two
    checkpoints): per document whether each ranks it correctly under
    ``metric``, and per task the four categories with counts and shares.
    Tasks found in only one run are named in the notes; documents are
    matched by id and doc_hash (different documents: an error).
    ``convention="released"`` decides correctness with the released code's
    rules (:mod:`lm_eval_rankacc.released`); a document it leaves out (a NaN
    score in either run) is in no category and is counted in a note."""
    check_metric(metric)
    check_convention(convention, [metric])
    ref, pol = as_run(reference, tasks), as_run(policy, tasks, require_match=False)
    label_ref, label_pol = unique_labels([ref, pol])
    notes: list[str] = []
    rows, documents = [], []
    for task in _common_tasks(ref, pol, label_ref, label_pol, notes):
        ts, other = ref.tasks[task], pol.tasks[task]
        order = match_documents(ts, other, f"reference {label_ref}", f"policy {label_pol}")
        notes += filter(None, [invalid_note(label_ref, task, ts, convention),
                               invalid_note(label_pol, task, other, convention)])
        before, after = observed_correct(ts, metric, convention), observed_correct(other, metric, convention)
        if before is None or after is None:
            notes.append(f"{task}: {metric} needs token counts, which a run lacks: not compared")
            continue
        after = after[order]
        category = _categories(before, after)
        left = int((category == LEFT_OUT).sum())
        if left:
            notes.append(f"{task}: {left} of {len(ts)} documents left out of the flips: a NaN score in either run "
                         "(released convention)")
        rows += _category_rows(task, ts, category)
        documents += _document_rows(task, ts, before, after, category)
    notes.extend(f"reference: {n}" for n in ref.notes)
    notes.extend(f"policy: {n}" for n in pol.notes)
    meta = {"convention": convention, "reference": label_ref, "reference_path": str(ref.folder), "policy": label_pol,
            "policy_path": str(pol.folder), "metric": metric}
    meta.update({"tie_eps": theory.TIE_EPS} if convention == "paper" else
                {"rules": "the authors' released code (docs/conventions.md)"})
    return Report("flips", f"Ranking flips ({metric}, {convention} convention): {label_ref} -> {label_pol}", meta,
                  [Section("flips", ["task", "ties", "category", "count", "share", "n"], rows)], notes, documents)
