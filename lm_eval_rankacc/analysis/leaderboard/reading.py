"""Reading the leaderboard's runs: every results file with a rankacc task,
read once (in parallel processes for big runs; each samples file through
the samples cache), with the digest of its
logged documents and, under the ``released`` convention, R and R~
recomputed from its samples; every file left out is named in a note or an
error."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lm_eval_rankacc.analysis.base import (
    RELEASED_METRICS,
    left_out_note,
    observed_correct,
)
from lm_eval_rankacc.analysis.leaderboard.columns import METRIC_LABELS
from lm_eval_rankacc.analysis.leaderboard.document_sets import docs_digest
from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.outputs.cache import cached_samples, is_fresh, remembered
from lm_eval_rankacc.outputs.columns import TaskSamples
from lm_eval_rankacc.outputs.parallel import map_in_processes, samples_bytes
from lm_eval_rankacc.outputs.results import (
    ResultsFile,
    TaskResult,
    find_results,
    read_results,
)
from lm_eval_rankacc.outputs.samples import check_document_count


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
        if convention == "released":  # the samples are loaded anyway: their documents taken from them
            ts = cached_samples(tr.samples, tr.task, notes)
            _released_values(tr, ts, notes if notes is not None else [])
            docs = _documents(ts)
        else:
            docs = remembered(tr.samples, tr.task, "documents", _documents, notes)
        check_document_count(tr.samples, tr.task, docs["held"])  # the results file may have changed
        tr.docs = docs["digest"]
        if tr.n is None:
            tr.n = docs["n"]
    return rf


def _documents(ts: TaskSamples) -> dict:
    """What the leaderboard reads of a task's samples (kept beside the cache entry): the digest of its
    documents, their number, and the number lm-eval logged (dropped ones too)."""
    return {"digest": docs_digest(ts.ids, ts.hashes), "n": len(ts), "held": len(ts) + len(ts.dropped)}


def _mean_stderr(outcomes) -> tuple[float | None, float | None]:
    """Mean of the kept (non-NaN) outcomes and its standard error, computed as
    lm-eval computes its own (sample standard deviation / sqrt(k))."""
    if outcomes is None:
        return None, None
    kept = outcomes[~np.isnan(outcomes)]
    if not kept.size:
        return None, None
    stderr = float(kept.std(ddof=1) / np.sqrt(kept.size)) if kept.size > 1 else None
    return float(kept.mean()), stderr


def _released_values(tr: TaskResult, ts: TaskSamples, notes: list[str]) -> None:
    """Replace lm-eval's aggregates of one task by R and R~ recomputed from its
    samples under the released code's rules (R~ None without token counts)."""
    tr.values, tr.stderrs = {}, {}
    for metric in RELEASED_METRICS:
        outcomes = observed_correct(ts, metric, "released")
        tr.values[metric], tr.stderrs[metric] = _mean_stderr(outcomes)
        notes += filter(None, [left_out_note(str(tr.samples.parent.name), ts.task, METRIC_LABELS[metric][0],
                                             outcomes)])


def read_or_skip(path: Path, patterns: list[str] | None, skip_bad: bool, notes: list[str],
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
    """:func:`read_or_skip` of one results file, with the notes it wrote (a job of :func:`map_in_processes`)."""
    path, patterns, skip_bad, convention = job
    notes: list[str] = []
    return read_or_skip(path, patterns, skip_bad, notes, convention), notes


def read_runs(runs: Sequence[str | Path], patterns: list[str] | None, notes: list[str],
               skip_bad: bool = False, convention: str = "paper") -> list[ResultsFile]:
    """Every results file with a rankacc task of the ``runs``, each read once
    (in parallel processes where :func:`lm_eval_rankacc.outputs.parallel.map_in_processes` says so);
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
    nbytes = sum(samples_bytes(p.parent, is_fresh) for _, p, _ in found)
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
