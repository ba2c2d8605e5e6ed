"""The leaderboard itself (:func:`leaderboard`): one row per model, one
column per task and metric, the published rows when asked, sorted, and the
runs behind the rows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lm_eval_rankacc.analysis.base import Report, Section, check_convention
from lm_eval_rankacc.analysis.leaderboard.columns import (DEFAULT_METRICS, IDEALIZED, RUN_COLUMNS,
                                                          column_aliases, column_type, table_columns)
from lm_eval_rankacc.analysis.leaderboard.document_sets import task_sets
from lm_eval_rankacc.analysis.leaderboard.models import Model, check_metrics, metric_list, newest_per_model
from lm_eval_rankacc.analysis.leaderboard.reading import read_runs
from lm_eval_rankacc.analysis.leaderboard.reference import Reference, gap_cells, read_reference
from lm_eval_rankacc.analysis.paper import PaperRows, leaderboard_rows
from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.outputs.names import stamp_date
from lm_eval_rankacc.outputs.results import ResultsFile
from lm_eval_rankacc.outputs.runs import split_patterns


def _identity(rf: ResultsFile) -> dict[str, Any]:
    row: dict[str, Any] = {"model": rf.label, "backend": rf.backend, "pretrained": rf.name,
                           "revision": rf.revision, "dtype": rf.dtype}
    if rf.info.get("model_sha"):
        row["revision"] = f"{rf.revision or ''}@{rf.info['model_sha'][:10]}".lstrip("@")
    return row


def _row(model: Model, letters: dict[str, str | None], tasks: list[str], metrics: list[str],
         ref: Reference | None, ideal_metrics: list[str], notes: list[str]) -> dict[str, Any]:
    row = _identity(model.newest)
    for task in tasks:
        tr = model.tasks.get(task)
        for m in metrics:
            row[f"{task}/{m}"] = None if tr is None else tr.values.get(m)
            row[f"{task}/{m}_stderr"] = None if tr is None else tr.stderrs.get(m)
        row[f"{task}/n"] = None if tr is None else tr.n
        row[f"{task}/docs"] = letters[task]
        if ref is not None:
            gap_cells(row, task, tr, ref, ideal_metrics, notes)
    return row


def _paper_rows(tasks: list[str], metrics: list[str], ideal_metrics: list[str], notes: list[str]) -> PaperRows:
    """The published rows of Chen et al. for ``tasks`` (with the R* / gap columns of ``ideal_metrics``);
    their notes go into ``notes``."""
    published = leaderboard_rows(tasks, metrics, {m: IDEALIZED[m][:3] for m in ideal_metrics})
    notes.extend(published.notes)
    return published


def _sort(rows: list[dict[str, Any]], columns: list[str], sort: str | None, default: str, tasks: list[str]) -> str:
    """Sort ``rows`` in place by ``sort`` (a column or an alias), missing values last; the column."""
    key = sort or default
    if key not in columns:
        key = column_aliases(tasks, columns).get(key.strip().lower(), key)
    if key not in columns:
        raise RunError(f"--sort: no column {sort!r}; columns: {', '.join(columns)}")
    numeric = column_type(rows, key) == "num"
    present = [r for r in rows if r.get(key) is not None]
    absent = [r for r in rows if r.get(key) is None]
    present.sort(key=lambda r: (-r[key], r["model"]) if numeric else (str(r[key]).lower(), r["model"]))
    rows[:] = present + absent  # missing values last, whichever the order
    return key


def _runs(files: list[ResultsFile], models: list[Model], order: list[str], notes: list[str],
          published: Sequence[dict] = ()) -> list[dict]:
    """One row per results file (used or superseded) and the ``published`` rows' entries, in the order of
    the table; superseded ones in ``notes``."""
    label_of = {m.newest.key: m.newest.label for m in models}
    winners_of = {m.newest.key: m.tasks for m in models}
    run_rows = []
    for rf in sorted(files, key=lambda f: (order.index(label_of[f.key]), f.stamp)):
        winners = winners_of[rf.key]
        lost = sorted(t for t, tr in rf.tasks.items() if winners[t] is not tr)
        status = "used" if not lost else ("superseded" if len(lost) == len(rf.tasks) else
                                          f"superseded for {', '.join(lost)}")
        run_rows.append({
            "model": label_of[rf.key], "status": status, "tasks": ", ".join(sorted(rf.tasks)),
            "date": stamp_date(rf.stamp), "results_file": str(rf.path),
            "samples": "yes" if any(t.samples for t in rf.tasks.values()) else "no",
            "backend": rf.backend, "pretrained": rf.name, "revision": rf.revision, "dtype": rf.dtype,
            "num_parameters": rf.info.get("num_parameters"), "lm_eval_version": rf.info.get("lm_eval_version"),
            "rankacc_version": rf.info.get("rankacc_version"),
        })
        if lost:
            newer = sorted({str(f.path.name) for f in files if f.key == rf.key and f is not rf
                            and any(winners[t] is f.tasks.get(t) for t in lost)})
            notes.append(f"superseded: {label_of[rf.key]}: {rf.path} ({', '.join(lost)}); newer: {', '.join(newer)}")
    return sorted(run_rows + list(published), key=lambda r: order.index(r["model"]))  # stable: file order kept


def leaderboard(
    runs: Sequence[str | Path],
    metrics: Sequence[str] | str = DEFAULT_METRICS,
    sort: str | None = None,
    reference: str | Path | None = None,
    betas: Sequence[float] | str | None = None,
    tasks: str | Sequence[str] | None = None,
    skip_bad_runs: bool = False,
    paper: bool = False,
    convention: str = "paper",
) -> Report:
    """One row per model, one column per task and metric (value and standard
    error), the number of documents, the document set and the model identity;
    see the module docstring. Every problem with the input is a :class:`RunError`:
    a results file that cannot be read (or whose samples file cannot) too,
    unless ``skip_bad_runs``, which leaves such runs out with a note each.
    ``paper``: add the published rows of Chen et al. (2024) for the runs' tasks.
    ``convention="released"``: R and R~ (and the reference's R* / R~*) are
    recomputed from each run's samples under the rules of the authors'
    released code (:mod:`lm_eval_rankacc.core.released`) instead of lm-eval's
    aggregates; a run without samples is then an error naming it."""
    metrics = metric_list(metrics)
    check_convention(convention, metrics)
    if isinstance(runs, (str, Path)):
        runs = [runs]
    if not runs:
        raise RunError("name at least one run")
    if betas is not None and reference is None:
        raise RunError("--betas is the grid of the reference's idealized accuracy: it needs --reference REF_RUN")
    patterns = split_patterns(tasks)
    notes: list[str] = []
    files = read_runs(runs, patterns, notes, skip_bad_runs, convention)
    models = newest_per_model(files)
    all_tasks = sorted({t for m in models for t in m.tasks})
    check_metrics(metrics, models)
    sets = {task: task_sets(task, models, notes) for task in all_tasks}
    ideal_metrics = [m for m in metrics if m in IDEALIZED]
    ref = None
    if reference is not None:
        if not ideal_metrics:
            raise RunError("--reference needs rank_acc or rank_acc_norm among --metric")
        ref = read_reference(reference, patterns, betas, all_tasks, notes, skip_bad_runs, convention)
    columns = table_columns(all_tasks, metrics, ideal_metrics if ref is not None else None)
    rows = [_row(m, {t: sets[t].get(k) for t in all_tasks}, all_tasks, metrics, ref, ideal_metrics, notes)
            for k, m in enumerate(models)]
    published = _paper_rows(all_tasks, metrics, ideal_metrics if ref else [], notes) if paper else PaperRows()
    rows += published.rows
    sort_key = _sort(rows, columns, sort, f"{all_tasks[0]}/{metrics[0]}", all_tasks)
    run_rows = _runs(files, models, [r["model"] for r in rows], notes, published.runs)
    meta: dict[str, Any] = {
        "convention": convention, "models": len(models), "tasks": all_tasks, "metrics": metrics,
        "sort": f"{sort_key} ({'descending' if column_type(rows, sort_key) == 'num' else 'ascending'}, "
                "missing last)",
    }
    if ref is not None:
        meta.update({"reference": f"{ref.run.label} ({ref.run.folder})", "betas": list(ref.betas)})
    if paper:
        meta["paper"] = published.summary
    return Report("leaderboard", "Ranking-accuracy leaderboard", meta,
                  [Section("leaderboard", columns, rows), Section("runs", RUN_COLUMNS, run_rows)], notes)
