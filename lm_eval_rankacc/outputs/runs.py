"""A run: one model's rankacc outputs, loaded from whatever names them (an
lm-eval ``--output_path`` folder, a model sub-folder, a samples file or a
results file) as a :class:`Run` of the newest samples file of each task
(:func:`~lm_eval_rankacc.outputs.names.newest_per_task`).

Reading each samples file is :mod:`lm_eval_rankacc.outputs.samples`,
through the samples cache (:mod:`lm_eval_rankacc.outputs.cache`);
:func:`as_runs` reads several runs in parallel processes where
:mod:`lm_eval_rankacc.outputs.parallel` says so. Every problem is a
:class:`RunError` with a one-line message.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.outputs.cache import cached_samples, is_fresh
from lm_eval_rankacc.outputs.columns import TaskSamples
from lm_eval_rankacc.outputs.names import (
    newest_per_task,
    results_data_for,
    results_files,
    samples_files,
    samples_name,
    samples_of_results_file,
    short_name,
    task_of,
)
from lm_eval_rankacc.outputs.parallel import map_in_processes, samples_bytes
from lm_eval_rankacc.outputs.samples import dropped_note, first_kind, not_rankacc

__all__ = ["Run", "RunError", "as_run", "as_runs", "load_run", "split_patterns"]


@dataclass
class Run:
    """One model's rankacc outputs: the newest samples file of each task."""

    path: Path
    folder: Path
    label: str
    tasks: dict[str, TaskSamples]
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------- locating files
def _model_folder(path: Path) -> Path:
    """The folder holding the samples files: ``path`` itself, or its one
    model sub-folder (an lm-eval ``--output_path``)."""
    if samples_files(path) or results_files(path):
        return path
    subs = sorted(d for d in path.iterdir() if d.is_dir() and (samples_files(d) or results_files(d)))
    if len(subs) == 1:
        return subs[0]
    if not subs:
        raise RunError(f"{path}: no lm-eval output here (no results_*.json or samples_*.jsonl, nor in a sub-folder)")
    names = ", ".join(d.name for d in subs)
    raise RunError(f"{path}: holds the outputs of {len(subs)} models ({names}); pass one model folder")


def _label(folder: Path, results: dict[str, Any] | None) -> str:
    name = (results or {}).get("model_name")
    if isinstance(name, str) and name.strip():
        return short_name(name)
    return folder.name


def _matches(task: str, patterns: Sequence[str] | None) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(task, p) for p in patterns)


def split_patterns(tasks: str | Sequence[str] | None) -> list[str] | None:
    """``"a,b*"`` or ``["a", "b*"]`` -> a list of glob patterns (None: all tasks)."""
    if tasks is None:
        return None
    items = tasks.split(",") if isinstance(tasks, str) else list(tasks)
    patterns = [p.strip() for p in items if p and p.strip()]
    return patterns or None


def _samples_file_run(path: Path, patterns: list[str] | None, require_match: bool) -> Run:
    """A run named by one samples file."""
    notes: list[str] = []
    ts = cached_samples(path, None, notes)
    results = results_data_for(path)
    if require_match and not _matches(ts.task, patterns):
        raise RunError(f"{path}: task '{ts.task}' does not match --tasks {','.join(patterns or [])}")
    notes += filter(None, [dropped_note(ts)])
    return Run(path, path.parent, _label(path.parent, results), {ts.task: ts}, notes)


def _read_tasks(chosen: list[Path], patterns: list[str] | None, notes: list[str]) -> tuple[dict, list[str]]:
    """The rankacc tasks among ``chosen`` matching ``patterns``, and the other tasks left out."""
    loaded: dict[str, TaskSamples] = {}
    skipped: list[str] = []
    for p in chosen:
        task = task_of(p)
        if not _matches(task, patterns):
            continue
        ts = cached_samples(p, task, notes, kind_of=first_kind)  # a cached file's kind is not read again
        if ts == "other":
            skipped.append(task)
            continue
        if isinstance(ts, str):
            raise not_rankacc(p, task, ts)
        loaded[task] = ts
        notes += filter(None, [dropped_note(loaded[task])])
    if skipped:
        notes.append(f"not rankacc tasks, left out: {', '.join(sorted(skipped))}")
    return loaded, skipped


