"""Idealized ranking accuracy of a reference model and the alignment gap of
its policies (Chen et al. 2024, Sec. 3; the paper's Table 1 is our rows with
ties excluded). The rows with ties included score each human tie by the
reference's own tie outcome, the same at every beta; they are not the paper's
Table 6, whose R* columns equal Table 1's (its released upper-bound script
leaves ties out)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lm_eval_rankacc.core import released, stats, theory
from lm_eval_rankacc.analysis.base import (
    DEFAULT_BETAS,
    Report,
    Section,
    alpha_source,
    beta_key,
    check_betas,
    check_convention,
    idealized_correct,
    invalid_note,
    left_out_note,
    mean,
    observed_correct,
    subsets,
    unique_labels,
)
from lm_eval_rankacc.analysis.compare import check_options
from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.outputs.columns import TaskSamples
from lm_eval_rankacc.outputs.matching import match_documents
from lm_eval_rankacc.outputs.runs import Run, as_runs

#: (row key of the idealized accuracy, metric, row key of the observed value, row key of the gap)
_STARS = (("R_norm_star", "rank_acc_norm", "R_norm", "gap_norm"), ("R_star", "rank_acc", "R", "gap"))


def _observed_pair(label: str, ts: TaskSamples, convention: str, notes: list[str]) -> tuple:
    """(R~, R) per document of one run under ``convention``; under ``released``
    the documents it leaves out are counted in ``notes``."""
    r_norm, r = observed_correct(ts, "rank_acc_norm", convention), observed_correct(ts, "rank_acc", convention)
    notes += filter(None, [left_out_note(label, ts.task, name, v) for name, v in (("R~", r_norm), ("R", r))])
    return r_norm, r


def _observed(task: str, ts: TaskSamples, labels: list[str], pols: list[Run], notes: list[str],
              convention: str = "paper") -> list[tuple]:
    """(label, role, R~ per document, R per document) of the reference and each
    policy on the reference's documents, in its order; R~ "missing" for a policy
    without the task."""
    observed = [(labels[0], "reference", *_observed_pair(labels[0], ts, convention, notes))]
    for label, pol in zip(labels[1:], pols):
        other = pol.tasks.get(task)
        if other is None:
            observed.append((label, "policy", "missing", None))
            notes.append(f"{label}: task {task} missing from its run ({pol.folder})")
            continue
        order = match_documents(ts, other, f"reference {labels[0]}", f"policy {label}")
        notes += filter(None, [invalid_note(label, task, other, convention)])
        r_norm, r = _observed_pair(label, other, convention, notes)
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


def _gap_intervals(star: dict, observed: list[tuple], mask: np.ndarray, boot: tuple[int, int]) -> list[dict]:
    """Per model of ``observed``, the paired-bootstrap interval of each gap
    (median idealized minus observed) over the documents of ``mask``: one set
    of replicates (``boot`` = (replicates, seed)) for the reference's R* and
    R~* at every beta and every model's R and R~, so the intervals are paired."""
    n_boot, seed = boot
    out: list[dict] = [{} for _ in observed]
    if not n_boot or not mask.any():
        return out
    blocks, where, top = [], {}, 0  # where: (metric or model index, 0 for R~ / 1 for R) -> rows of the stack
    for key, values in [*((m, [star[m]]) for m in star), *((k, obs[2:]) for k, obs in enumerate(observed))]:
        for j, v in enumerate(values):
            if v is None or isinstance(v, str):
                continue
            block = np.atleast_2d(v)
            where[(key, j)] = (top, top + len(block))
            top += len(block)
            blocks.append(block)
    floats = any(block.dtype != bool for block in blocks)  # booleans (the paper's rules) stay booleans
    stack = np.empty((top, int(mask.sum())), dtype=float if floats else bool)  # the documents of mask
    for block, (start, stop) in zip(blocks, where.values()):
        stack[start:stop] = block if mask.all() else block[:, mask]
    means = stats.bootstrap_means(stack, n_boot, seed)
    for k in range(len(observed)):
        for name, metric, _, gap in _STARS:
            j = 0 if metric == "rank_acc_norm" else 1
            if (metric, 0) not in where or (k, j) not in where:
                continue
            (s0, s1), (o0, _) = where[(metric, 0)], where[(k, j)]
            with np.errstate(invalid="ignore"):
                samples = np.median(means[:, s0:s1], axis=1) - means[:, o0]
            out[k][f"{gap}_low"], out[k][f"{gap}_high"] = stats.interval(samples)
    return out


