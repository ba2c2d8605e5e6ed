"""Leaderboard: many models' rankacc results side by side (the paper's
Figure 1 and Tables 2-5), from lm-eval's own results JSON files
(:mod:`lm_eval_rankacc.outputs.results`). This module builds the table's data;
:mod:`lm_eval_rankacc.report.leaderboard` lays it out.

A run is an lm-eval ``--output_path`` folder (any backend; one or several
model sub-folders), a model sub-folder, or one results JSON. Per model (the
identity lm-eval recorded: backend, pretrained / model name, revision, dtype,
adapter) and task the newest results file wins; older ones are listed as
superseded. Values are lm-eval's own aggregates and standard errors, never
recomputed, under the default convention ``paper``; ``convention="released"``
recomputes R and R~ per task from the samples beside each results file with
the rules of the authors' released code (``docs/conventions.md``).

Runs of one task over different documents (another sample size, seed, task
version or data) are put in separate *document sets*, detected from the
per-task document count, task version and data-relevant task configuration
and, where both runs logged samples, from the documents' ids and hashes. Each
row's ``<task>/docs`` holds the letter of its set; with more than one set a
note says what differs. A task a model did not run is ``missing`` (None in
every cell); a metric a run did not report (e.g. R~ without token counts) is
None as well: neither is ever 0.

``reference=`` adds, per task, the reference model's idealized accuracy
(median of R* / R~* over the beta grid, from :func:`~lm_eval_rankacc.analysis.idealized`)
and each model's alignment gap (that median minus the model's observed value),
over all documents (human ties included, like lm-eval's aggregate), for the
models that scored the reference's documents.

``paper=True`` adds the published rows of Chen et al. (2024), Tables 1-6, for
the tasks of the runs (:mod:`lm_eval_rankacc.analysis.paper`): reference rows
labelled ``<model> (paper, Table N)``, backend ``paper``, sorted with the
others, listed among the runs as ``published``; never rescored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lm_eval_rankacc.analysis.base import (
    RELEASED_METRICS,
    Report,
    Section,
    check_convention,
    left_out_note,
    observed_correct,
)
from lm_eval_rankacc.analysis.idealized import idealized
from lm_eval_rankacc.analysis.paper import PaperRows, leaderboard_rows
from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.outputs.results import (
    ResultsFile,
    TaskResult,
    find_results,
    read_results,
    short_name,
    stamp_date,
)
from lm_eval_rankacc.outputs.runs import (Run, TaskSamples, load_run, map_in_processes, read_samples, samples_bytes,
                                  split_patterns)

DEFAULT_METRICS = ("rank_acc", "rank_acc_norm")
#: Short labels of the core metrics: plain text (tables, figure, ``--sort``) and LaTeX.
METRIC_LABELS = {
    "rank_acc": ("R", "$R$"),
    "rank_acc_norm": ("R~", r"$\tilde{R}$"),
    "rank_acc_bytes": ("R_bytes", r"$R_\mathrm{bytes}$"),
    "pair_acc": ("pair", "pair"),
    "pair_acc_norm": ("pair~", r"$\widetilde{\mathrm{pair}}$"),
}
#: Idealized columns per observed metric: (key of the idealized report's row,
#: column suffix of the idealized accuracy, of the gap, and their labels).
IDEALIZED = {
    "rank_acc": ("R_star_median", "R_star", "gap", "R*", "gap"),
    "rank_acc_norm": ("R_norm_star_median", "R_norm_star", "gap_norm", "R~*", "gap~"),
}
IDENTITY = ("model", "backend", "pretrained", "revision", "dtype")
RUN_COLUMNS = ["model", "status", "tasks", "date", "results_file", "samples", "backend", "pretrained", "revision",
               "dtype", "num_parameters", "lm_eval_version", "rankacc_version"]


def set_letter(index: int) -> str:
    """The name of the ``index``-th document set of a task: A, B, ..."""
    return chr(ord("A") + index)


# ----------------------------------------------------------------- reading the runs
def docs_digest(ids: Sequence[str], hashes: Sequence[str]) -> str:
    """One digest of a task's documents: its (id, doc_hash) pairs, in any order."""
    text = "\n".join(sorted(f"{i}\t{h}" for i, h in zip(ids, hashes)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read(path: Path, patterns: list[str] | None, convention: str = "paper",
          notes: list[str] | None = None) -> ResultsFile:
    """A results file, each task with the digest of its logged documents when
    the samples file of the same run is beside it. Under the ``released``
    convention R and R~ are recomputed from those samples
    (:func:`_released_values`), so each task needs them."""
    rf = read_results(path, patterns)
    for tr in rf.tasks.values():
        if tr.samples is None:
            if convention == "released":
                raise RunError(f"{path}: no samples of {tr.task} from this run beside it: --convention released "
                               "recomputes R and R~ from lm-eval's samples (rerun lm_eval with --log_samples)")
            continue
        ts = read_samples(tr.samples, tr.task)
        tr.docs = docs_digest(ts.ids, ts.hashes)
        if tr.n is None:
            tr.n = len(ts)
        if convention == "released":
            _released_values(tr, ts, notes if notes is not None else [])
    return rf


def _mean_stderr(verdicts) -> tuple[float | None, float | None]:  # noqa: ANN001 - a float array or None
    """Mean of the kept (non-NaN) verdicts and its standard error, computed as
    lm-eval computes its own (sample standard deviation / sqrt(k))."""
    if verdicts is None:
        return None, None
    kept = verdicts[~np.isnan(verdicts)]
    if not kept.size:
        return None, None
    stderr = float(kept.std(ddof=1) / np.sqrt(kept.size)) if kept.size > 1 else None
    return float(kept.mean()), stderr


def _released_values(tr: TaskResult, ts: TaskSamples, notes: list[str]) -> None:
    """Replace lm-eval's aggregates of one task by R and R~ recomputed from its
    samples under the released code's rules (R~ None without token counts)."""
    tr.values, tr.stderrs = {}, {}
    for metric in RELEASED_METRICS:
        verdicts = observed_correct(ts, metric, "released")
        tr.values[metric], tr.stderrs[metric] = _mean_stderr(verdicts)
        notes += filter(None, [left_out_note(str(tr.samples.parent.name), ts.task, METRIC_LABELS[metric][0],
                                             verdicts)])


def _read_or_skip(path: Path, patterns: list[str] | None, skip_bad: bool, notes: list[str],
                  convention: str = "paper") -> ResultsFile | None:
    """:func:`_read`, for a bad run (its results file, or the samples file
    beside it, cannot be read) an error or, with ``skip_bad``, a note naming it."""
    try:
        return _read(path, patterns, convention, notes)
    except RunError as err:
        if not skip_bad:
            raise RunError(f"{err} (--skip-bad-runs leaves a bad run out, with a note)") from None
        notes.append(f"left out, a bad run (--skip-bad-runs): {err}")
        return None


def _no_rankacc_task(path: Path, rf: ResultsFile, patterns: list[str] | None) -> str:
    """Why a results file gives no row: a --predict_only run, or no rankacc task (matching --tasks)."""
    if rf.info["predict_only"]:
        return (f"{path}: a --predict_only run of {', '.join(rf.info['predict_only'])} (lm-eval computed no "
                "metrics); rerun lm_eval without --predict_only")
    listed = ", ".join(rf.info["all_tasks"]) or "none"
    return f"{path}: an lm-eval results file without a rankacc task{' matching --tasks' if patterns else ''} " \
           f"(tasks: {listed})"


def _read_one(job: tuple) -> tuple[ResultsFile | None, list[str]]:
    """:func:`_read_or_skip` of one results file, with the notes it wrote (a job of :func:`map_in_processes`)."""
    path, patterns, skip_bad, convention = job
    notes: list[str] = []
    return _read_or_skip(path, patterns, skip_bad, notes, convention), notes


def _read_runs(runs: Sequence[str | Path], patterns: list[str] | None, notes: list[str],
               skip_bad: bool = False, convention: str = "paper") -> list[ResultsFile]:
    """Every results file with a rankacc task of the ``runs``, each read once
    (in parallel processes where :func:`.runs.map_in_processes` says so);
    every other file found is named in an error or in ``notes``."""
    found: list[tuple[str | Path, Path, list[str]]] = []  # (run, results file, notes of finding it)
    seen: set[Path] = set()
    for run in runs:
        found_notes: list[str] = []
        for p in find_results(run, found_notes):
            if p.resolve() not in seen:
                seen.add(p.resolve())
                found.append((run, p, found_notes))
                found_notes = []
        notes += found_notes
    nbytes = sum(samples_bytes(p.parent) for _, p, _ in found)
    read = map_in_processes(_read_one, [(p, patterns, skip_bad, convention) for _, p, _ in found], nbytes)
    files: list[ResultsFile] = []
    for (run, p, found_notes), (rf, read_notes) in zip(found, read):
        notes += found_notes + read_notes
        if rf is None:
            continue
        if rf.tasks:
            files.append(rf)
        elif Path(run).is_file():
            raise RunError(_no_rankacc_task(p, rf, patterns))
        else:
            notes.append(f"left out: {_no_rankacc_task(p, rf, patterns)}")
    if not files:
        left = f" ({'; '.join(notes[:3])}{'; ...' if len(notes) > 3 else ''})" if notes else ""
        raise RunError(f"no rankacc results{' matching --tasks' if patterns else ''} in "
                       f"{', '.join(str(r) for r in runs)}{left}")
    return files


@dataclass
class _Model:
    """One row: a model's newest results file and, per task, the winning task result."""

    newest: ResultsFile
    tasks: dict[str, TaskResult]


def _newest_per_model(files: list[ResultsFile]) -> list[_Model]:
    groups: dict[tuple, list[ResultsFile]] = {}
    for rf in files:
        groups.setdefault(rf.key, []).append(rf)
    models = []
    for group in groups.values():
        group.sort(key=lambda f: (f.stamp, str(f.path)), reverse=True)
        winners: dict[str, TaskResult] = {}
        for rf in group:
            for t, tr in rf.tasks.items():
                winners.setdefault(t, tr)
        models.append(_Model(group[0], dict(sorted(winners.items()))))
    _label_files([m.newest for m in models])
    return models


def _label_files(files: list[ResultsFile]) -> None:
    """Set each file's label: the model's short name, then what tells clashing ones apart."""
    for f in files:
        f.label = short_name(f.name) if f.name else f.backend
        if f.adapter:
            f.label += f"+{short_name(f.adapter)}"
    for attr in ("backend", "dtype", "revision"):
        clash = [f for f in files if sum(g.label == f.label for g in files) > 1]
        values = {getattr(f, attr) for f in clash}
        if len(values) > 1:
            for f in clash:
                f.label += f" ({getattr(f, attr)})"
    for f in files:
        if sum(g.label == f.label for g in files) > 1:
            f.label += f" [{f.name or f.path.parent}]"


def _metric_list(metrics: Sequence[str] | str) -> list[str]:
    metrics = [m.strip() for m in (metrics.split(",") if isinstance(metrics, str) else metrics) if m and m.strip()]
    if not metrics:
        raise RunError("--metric: name at least one metric (e.g. rank_acc,rank_acc_norm)")
    return metrics


def _check_metrics(metrics: list[str], models: list[_Model]) -> None:
    available = sorted({m for model in models for r in model.tasks.values() for m in r.values})
    unknown = [m for m in metrics if m not in available]
    if unknown:
        raise RunError(f"--metric: {', '.join(unknown)} reported by no run (available: {', '.join(available)})")


# ----------------------------------------------------------------- document sets
def _same_documents(a: TaskResult, b: TaskResult) -> bool:
    if a.n != b.n or (a.version is not None and b.version is not None and a.version != b.version):
        return False
    if a.docs is not None and b.docs is not None:
        return a.docs == b.docs  # the documents themselves, whatever the configuration says
    return a.config == b.config


def _setting(config: dict[str, Any], key: str) -> str:
    return repr(config[key]) if key in config else "default"


def _differences(a: TaskResult, b: TaskResult) -> str:
    """What distinguishes document set ``b`` from ``a``, in words."""
    parts = []
    if a.n != b.n:
        parts.append(f"n {b.n} vs {a.n}")
    if a.version != b.version:
        parts.append(f"version {b.version} vs {a.version}")
    for key in sorted(set(a.config) | set(b.config)):
        if a.config.get(key) != b.config.get(key):
            parts.append(f"{key} {_setting(b.config, key)} vs {_setting(a.config, key)}")
    if a.docs and b.docs and a.docs != b.docs:
        parts.append("different document ids / doc hashes in the samples")
    return "; ".join(parts) or "documents differ"


def document_sets(results: Sequence[TaskResult]) -> list[list[int]]:
    """Indices of ``results`` (one task, one per model) grouped into sets of
    the same documents, largest set first (ties: first appearance)."""
    groups: list[list[int]] = []
    for i, r in enumerate(results):
        for g in groups:
            if all(_same_documents(results[j], r) for j in g):
                g.append(i)
                break
        else:
            groups.append([i])
    return sorted(groups, key=lambda g: (-len(g), g[0]))


def _task_sets(task: str, models: list[_Model], notes: list[str]) -> dict[int, str]:
    """The document set letter of each model (by index) that ran ``task``; notes on what differs."""
    holders = [k for k, m in enumerate(models) if task in m.tasks]
    results = [models[k].tasks[task] for k in holders]
    sets = document_sets(results)
    label = [models[k].newest.label for k in holders]
    if len(sets) > 1:
        parts = [f"{set_letter(s)} = {', '.join(label[j] for j in g)} (n {results[g[0]].n})"
                 for s, g in enumerate(sets)]
        diffs = [f"{set_letter(s)} vs A: {_differences(results[sets[0][0]], results[g[0]])}"
                 for s, g in enumerate(sets) if s]
        notes.append(f"{task}: scored on {len(sets)} different document sets, not comparable across sets: "
                     f"{'; '.join(parts)}. {'; '.join(diffs)}")
    for g in sets:
        unverified = [label[j] for j in g if results[j].docs is None]
        if len(g) > 1 and unverified:
            notes.append(f"{task}: {', '.join(unverified)}: no samples logged, so the documents are matched "
                         "by count, task version and configuration only")
    return {holders[j]: set_letter(s) for s, g in enumerate(sets) for j in g}


# ----------------------------------------------------------------- the reference
@dataclass
class _Reference:
    """The reference run, per task its idealized row over all documents with
    the task's document identity, and the beta grid used."""

    run: Run
    tasks: dict[str, tuple[dict[str, Any], TaskResult]]
    betas: list[float]


def _reference(reference: str | Path, patterns: list[str] | None, betas: Sequence[float] | str | None,
               all_tasks: list[str], notes: list[str], skip_bad: bool = False,
               convention: str = "paper") -> _Reference:
    """The reference run (with samples), and per task the row of
    :func:`idealized` (under ``convention``) over all documents with the
    task's document identity (digest of the samples, count, version,
    configuration)."""
    ref_run = load_run(reference, patterns, require_match=False)
    report = idealized(ref_run, (), **({} if betas is None else {"betas": betas}), convention=convention,
                       bootstrap=0)  # the leaderboard shows the median R*, not the gap intervals
    beside: dict[Path, TaskResult] = {}
    for p in find_results(ref_run.folder, []):  # the folder's notes are the reference run's own
        rf = _read_or_skip(p, patterns, skip_bad, notes)
        for tr in (rf.tasks.values() if rf is not None else ()):
            if tr.samples is not None:
                beside[tr.samples.resolve()] = tr
    tasks = {}
    for task, ts in ref_run.tasks.items():
        rows = [r for r in report.sections[0].rows if r["task"] == task]
        row = next((r for r in rows if r["ties"] == "included"), rows[0])  # all documents
        tr = beside.get(ts.path.resolve()) or TaskResult(task, {}, {}, len(ts), None, {})
        tr.docs = docs_digest(ts.ids, ts.hashes)
        tasks[task] = (row, tr)
    ref_run.label = short_name(ref_run.label)
    missing = [t for t in all_tasks if t not in tasks]
    if missing:
        notes.append(f"reference {ref_run.label}: no samples of {', '.join(missing)}, so no idealized "
                     "accuracy there")
    notes.extend(f"reference: {n}" for n in report.notes if not n.startswith("reference: "))
    return _Reference(ref_run, tasks, report.meta["betas"])


# ----------------------------------------------------------------- rows
def _columns(tasks: list[str], metrics: list[str], ideal_metrics: list[str] | None) -> list[str]:
    columns = list(IDENTITY)
    for task in tasks:
        for m in metrics:
            columns += [f"{task}/{m}", f"{task}/{m}_stderr"]
        columns += [f"{task}/n", f"{task}/docs"]
        for m in ideal_metrics or ():
            columns += [f"{task}/{IDEALIZED[m][1]}", f"{task}/{IDEALIZED[m][2]}"]
    return columns


def _identity(rf: ResultsFile) -> dict[str, Any]:
    row: dict[str, Any] = {"model": rf.label, "backend": rf.backend, "pretrained": rf.name,
                           "revision": rf.revision, "dtype": rf.dtype}
    if rf.info.get("model_sha"):
        row["revision"] = f"{rf.revision or ''}@{rf.info['model_sha'][:10]}".lstrip("@")
    return row


def _gap_cells(row: dict[str, Any], task: str, tr: TaskResult | None, ref: _Reference, ideal_metrics: list[str],
               notes: list[str]) -> None:
    """The reference's idealized accuracy and, on the reference's documents, the gap."""
    ideal = ref.tasks.get(task)
    same = tr is not None and ideal is not None and _same_documents(ideal[1], tr)
    if tr is not None and ideal is not None and not same:
        notes.append(f"{task}: {row['model']} scored other documents than the reference "
                     f"({_differences(ideal[1], tr)}): no alignment gap")
    for m in ideal_metrics:
        key, star, gap, _, _ = IDEALIZED[m]
        value = None if ideal is None else ideal[0].get(key)
        observed = row[f"{task}/{m}"]
        row[f"{task}/{star}"] = value
        row[f"{task}/{gap}"] = (value - observed) if same and value is not None and observed is not None else None


def _row(model: _Model, letters: dict[str, str | None], tasks: list[str], metrics: list[str],
         ref: _Reference | None, ideal_metrics: list[str], notes: list[str]) -> dict[str, Any]:
    row = _identity(model.newest)
    for task in tasks:
        tr = model.tasks.get(task)
        for m in metrics:
            row[f"{task}/{m}"] = None if tr is None else tr.values.get(m)
            row[f"{task}/{m}_stderr"] = None if tr is None else tr.stderrs.get(m)
        row[f"{task}/n"] = None if tr is None else tr.n
        row[f"{task}/docs"] = letters[task]
        if ref is not None:
            _gap_cells(row, task, tr, ref, ideal_metrics, notes)
    return row


# ----------------------------------------------------------------- published rows (--paper)
def _paper_rows(tasks: list[str], metrics: list[str], ideal_metrics: list[str], notes: list[str]) -> PaperRows:
    """The published rows of Chen et al. for ``tasks`` (with the R* / gap columns of ``ideal_metrics``);
    their notes go into ``notes``."""
    published = leaderboard_rows(tasks, metrics, {m: IDEALIZED[m][:3] for m in ideal_metrics})
    notes.extend(published.notes)
    return published


# ----------------------------------------------------------------- sorting
def column_type(rows: list[dict[str, Any]], key: str) -> str:
    """``num`` when every present value of the column is a number, else ``text``."""
    values = [r.get(key) for r in rows if r.get(key) is not None]
    return "num" if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) else "text"


def _aliases(tasks: list[str], columns: list[str]) -> dict[str, str]:
    """Other names of the columns, lower case: the display headers ("rankacc_demo R~"),
    and with one task the bare metric names and labels ("rank_acc", "R")."""
    out = {c.lower(): c for c in columns}
    suffixes = {m: labels[0] for m, labels in METRIC_LABELS.items()}
    suffixes.update({v[1]: v[3] for v in IDEALIZED.values()})
    suffixes.update({v[2]: v[4] for v in IDEALIZED.values()})
    for column in columns:
        task, sep, name = column.partition("/")
        if not sep:
            continue
        for alias in {name, suffixes.get(name, name)}:
            out.setdefault(f"{task} {alias}".lower(), column)
            if len(tasks) == 1:
                out.setdefault(alias.lower(), column)
    return out


def _sort(rows: list[dict[str, Any]], columns: list[str], sort: str | None, default: str, tasks: list[str]) -> str:
    """Sort ``rows`` in place by ``sort`` (a column or an alias), missing values last; the column."""
    key = sort or default
    if key not in columns:
        key = _aliases(tasks, columns).get(key.strip().lower(), key)
    if key not in columns:
        raise RunError(f"--sort: no column {sort!r}; columns: {', '.join(columns)}")
    numeric = column_type(rows, key) == "num"
    present = [r for r in rows if r.get(key) is not None]
    absent = [r for r in rows if r.get(key) is None]
    present.sort(key=lambda r: (-r[key], r["model"]) if numeric else (str(r[key]).lower(), r["model"]))
    rows[:] = present + absent  # missing values last, whichever the order
    return key


# ----------------------------------------------------------------- the runs behind the rows
def _runs(files: list[ResultsFile], models: list[_Model], order: list[str], notes: list[str],
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
    metrics = _metric_list(metrics)
    check_convention(convention, metrics)
    if isinstance(runs, (str, Path)):
        runs = [runs]
    if not runs:
        raise RunError("name at least one run")
    if betas is not None and reference is None:
        raise RunError("--betas is the grid of the reference's idealized accuracy: it needs --reference REF_RUN")
    patterns = split_patterns(tasks)
    notes: list[str] = []
    files = _read_runs(runs, patterns, notes, skip_bad_runs, convention)
    models = _newest_per_model(files)
    all_tasks = sorted({t for m in models for t in m.tasks})
    _check_metrics(metrics, models)
    sets = {task: _task_sets(task, models, notes) for task in all_tasks}
    ideal_metrics = [m for m in metrics if m in IDEALIZED]
    ref = None
    if reference is not None:
        if not ideal_metrics:
            raise RunError("--reference needs rank_acc or rank_acc_norm among --metric")
        ref = _reference(reference, patterns, betas, all_tasks, notes, skip_bad_runs, convention)
    columns = _columns(all_tasks, metrics, ideal_metrics if ref is not None else None)
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
