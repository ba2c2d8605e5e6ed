"""Analyses of finished rankacc runs: idealized ranking accuracy and the
alignment gap, ranking flips between two checkpoints, and hard-to-learn
datapoints (Chen et al. 2024, Sec. 3-4). Reads lm-eval's ``--log_samples``
outputs through :mod:`lm_eval_rankacc.runs`; never reruns a model.

Each analysis is a function returning a :class:`~lm_eval_rankacc.report.tables.Report`
(plain data), rendered by :func:`lm_eval_rankacc.report.tables.render`::

    from lm_eval_rankacc import analysis
    from lm_eval_rankacc.report.tables import render
    print(render(analysis.idealized("out/ref", ["out/dpo"]), "md"))

The mathematics is in :mod:`lm_eval_rankacc.theory`; this module only
selects documents, matches runs and aggregates.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lm_eval_rankacc import theory
from lm_eval_rankacc.report.tables import Report, Section
from lm_eval_rankacc.runs import Run, RunError, TaskSamples, as_run, match_documents

DEFAULT_BETAS = (0.01, 0.1, 1.0, 5.0, 10.0)
#: The per-document metrics of the core tasks, and the unit each normalises by.
METRICS = {"rank_acc": None, "rank_acc_norm": "n_tokens", "rank_acc_bytes": "n_bytes"}
CATEGORIES = ("correct->correct", "correct->incorrect", "incorrect->correct", "incorrect->incorrect")


# ----------------------------------------------------------------- per-document rules
def metric_scores(ts: TaskSamples, index: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(scores, tie_scores) of the documents ``index`` (all of one size) under
    a core metric, exactly as :func:`lm_eval_rankacc.metrics.ranking_metrics`
    builds them; None when the run lacks the unit (no token counts)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; one of {', '.join(METRICS)}")
    loglik = ts.array("loglik", index)
    unit = METRICS[metric]
    if unit is None:
        return loglik, loglik
    units = ts.array(unit, index)
    if np.isnan(units).any():
        return None
    per = theory.per_units(loglik, units)
    with np.errstate(over="ignore"):
        return per, np.exp(per)  # geometric_mean_prob: the tie scores of normalised metrics


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


def _subsets(ts: TaskSamples) -> list[tuple[str, np.ndarray]]:
    """("excluded", non-tie documents) and, where the task has ties, ("included", all)."""
    tied = ts.tied
    out = [("excluded", ~tied)]
    if tied.any():
        out.append(("included", np.ones(len(ts), dtype=bool)))
    return out


def _mean(values: np.ndarray | None, mask: np.ndarray):
    """Share of True over the documents in ``mask``: a float for (N,) values,
    one per row for (B, N); None without values or documents."""
    if values is None or not mask.any():
        return None
    means = values[..., mask].mean(axis=-1)
    return float(means) if values.ndim == 1 else means


def _beta_key(beta: float) -> str:
    return f"{beta:g}"


def _check_betas(betas: Sequence[float] | str) -> list[float]:
    if isinstance(betas, str):
        try:
            betas = [float(b) for b in betas.split(",") if b.strip()]
        except ValueError:
            raise RunError(f"betas must be comma-separated numbers, got {betas!r}") from None
    betas = [float(b) for b in betas]
    if not betas or not all(np.isfinite(b) and b > 0 for b in betas):
        raise RunError(f"betas must be finite numbers > 0, got {betas}")
    return betas


def _unique_labels(runs: Sequence[Run]) -> list[str]:
    labels = [r.label for r in runs]
    return [
        f"{label} ({run.folder})" if labels.count(label) > 1 else label for label, run in zip(labels, runs)
    ]


# ----------------------------------------------------------------- idealized
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
    betas = _check_betas(betas)
    if not 0.0 < alpha_eps < 0.5:
        raise RunError(f"alpha eps must be in (0, 0.5), got {alpha_eps!r}")
    ref = as_run(reference, tasks)
    pols = [as_run(p, tasks, require_match=False) for p in policies]
    labels = _unique_labels([ref, *pols])
    rows, notes = [], []
    flagged = multi = False
    for task, ts in ref.tasks.items():
        star = {m: idealized_correct(ts, betas, m, alpha_eps) for m in ("rank_acc_norm", "rank_acc")}
        observed = [(labels[0], "reference", observed_correct(ts, "rank_acc_norm"), observed_correct(ts, "rank_acc"))]
        for label, pol in zip(labels[1:], pols):
            other = pol.tasks.get(task)
            if other is None:
                observed.append((label, "policy", "missing", None))
                notes.append(f"{label}: task {task} missing from its run ({pol.folder})")
                continue
            order = match_documents(ts, other, f"reference {labels[0]}", f"policy {label}")
            r_norm, r = observed_correct(other, "rank_acc_norm"), observed_correct(other, "rank_acc")
            if r_norm is None:
                notes.append(f"{label}: task {task} has no token counts in its run, so its R~ is n/a")
            observed.append((label, "policy", None if r_norm is None else r_norm[order], r[order]))
        source = alpha_source(ts)
        flagged |= source != "votes"
        multi |= bool((ts.sizes > 2).any())
        for ties, mask in _subsets(ts):
            stars = {m: _mean(v, mask) for m, v in star.items()}
            for label, role, r_norm, r in observed:
                row = {
                    "task": task, "ties": ties, "model": label, "role": role,
                    "n": int(mask.sum()), "alpha": source,
                }
                if isinstance(r_norm, str):  # missing task
                    row["missing"] = True
                    rows.append(row)
                    continue
                row["R_norm"], row["R"] = _mean(r_norm, mask), _mean(r, mask)
                for name, metric, obs, gap in (
                    ("R_norm_star", "rank_acc_norm", "R_norm", "gap_norm"),
                    ("R_star", "rank_acc", "R", "gap"),
                ):
                    vals = stars[metric]  # one value per beta, or None
                    med = None if vals is None else float(np.median(vals))
                    row[f"{name}_min"] = None if vals is None else float(vals.min())
                    row[f"{name}_median"] = med
                    row[f"{name}_max"] = None if vals is None else float(vals.max())
                    row[gap] = None if med is None or row[obs] is None else med - row[obs]
                    for b, v in zip(betas, [None] * len(betas) if vals is None else vals):
                        row[f"{name}@{_beta_key(b)}"] = None if v is None else float(v)
                rows.append(row)
        if not ts.has_token_counts:
            notes.append(f"{task}: the reference run has no token counts, so R~ and R~* are n/a")
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
    columns = ["task", "ties", "model", "role", "n", "alpha", "R_norm", "R"]
    for name in ("R_norm_star", "R_star"):
        columns += [f"{name}_min", f"{name}_median", f"{name}_max"]
    columns += ["gap_norm", "gap"]
    for name in ("R_norm_star", "R_star"):
        columns += [f"{name}@{_beta_key(b)}" for b in betas]
    meta = {
        "reference": labels[0], "reference_path": str(ref.folder),
        "policies": {label: str(p.folder) for label, p in zip(labels[1:], pols)},
        "betas": betas, "alpha_eps": alpha_eps, "tie_eps": theory.TIE_EPS,
    }
    return Report("idealized", "Idealized ranking accuracy and alignment gap", meta,
                  [Section("idealized", columns, rows)], notes)


# ----------------------------------------------------------------- flips
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
    if metric not in METRICS:
        raise RunError(f"unknown metric {metric!r}; one of {', '.join(METRICS)}")
    ref, pol = as_run(reference, tasks), as_run(policy, tasks, require_match=False)
    label_ref, label_pol = _unique_labels([ref, pol])
    common = [t for t in ref.tasks if t in pol.tasks]
    notes = []
    for name, a, b in ((label_pol, ref, pol), (label_ref, pol, ref)):
        missing = sorted(set(a.tasks) - set(b.tasks))
        if missing:
            notes.append(f"{name}: missing task(s) {', '.join(missing)}: not compared")
    if not common:
        raise RunError(
            f"the runs share no rankacc task (reference: {', '.join(ref.tasks)}; policy: {', '.join(pol.tasks)})"
        )
    rows, documents = [], []
    for task in common:
        ts, other = ref.tasks[task], pol.tasks[task]
        order = match_documents(ts, other, f"reference {label_ref}", f"policy {label_pol}")
        before, after = observed_correct(ts, metric), observed_correct(other, metric)
        if before is None or after is None:
            notes.append(f"{task}: {metric} needs token counts, which a run lacks: not compared")
            continue
        after = after[order]
        category = np.where(before, np.where(after, 0, 1), np.where(after, 2, 3))
        for ties, mask in _subsets(ts):
            n = int(mask.sum())
            counts = np.bincount(category[mask], minlength=4)
            for name, count in zip(CATEGORIES, counts):
                rows.append({"task": task, "ties": ties, "category": name, "count": int(count),
                             "share": (count / n) if n else None, "n": n})
        tied = ts.tied
        for k in range(len(ts)):
            documents.append({
                "task": task, "id": ts.ids[k], "doc_hash": ts.hashes[k], "tie": bool(tied[k]),
                "reference_correct": bool(before[k]), "policy_correct": bool(after[k]),
                "category": CATEGORIES[category[k]],
            })
    notes.extend(f"reference: {n}" for n in ref.notes)
    notes.extend(f"policy: {n}" for n in pol.notes)
    meta = {"reference": label_ref, "reference_path": str(ref.folder), "policy": label_pol,
            "policy_path": str(pol.folder), "metric": metric, "tie_eps": theory.TIE_EPS}
    return Report("flips", f"Ranking flips ({metric}): {label_ref} -> {label_pol}", meta,
                  [Section("flips", ["task", "ties", "category", "count", "share", "n"], rows)], notes, documents)


# ----------------------------------------------------------------- hardness
def _text(doc: dict, k: int) -> str:
    return str(doc["responses"][k])


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
    beta = _check_betas([beta])[0]
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise RunError(f"top must be an integer >= 1, got {top!r}")
    ref = as_run(reference, tasks)
    summary, sections, documents, notes = [], [], [], []
    for task, ts in ref.tasks.items():
        sizes, tied = ts.sizes, ts.tied
        pair = np.flatnonzero((sizes == 2) & ~tied)
        ll = ts.array("loglik", pair) if len(pair) else np.zeros((0, 2))
        ranks = ts.array("ranks", pair) if len(pair) else np.zeros((0, 2), dtype=int)
        first = ranks[:, 0] < ranks[:, 1]
        ll_w = np.where(first, ll[:, 0], ll[:, 1])
        ll_l = np.where(first, ll[:, 1], ll[:, 0])
        c = theory.reference_log_ratio(ll_w, ll_l)
        finite = np.isfinite(c)
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
                "prompt": str(doc["prompt"]), "chosen": _text(doc, w), "rejected": _text(doc, 1 - w),
            })
        documents.extend(entries)
        valid = [e for e, ok in zip(entries, finite) if ok]
        positive = [e for e in valid if e["c"] > 0]
        lists = {
            "hard to learn": sorted(positive, key=lambda e: -e["c"])[:top],
            "easy": sorted((e for e in valid if e["c"] <= 0), key=lambda e: e["c"])[:top],
            "easy to flip": sorted(positive, key=lambda e: e["c"])[:top],
        }
        cv = c[finite]
        summary.append({
            "task": task, "pairs": len(valid),
            "left_out": int(len(ts) - len(valid)),
            "share_c_positive": (len(positive) / len(valid)) if valid else None,
            "c_min": float(cv.min()) if len(cv) else None,
            "c_median": float(np.median(cv)) if len(cv) else None,
            "c_max": float(cv.max()) if len(cv) else None,
            "threshold_at_median_c": float(theory.dpo_loss_threshold(np.median(cv), beta)) if len(cv) else None,
        })
        left = {"human ties": int(tied.sum()), "n > 2 responses": int((sizes > 2).sum()),
                "non-finite scores": int((~finite).sum())}
        if any(left.values()):
            notes.append(f"{task}: left out " + ", ".join(f"{v} {k}" for k, v in left.items() if v))
        for name, chosen in lists.items():
            sections.append(Section(
                f"{task}: {name}",
                ["rank", "id", "c", "loss_threshold", "prompt", "chosen", "rejected"],
                [{"rank": r + 1, **{k: e[k] for k in ("id", "c", "loss_threshold", "prompt", "chosen", "rejected")}}
                 for r, e in enumerate(chosen)],
            ))
    notes.append(
        f"c = log pRef(y_l|x) - log pRef(y_w|x); a policy ranks a pair correctly iff its DPO loss on it "
        f"(beta = {beta:g}) is below loss_threshold = -log sigmoid(beta c) (Thm. 4.1)"
    )
    notes.extend(f"reference: {n}" for n in ref.notes)
    columns = ["task", "pairs", "left_out", "share_c_positive", "c_min", "c_median", "c_max", "threshold_at_median_c"]
    meta = {"reference": ref.label, "reference_path": str(ref.folder), "beta": beta, "top": top}
    return Report("hardness", f"Hard-to-learn datapoints (Thm. 4.1, beta = {beta:g}): {ref.label}", meta,
                  [Section("summary", columns, summary), *sections], notes, documents)
