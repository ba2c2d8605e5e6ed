"""Hard-to-learn datapoints (Chen et al. 2024, Thm. 4.1; the paper's Tables
7-9): per two-response document of a reference run the log-ratio c and the
DPO loss below which a policy ranks the pair correctly."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lm_eval_rankacc import theory
from lm_eval_rankacc.analysis.base import Report, Section, check_betas
from lm_eval_rankacc.errors import RunError
from lm_eval_rankacc.runs import Run, TaskSamples, as_run

LISTS = ("hard to learn", "easy", "easy to flip")
_SUMMARY = ["task", "pairs", "left_out", "share_c_positive", "c_min", "c_median", "c_max", "threshold_at_median_c"]
_LISTED = ("id", "c", "loss_threshold", "prompt", "chosen", "rejected")


def _pair_entries(task: str, ts: TaskSamples, beta: float) -> tuple[list[dict[str, Any]], np.ndarray]:
    """One entry per two-response document with a strict human preference
    (c, loss threshold, whether the reference ranks it correctly, its text),
    and whether each c is finite."""
    pair = np.flatnonzero((ts.sizes == 2) & ~ts.tied)
    ll = ts.array("loglik", pair) if len(pair) else np.zeros((0, 2))
    ranks = ts.array("ranks", pair) if len(pair) else np.zeros((0, 2), dtype=int)
    first = ranks[:, 0] < ranks[:, 1]
    ll_w = np.where(first, ll[:, 0], ll[:, 1])
    ll_l = np.where(first, ll[:, 1], ll[:, 0])
    with np.errstate(invalid="ignore", over="ignore"):  # NaN / inf scores: a NaN c, counted in a note
        c = theory.reference_log_ratio(ll_w, ll_l)
        threshold = theory.dpo_loss_threshold(c, beta)
        correct = theory.pairs_ranked_correctly(ll_w, ll_l)
    entries = []
    for k, i in enumerate(pair):
        doc = ts.docs[i]
        w = 0 if first[k] else 1
        entries.append({
            "task": task, "id": ts.ids[i], "doc_hash": ts.hashes[i],
            "loglik_chosen": float(ll_w[k]), "loglik_rejected": float(ll_l[k]),
            "c": float(c[k]), "loss_threshold": float(threshold[k]),
            "reference_correct": bool(correct[k]),
            "prompt": str(doc["prompt"]), "chosen": str(doc["responses"][w]), "rejected": str(doc["responses"][1 - w]),
        })
    return entries, np.isfinite(c)


def _summary(task: str, ts: TaskSamples, valid: list[dict], beta: float) -> dict[str, Any]:
    """The distribution of the finite c of one task."""
    cv = np.array([e["c"] for e in valid], dtype=float)
    positive = int((cv > 0).sum())
    return {
        "task": task, "pairs": len(valid),
        "left_out": int(len(ts) - len(valid)),
        "share_c_positive": (positive / len(valid)) if valid else None,
        "c_min": float(cv.min()) if len(cv) else None,
        "c_median": float(np.median(cv)) if len(cv) else None,
        "c_max": float(cv.max()) if len(cv) else None,
        "threshold_at_median_c": float(theory.dpo_loss_threshold(np.median(cv), beta)) if len(cv) else None,
    }


def _lists(task: str, valid: list[dict], top: int) -> list[Section]:
    """The ``top`` hard-to-learn (largest c > 0), easy (most negative c,
    c <= 0) and easy-to-flip (smallest c > 0) datapoints."""
    positive = [e for e in valid if e["c"] > 0]
    chosen = {
        "hard to learn": sorted(positive, key=lambda e: -e["c"])[:top],
        "easy": sorted((e for e in valid if e["c"] <= 0), key=lambda e: e["c"])[:top],
        "easy to flip": sorted(positive, key=lambda e: e["c"])[:top],
    }
    return [Section(f"{task}: {name}", ["rank", *_LISTED],
                    [{"rank": r + 1, **{k: e[k] for k in _LISTED}} for r, e in enumerate(chosen[name])])
            for name in LISTS]


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
    -log sigmoid(beta c) below which a policy ranks the pair correctly; per
    task the ``top`` hard-to-learn (largest c > 0), easy (most negative c,
    c <= 0) and easy-to-flip (smallest c > 0) datapoints with their text
    (the paper's Tables 7-9). Only two-response documents with a strict human
    preference and finite scores have a c; the others are counted and left out.
    """
    beta = check_betas([beta])[0]
    _check_top(top)
    ref = as_run(reference, tasks)
    summary, sections, documents, notes = [], [], [], []
    for task, ts in ref.tasks.items():
        entries, finite = _pair_entries(task, ts, beta)
        documents.extend(entries)
        valid = [e for e, ok in zip(entries, finite) if ok]
        summary.append(_summary(task, ts, valid, beta))
        note = _left_out_note(task, ts, finite)
        if note:
            notes.append(note)
        sections += _lists(task, valid, top)
    notes.append(
        f"c = log pRef(y_l|x) - log pRef(y_w|x); a policy ranks a pair correctly iff its DPO loss on it "
        f"(beta = {beta:g}) is below loss_threshold = -log sigmoid(beta c) (Thm. 4.1)"
    )
    notes.extend(f"reference: {n}" for n in ref.notes)
    meta = {"reference": ref.label, "reference_path": str(ref.folder), "beta": beta, "top": top}
    return Report("hardness", f"Hard-to-learn datapoints (Thm. 4.1, beta = {beta:g}): {ref.label}", meta,
                  [Section("summary", _SUMMARY, summary), *sections], notes, documents)