def _task_rows(task: str, ts: TaskSamples, source: str, star: dict, observed: list[tuple],
               betas: list[float], boot: tuple[int, int] = (0, 0)) -> list[dict]:
    """One row per ties setting and model of one task (``source``: where its
    alpha comes from), with bootstrap intervals of the gaps (:func:`_gap_intervals`)."""
    rows = []
    for ties, mask in subsets(ts):
        stars = {m: mean(v, mask) for m, v in star.items()}
        intervals = _gap_intervals(star, observed, mask, boot)
        for (label, role, r_norm, r), interval in zip(observed, intervals):
            row = {"task": task, "ties": ties, "model": label, "role": role, "n": int(mask.sum()), "alpha": source}
            if isinstance(r_norm, str):  # missing task
                row["missing"] = True
            else:
                row["R_norm"], row["R"] = mean(r_norm, mask), mean(r, mask)
                _star_cells(row, stars, betas)
                row.update(interval)
            rows.append(row)
    return rows


def _closing_notes(ref: Run, pols: list[Run], labels: list[str], alpha_eps: float, flagged: bool,
                   multi: bool) -> list[str]:
    notes = []
    if flagged:
        levels = ("; in a document of n > 2 responses each rank level is one such vote below the level above it "
                  "(one reward per response)") if multi else ""
        notes.append(
            f"\u2020 alpha 'none'/'partial': documents without rater proportions are taken as alpha = 1 "
            f"for the preferred response, clipped to 1 - {alpha_eps:g}{levels}; their R* depends on that eps alone"
        )
    notes.extend(f"reference: {n}" for n in ref.notes)
    for label, pol in zip(labels[1:], pols):
        notes.extend(f"{label}: {n}" for n in pol.notes)
        extra = sorted(set(pol.tasks) - set(ref.tasks))
        if extra:
            notes.append(f"{label}: tasks not in the reference run, not compared: {', '.join(extra)}")
    return notes


def _released_notes(ts: TaskSamples, label: str, star: dict, notes: list[str]) -> bool:
    """Notes on the released idealized rule for one task of the reference;
    whether some of its pairs lack rater proportions."""
    pairs = ts.sizes == 2
    if not pairs.all():
        notes.append(f"{ts.task}: the released idealized rule scores pairs only: R* and R~* leave out the "
                     f"{int((~pairs).sum())} document(s) of n > 2 responses")
    for name, metric in (("R~*", "rank_acc_norm"), ("R*", "rank_acc")):
        outcomes = None if star[metric] is None else star[metric][:, pairs]
        notes += filter(None, [left_out_note(label, ts.task, f"{name} (a NaN or infinite posterior)", outcomes)])
    return alpha_source(ts) != "votes"


def _convention_meta(convention: str, alpha_eps: float) -> dict:
    """The constants of the convention's rules, for the report's metadata."""
    if convention == "released":
        return {"rules": "the authors' released code (docs/conventions.md)", "tie_threshold": released.TIE_THRESHOLD,
                "ratio_eps": released.RATIO_EPS, "band": released.BAND}
    return {"alpha_eps": alpha_eps, "tie_eps": theory.TIE_EPS}


def _columns(betas: list[float]) -> list[str]:
    columns = ["task", "ties", "model", "role", "n", "alpha", "R_norm", "R"]
    for name, *_ in _STARS:
        columns += [f"{name}_min", f"{name}_median", f"{name}_max"]
    columns += [gap for *_, gap in _STARS]
    columns += [f"{gap}_{end}" for *_, gap in _STARS for end in ("low", "high")]
    for name, *_ in _STARS:
        columns += [f"{name}@{beta_key(b)}" for b in betas]
    return columns


def _check_options(betas: Sequence[float] | str, alpha_eps: float, convention: str) -> list[float]:
    """The beta grid as numbers; a bad grid, eps or convention is a RunError."""
    betas = check_betas(betas)
    check_convention(convention)
    if not 0.0 < alpha_eps < 0.5:
        raise RunError(f"alpha eps must be in (0, 0.5), got {alpha_eps!r}")
    if convention == "released" and alpha_eps != theory.ALPHA_EPS:
        raise RunError("--alpha-eps is the paper convention's clipping of alpha; the released convention replaces "
                       f"a2 = 0 by {released.RATIO_EPS:g} in a1 / a2 (docs/conventions.md)")
    return betas


