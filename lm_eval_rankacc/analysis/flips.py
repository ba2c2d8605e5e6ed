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


def _category_rows(task: str, ts: TaskSamples, category: np.ndarray) -> list[dict]:
    """Count and share of each category per ties setting."""
    rows = []
    for ties, mask in subsets(ts):
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
        "reference_correct": bool(before[k]), "policy_correct": bool(after[k]),
        "category": theory.CATEGORIES[category[k]],
    } for k in range(len(ts))]


def flips(
    reference: Run | str | Path,
    policy: Run | str | Path,
    tasks: str | Sequence[str] | None = None,
    metric: str = "rank_acc",
) -> Report:
    """Ranking flips between two runs of the same documents (any two
    checkpoints): per document whether each ranks it correctly under
    ``metric``, and per task the four categories with counts and shares.
    Tasks found in only one run are named in the notes; documents are
    matched by id and doc_hash (different documents: an error)."""
    check_metric(metric)
    ref, pol = as_run(reference, tasks), as_run(policy, tasks, require_match=False)
    label_ref, label_pol = unique_labels([ref, pol])
    notes: list[str] = []
    rows, documents = [], []
    for task in _common_tasks(ref, pol, label_ref, label_pol, notes):
        ts, other = ref.tasks[task], pol.tasks[task]
        order = match_documents(ts, other, f"reference {label_ref}", f"policy {label_pol}")
        notes += filter(None, [invalid_note(label_ref, task, ts), invalid_note(label_pol, task, other)])
        before, after = observed_correct(ts, metric), observed_correct(other, metric)
        if before is None or after is None:
            notes.append(f"{task}: {metric} needs token counts, which a run lacks: not compared")
            continue
        after = after[order]
        category = theory.flip_categories(before, after)
        rows += _category_rows(task, ts, category)
        documents += _document_rows(task, ts, before, after, category)
    notes.extend(f"reference: {n}" for n in ref.notes)
    notes.extend(f"policy: {n}" for n in pol.notes)
    meta = {"reference": label_ref, "reference_path": str(ref.folder), "policy": label_pol,
            "policy_path": str(pol.folder), "metric": metric, "tie_eps": theory.TIE_EPS}
    return Report("flips", f"Ranking flips ({metric}): {label_ref} -> {label_pol}", meta,
                  [Section("flips", ["task", "ties", "category", "count", "share", "n"], rows)], notes, documents)