def _check_found(folder: Path, loaded: dict, skipped: list[str], patterns: list[str] | None,
                 require_match: bool) -> None:
    if patterns and require_match:
        for pattern in patterns:
            if not any(fnmatch.fnmatchcase(t, pattern) for t in loaded):
                raise RunError(f"{folder}: no rankacc task matches --tasks pattern {pattern!r} (tasks here: "
                               f"{', '.join(sorted(loaded)) or 'none'})")
    if not loaded and (require_match or not patterns):
        what = f" (only {', '.join(sorted(skipped))})" if skipped else ""
        raise RunError(f"{folder}: no samples of a rankacc task{what}")


def load_run(path: str | Path, tasks: str | Sequence[str] | None = None, require_match: bool = True) -> Run:
    """Load a run: an lm-eval ``--output_path`` folder (with one model
    sub-folder), a model sub-folder, one ``samples_*.jsonl`` file, or a
    ``results_*.json`` file (its samples files from the same run).

    In a folder, the newest samples file of each task is read (older ones are
    named in ``Run.notes``), and samples of tasks that are not rankacc tasks
    are left out with a note. ``tasks`` (glob patterns, comma-separated)
    restricts the tasks read; a pattern that matches no task is an error
    unless ``require_match`` is false (a policy run may lack a task: the
    analyses report it).
    """
    path = Path(path).expanduser()
    patterns = split_patterns(tasks)
    if not path.exists():
        raise RunError(f"{path}: no such file or folder")
    notes: list[str] = []
    if path.is_file():
        if samples_name(path.name):
            return _samples_file_run(path, patterns, require_match)
        folder, chosen = path.parent, samples_of_results_file(path)
    else:
        folder = _model_folder(path)
        chosen = list(newest_per_task(folder, notes).values())
    loaded, skipped = _read_tasks(chosen, patterns, notes)
    _check_found(folder, loaded, skipped, patterns, require_match)
    results = results_data_for(chosen[-1])
    return Run(path, folder, _label(folder, results), dict(sorted(loaded.items())), notes)


def as_run(run: Run | str | Path, tasks: str | Sequence[str] | None = None, require_match: bool = True) -> Run:
    """``run`` itself when already loaded (all its tasks), else :func:`load_run`."""
    return run if isinstance(run, Run) else load_run(run, tasks, require_match)


@dataclass
class _InCache:
    """A task a forked reader left in the samples cache: the parent loads it from there."""

    path: Path


def _load_run_args(args: tuple) -> Run:
    """:func:`load_run` of ``args[:-1]``; in a forked reader (a process other than ``args[-1]``, the
    caller's pid) a task it wrote to (or found in) the samples cache comes back as its file only
    (:class:`_InCache`), not as a pickled copy of its columns."""
    run = load_run(*args[:-1])
    if os.getpid() != args[-1]:
        run.tasks = {task: _InCache(ts.path) if ts.cache_entry is not None else ts for task, ts in run.tasks.items()}
    return run


def _from_cache(run: Run) -> Run:
    """The tasks of a run a forked reader left in the samples cache, loaded (or read again, where the
    entry no longer fits the file)."""
    for task, ts in run.tasks.items():
        if isinstance(ts, _InCache):
            run.tasks[task] = cached_samples(ts.path, task, run.notes)
    return run


def as_runs(runs: Sequence[Run | str | Path], tasks: str | Sequence[str] | None = None,
            require_match: Sequence[bool] | None = None) -> list[Run]:
    """:func:`as_run` of each run, in order (``require_match`` per run,
    default true for the first, false for the others); the runs still to
    read are read in parallel processes where :func:`map_in_processes`
    says so (the same documents, checks and errors)."""
    require = list(require_match) if require_match is not None else [True] + [False] * (len(runs) - 1)
    todo = [k for k, run in enumerate(runs) if not isinstance(run, Run)]
    nbytes = sum(samples_bytes(Path(runs[k]).expanduser(), is_fresh) for k in todo)
    loaded = map_in_processes(_load_run_args, [(runs[k], tasks, require[k], os.getpid()) for k in todo], nbytes)
    out: list[Any] = list(runs)
    for k, run in zip(todo, loaded):
        out[k] = _from_cache(run)
    return out
