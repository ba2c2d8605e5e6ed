"""Is the difference between two runs real? Paired statistics of any two
runs over the same documents (two models, two checkpoints): per task, ties
setting and metric both accuracies, the difference, a paired-bootstrap
interval (documents resampled jointly, :mod:`lm_eval_rankacc.core.stats`) and
McNemar's exact p-value from the discordant documents. ``rankacc flips``
adds the same rows for its reference and policy."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lm_eval_rankacc.core import stats, theory
from lm_eval_rankacc.analysis.base import (
    RELEASED_METRICS,
    Report,
    Section,
    check_convention,
    common_tasks,
    invalid_note,
    observed_correct,
    subsets,
    unique_labels,
)
from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.outputs.columns import TaskSamples
from lm_eval_rankacc.outputs.matching import match_documents
from lm_eval_rankacc.outputs.runs import Run, as_runs

#: The columns of the paired rows: A is the first run (the reference in flips), B the second; diff = B - A.
PAIRED_COLUMNS = ["task", "ties", "metric", "n", "acc_a", "acc_b", "diff", "ci_low", "ci_high", "a_only", "b_only",
                  "p_mcnemar"]


def check_options(n_boot: int, seed: int, level: float = stats.LEVEL) -> None:
    """The bootstrap options: ``n_boot`` >= 0 (0: no intervals), an integer seed >= 0, 0 < level < 1."""
    try:
        stats.check_bootstrap(n_boot, level)
    except ValueError as err:
        raise RunError(str(err)) from None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise RunError(f"the seed must be an integer >= 0, got {seed!r}")


def paired_metrics(convention: str) -> tuple[str, ...]:
    """The metrics compared under ``convention`` (the released code has no per-byte metric)."""
    return tuple(RELEASED_METRICS) if convention == "released" else tuple(theory.METRIC_UNITS)


def paired_row(a: np.ndarray, b: np.ndarray, n_boot: int, seed: int, level: float = stats.LEVEL) -> dict:
    """The paired statistics of per-document outcomes ``a``, ``b`` (booleans,
    or floats with NaN = left out: a document left out by either is dropped)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    kept = ~np.isnan(a) & ~np.isnan(b)
    a, b = a[kept] == 1.0, b[kept] == 1.0
    n = len(a)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    row = {"n": n, "acc_a": None, "acc_b": None, "diff": None, "ci_low": None, "ci_high": None,
           "a_only": only_a, "b_only": only_b, "p_mcnemar": stats.mcnemar_exact_p(only_a, only_b)}
    if n:
        row.update(acc_a=float(a.mean()), acc_b=float(b.mean()), diff=float(b.mean() - a.mean()))
        if n_boot:
            row["ci_low"], row["ci_high"] = stats.paired_difference_interval(a, b, n_boot, seed, level)
    return row


def paired_rows(ts_a: TaskSamples, ts_b: TaskSamples, order: np.ndarray, convention: str, n_boot: int, seed: int,
                notes: list[str], level: float = stats.LEVEL) -> list[dict]:
    """Per metric and ties setting, :func:`paired_row` of run A (``ts_a``) and
    run B (``ts_b``, its documents in A's order by ``order``)."""
    rows = []
    for metric in paired_metrics(convention):
        a, b = observed_correct(ts_a, metric, convention), observed_correct(ts_b, metric, convention)
        if a is None or b is None:
            notes.append(f"{ts_a.task}: {metric} needs token counts, which a run lacks: no paired statistics")
            continue
        b = b[order]
        for ties, mask in subsets(ts_a):
            rows.append({"task": ts_a.task, "ties": ties, "metric": metric,
                         **paired_row(a[mask], b[mask], n_boot, seed, level)})
    return rows


def paired_meta(n_boot: int, seed: int, level: float = stats.LEVEL) -> dict:
    return {"bootstrap": n_boot, "seed": seed, "level": level}


def paired_note(label_a: str, label_b: str, level: float = stats.LEVEL) -> str:
    """What the paired columns mean."""
    return (f"paired statistics: A = {label_a}, B = {label_b}; diff = acc_b - acc_a; ci: {level:.0%} "
            "paired-bootstrap percentile interval of diff (documents resampled jointly); a_only / b_only: documents "
            "only A / only B ranks correctly; p_mcnemar: McNemar's exact two-sided p-value from them")


def compare(
    run_a: Run | str | Path,
    run_b: Run | str | Path,
    tasks: str | Sequence[str] | None = None,
    convention: str = "paper",
    bootstrap: int = stats.N_BOOTSTRAP,
    seed: int = 0,
    level: float = stats.LEVEL,
) -> Report:
    """Paired comparison of two runs over the same documents (matched by id
    and doc_hash; different documents are an error): per task, ties setting
    and metric (R, R~, per-byte; R and R~ under ``convention="released"``)
    both accuracies, B - A, its paired-bootstrap interval (``bootstrap``
    replicates, ``seed``; 0 replicates: none) and McNemar's exact p-value.

    Examples:
        >>> from lm_eval_rankacc.analysis.in_memory import in_memory_run
        >>> ranks = [[1, 2]] * 4  # four pairs, response 1 preferred
        >>> ref = in_memory_run("ref", {"t": ([[-1.0, -2.0], [-3.0, -1.0], [-2.0, -2.5], [-4.0, -1.0]], ranks)})
        >>> dpo = in_memory_run("dpo", {"t": ([[-0.5, -2.5], [-1.0, -1.5], [-3.0, -2.0], [-5.0, -1.0]], ranks)})
        >>> row = compare(ref, dpo, bootstrap=0).sections[0].rows[0]
        >>> row["metric"], row["acc_a"], row["acc_b"], row["a_only"], row["b_only"], row["p_mcnemar"]
        ('rank_acc', 0.5, 0.5, 1, 1, 1.0)
    """
    check_convention(convention)
    check_options(bootstrap, seed, level)
    a, b = as_runs([run_a, run_b], tasks)
    label_a, label_b = unique_labels([a, b])
    notes: list[str] = []
    rows = []
    for task in common_tasks(a, b, label_a, label_b, notes, roles=("A", "B")):
        ts, other = a.tasks[task], b.tasks[task]
        order = match_documents(ts, other, f"A {label_a}", f"B {label_b}")
        notes += filter(None, [invalid_note(label_a, task, ts, convention),
                               invalid_note(label_b, task, other, convention)])
        rows += paired_rows(ts, other, order, convention, bootstrap, seed, notes, level)
    notes.append(paired_note(label_a, label_b, level))
    notes.extend(f"A: {n}" for n in a.notes)
    notes.extend(f"B: {n}" for n in b.notes)
    meta = {"convention": convention, "a": label_a, "a_path": str(a.folder), "b": label_b,
            "b_path": str(b.folder), **paired_meta(bootstrap, seed, level)}
    return Report("compare", f"Paired comparison ({convention} convention): {label_a} vs {label_b}", meta,
                  [Section("paired", PAIRED_COLUMNS, rows)], notes)
