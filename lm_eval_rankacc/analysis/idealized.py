"""Idealized ranking accuracy of a reference model and the alignment gap of
its policies (Chen et al. 2024, Sec. 3; the paper's Tables 1 and 6)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lm_eval_rankacc import theory
from lm_eval_rankacc.analysis.base import (
    DEFAULT_BETAS,
    Report,
    Section,
    alpha_source,
    beta_key,
    check_betas,
    idealized_correct,
    invalid_note,
    mean,
    observed_correct,
    subsets,
    unique_labels,
)
from lm_eval_rankacc.errors import RunError
from lm_eval_rankacc.runs import Run, TaskSamples, as_run, match_documents

#: (row key of the idealized accuracy, metric, row key of the observed value, row key of the gap)
_STARS = (("R_norm_star", "rank_acc_norm", "R_norm", "gap_norm"), ("R_star", "rank_acc", "R", "gap"))


def _observed(task: str, ts: TaskSamples, labels: list[str], pols: list[Run], notes: list[str]) -> list[tuple]:
    """(label, role, R~ per document, R per document) of the reference and each
    policy on the reference's documents, in its order; R~ "missing" for a policy
    without the task."""
    observed = [(labels[0], "reference", observed_correct(ts, "rank_acc_norm"), observed_correct(ts, "rank_acc"))]
    for label, pol in zip(labels[1:], pols):
        other = pol.tasks.get(task)
        if other is None:
            observed.append((label, "policy", "missing", None))
            notes.append(f"{label}: task {task} missing from its run ({pol.folder})")
            continue
        order = match_documents(ts, other, f"reference {labels[0]}", f"policy {label}")
        notes += filter(None, [invalid_note(label, task, other)])
        r_norm, r = observed_correct(other, "rank_acc_norm"), observed_correct(other, "rank_acc")
        if r_norm is None:
            notes.append(f"{label}: task {task} has no token counts in its run, so its R~ is n/a")
        observed.append((label, "policy", None if r_norm is None else r_norm[order], r[order]))
    return observed


def _star_cells(row: dict, stars: dict, betas: list[float]) -> None:
    """Add min / median / max over ``betas`` of the idealized accuracy, the gap and each beta's value."""
    for name, metric, obs, gap in _STARS:
        vals = stars[metric]  # one value per beta, or None
        med = None if vals is None else float(np.median(vals))
        row[f"{name}_min"] = None if vals is None else float(vals.min())
        row[f"{name}_median"] = med
        row[f"{name}_max"] = None if vals is None else float(vals.max())
        row[gap] = None if med is None or row[obs] is None else med - row[obs]
        for b, v in zip(betas, [None] * len(betas) if vals is None else vals):
            row[f"{name}@{beta_key(b)}"] = None if v is None else float(v)


def _task_rows(task: str, ts: TaskSamples, source: str, star: dict, observed: list[tuple],
               betas: list[float]) -> list[dict]:
    """One row per ties setting and model of one task (``source``: where its alpha comes from)."""
    rows = []
    for ties, mask in subsets(ts):
        stars = {m: mean(v, mask) for m, v in star.items()}
        for label, role, r_norm, r in observed:
            row = {"task": task, "ties": ties, "model": label, "role": role, "n": int(mask.sum()), "alpha": source}
            if isinstance(r_norm, str):  # missing task
                row["missing"] = True
            else:
                row["R_norm"], row["R"] = mean(r_norm, mask), mean(r, mask)
                _star_cells(row, stars, betas)
            rows.append(row)
    return rows


def _closing_notes(ref: Run, pols: list[Run], labels: list[str], alpha_eps: float, flagged: bool,
                   multi: bool) -> list[str]:
    notes = []
    if flagged:
        pairs = " (and each strictly ordered pair of a document of n > 2 responses)" if multi else ""
        notes.append(
            f"\u2020 alpha 'none'/'partial': documents without rater proportions{pairs} are taken as alpha = 1 "
            f"for the preferred response, clipped to 1 - {alpha_eps:g}; their R* depends on that eps alone"
        )
    notes.extend(f"reference: {n}" for n in ref.notes)
    for label, pol in zip(labels[1:], pols):
        notes.extend(f"{label}: {n}" for n in pol.notes)
        extra = sorted(set(pol.tasks) - set(ref.tasks))
        if extra:
            notes.append(f"{label}: tasks not in the reference run, not compared: {', '.join(extra)}")
    return notes


def _columns(betas: list[float]) -> list[str]:
    columns = ["task", "ties", "model", "role", "n", "alpha", "R_norm", "R"]
    for name, *_ in _STARS:
        columns += [f"{name}_min", f"{name}_median", f"{name}_max"]
    columns += [gap for *_, gap in _STARS]
    for name, *_ in _STARS:
        columns += [f"{name}@{beta_key(b)}" for b in betas]
    return columns


def idealized(
    reference: Run | str | Path,
    policies: Sequence[Run | str | Path] = (),
    betas: Sequence[float] | str = DEFAULT_BETAS,
    tasks: str | Sequence[str] | None = None,
    alpha_eps: float = theory.ALPHA_EPS,
) -> Report:
    """Idealized ranking accuracy of the reference model and the alignment gap
    of each policy (the paper's Tables 1 and 6).

    Per task, per ties setting ("excluded": human ties left out; "included":
    all documents, only for tasks with ties) and per model (the reference
    first, then each policy): observed R~ and R, the reference's idealized
    R~* and R* as min / median / max over ``betas``, and the alignment gap
    (median idealized minus observed). A policy run lacking a task gets a
    row marked missing and a note; a policy over other documents is an error.
    """
    betas = check_betas(betas)
    if not 0.0 < alpha_eps < 0.5:
        raise RunError(f"alpha eps must be in (0, 0.5), got {alpha_eps!r}")
    ref = as_run(reference, tasks)
    pols = [as_run(p, tasks, require_match=False) for p in policies]
    labels = unique_labels([ref, *pols])
    rows, notes = [], []
    flagged = multi = False
    for task, ts in ref.tasks.items():
        star = {m: idealized_correct(ts, betas, m, alpha_eps) for m in ("rank_acc_norm", "rank_acc")}
        observed = _observed(task, ts, labels, pols, notes)
        source = alpha_source(ts)
        flagged |= source != "votes"
        multi |= bool((ts.sizes > 2).any())
        rows += _task_rows(task, ts, source, star, observed, betas)
        if not ts.has_token_counts:
            notes.append(f"{task}: the reference run has no token counts, so R~ and R~* are n/a")
        notes += filter(None, [invalid_note(labels[0], task, ts)])
    notes += _closing_notes(ref, pols, labels, alpha_eps, flagged, multi)
    meta = {
        "reference": labels[0], "reference_path": str(ref.folder),
        "policies": {label: str(p.folder) for label, p in zip(labels[1:], pols)},
        "betas": betas, "alpha_eps": alpha_eps, "tie_eps": theory.TIE_EPS,
    }
    return Report("idealized", "Idealized ranking accuracy and alignment gap", meta,
                  [Section("idealized", _columns(betas), rows)], notes)