def idealized(
    reference: Run | str | Path,
    policies: Sequence[Run | str | Path] = (),
    betas: Sequence[float] | str = DEFAULT_BETAS,
    tasks: str | Sequence[str] | None = None,
    alpha_eps: float = theory.ALPHA_EPS,
    convention: str = "paper",
    bootstrap: int = stats.N_BOOTSTRAP,
    seed: int = 0,
) -> Report:
    """Idealized ranking accuracy of the reference model and the alignment gap
    of each policy (the paper's Table 1 for ties excluded; the rows with ties
    included are not its Table 6, see the module docstring).

    Per task, per ties setting ("excluded": human ties left out; "included":
    all documents, only for tasks with ties) and per model (the reference
    first, then each policy): observed R~ and R, the reference's idealized
    R~* and R* as min / median / max over ``betas``, and the alignment gap
    (median idealized minus observed). A policy run lacking a task gets a
    row marked missing and a note; a policy over other documents is an error.

    ``convention="released"`` computes every number with the rules of the
    authors' released code (:mod:`lm_eval_rankacc.core.released`) instead of the
    paper's definitions; ``alpha_eps`` is then not used.

    Each gap comes with a 95% paired-bootstrap interval (``gap_low`` /
    ``gap_high``, ``gap_norm_low`` / ``gap_norm_high``): the documents are
    resampled jointly for the reference and every model, ``bootstrap``
    replicates from ``seed`` (0 replicates: no intervals).

    Examples:
        >>> from lm_eval_rankacc.analysis.in_memory import in_memory_run
        >>> ranks = [[1, 2]] * 4  # four pairs, response 1 preferred
        >>> ref = in_memory_run("ref", {"t": ([[-1.0, -2.0], [-3.0, -1.0], [-2.0, -2.5], [-4.0, -1.0]], ranks)})
        >>> dpo = in_memory_run("dpo", {"t": ([[-0.5, -2.5], [-1.0, -1.5], [-3.0, -2.0], [-5.0, -1.0]], ranks)})
        >>> report = idealized(ref, [dpo], betas=[0.1, 1.0], bootstrap=0)
        >>> [(r["model"], r["R"], r["R_star_median"], r["gap"]) for r in report.sections[0].rows]
        [('ref', 0.5, 1.0, 0.5), ('dpo', 0.5, 1.0, 0.5)]
    """
    betas = _check_options(betas, alpha_eps, convention)
    check_options(bootstrap, seed)
    ref, *pols = as_runs([reference, *policies], tasks)
    labels = unique_labels([ref, *pols])
    rows, notes = [], []
    flagged = multi = simulated = False
    for task, ts in ref.tasks.items():
        star = {m: idealized_correct(ts, betas, m, alpha_eps, convention) for m in ("rank_acc_norm", "rank_acc")}
        observed = _observed(task, ts, labels, pols, notes, convention)
        source = alpha_source(ts)
        if convention == "released":
            simulated |= _released_notes(ts, labels[0], star, notes)
        else:
            flagged |= source != "votes"
        multi |= bool((ts.sizes > 2).any())
        rows += _task_rows(task, ts, source, star, observed, betas, (bootstrap, seed))
        if not ts.has_token_counts:
            notes.append(f"{task}: the reference run has no token counts, so R~ and R~* are n/a")
        notes += filter(None, [invalid_note(labels[0], task, ts, convention)])
    if simulated:
        notes.append(f"\u2020 alpha 'none'/'partial': pairs without rater proportions are taken as "
                     f"{released.SIMULATE_PROPORTION:g} / {1 - released.SIMULATE_PROPORTION:g} for the preferred / "
                     "the other response (the released script's simulate_proportion)")
    notes += _closing_notes(ref, pols, labels, alpha_eps, flagged, multi)
    meta = _meta(convention, alpha_eps, labels, ref, pols, betas, bootstrap, seed)
    return Report("idealized", "Idealized ranking accuracy and alignment gap", meta,
                  [Section("idealized", _columns(betas), rows)], notes)


def _meta(convention: str, alpha_eps: float, labels: list[str], ref: Run, pols: list[Run], betas: list[float],
          bootstrap: int, seed: int) -> dict:
    """The report's metadata: the convention and its constants, the runs, the grid and the bootstrap."""
    meta = {"convention": convention, **_convention_meta(convention, alpha_eps)}
    meta.update({
        "reference": labels[0], "reference_path": str(ref.folder),
        "policies": {label: str(p.folder) for label, p in zip(labels[1:], pols)},
        "betas": betas, "bootstrap": bootstrap, "seed": seed,
    })
    return meta
