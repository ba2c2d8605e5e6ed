"""lm-eval's output file names: their grammar, and finding a run's files by them.

lm-eval writes, per model, ``<output_path>/<model_name_sanitized>/`` holding
``results_<timestamp>.json`` (with ``--output_path FILE.json``:
``FILE_<timestamp>.json``) and, with ``--log_samples``, one
``samples_<task>_<timestamp>.jsonl`` per task, all of one run sharing the
timestamp. This module is the one place that knows those names
(:data:`SAMPLES_RE`, :data:`RESULTS_RE`) and which samples file of a task is
the newest (:func:`newest_per_task`). Every problem is a
:class:`~lm_eval_rankacc.core.errors.RunError` with a one-line message.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from lm_eval_rankacc.core.errors import RunError

#: ``samples_<task>_<timestamp>.jsonl``
SAMPLES_RE = re.compile(r"^samples_(?P<task>.+)_(?P<ts>[^_]+)\.jsonl$")
#: ``<stem>_<timestamp>.json`` (``results_<timestamp>.json`` unless ``--output_path FILE.json``)
RESULTS_RE = re.compile(r"^(?P<stem>.+)_(?P<ts>\d{4}-\d\d-\d\dT[^_]+)\.json$")


def samples_name(name: str) -> tuple[str, str] | None:
    """(task, timestamp) of a samples file name; None for another name."""
    m = SAMPLES_RE.match(name)
    return (m.group("task"), m.group("ts")) if m else None


def results_stamp(name: str) -> str | None:
    """The timestamp of a results file name; None for another name."""
    m = RESULTS_RE.match(name)
    return m.group("ts") if m else None


def task_of(samples: Path) -> str:
    """The task of a samples file, from its name; another name is a :class:`RunError`."""
    parts = samples_name(samples.name)
    if parts is None:
        raise RunError(f"{samples}: not an lm-eval samples file name (samples_<task>_<timestamp>.jsonl)")
    return parts[0]


def samples_files(folder: Path) -> list[Path]:
    """The samples files in ``folder``, by name."""
    return sorted(p for p in folder.glob("samples_*.jsonl") if p.is_file() and samples_name(p.name))


def results_files(folder: Path) -> list[Path]:
    """The results files in ``folder`` (by name only; see
    :func:`~lm_eval_rankacc.outputs.results.find_results`)."""
    return sorted(p for p in folder.glob("*.json") if p.is_file() and results_stamp(p.name))


def samples_file_for(results: Path, task: str, stamp: str) -> Path | None:
    """The samples file of ``task`` written with a results file, when it is beside it."""
    path = results.parent / f"samples_{task}_{stamp}.jsonl"
    return path if stamp and path.is_file() else None


def samples_of_results_file(path: Path) -> list[Path]:
    """The samples files written with a results file (same timestamp, beside it), by name."""
    stamp = results_stamp(path.name)
    if stamp is None:
        raise RunError(f"{path}: not an lm-eval output file (samples_<task>_<ts>.jsonl or results_<ts>.json)")
    chosen = [p for p in samples_files(path.parent) if samples_name(p.name)[1] == stamp]
    if not chosen:
        raise RunError(f"{path}: no samples files from this run beside it: rerun lm_eval with --log_samples")
    return chosen


def results_data_for(samples: Path) -> dict[str, Any] | None:
    """The results JSON written with a samples file (same timestamp, same folder)."""
    parts = samples_name(samples.name)
    if parts is None:
        return None
    for candidate in results_files(samples.parent):
        if results_stamp(candidate.name) == parts[1]:
            try:
                data = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
                raise RunError(f"{candidate}: not a readable lm-eval results file ({err})") from None
            return data if isinstance(data, dict) else None
    return None


def newest_per_task(folder: Path, notes: list[str]) -> dict[str, Path]:
    """task -> the newest samples file of each task in ``folder`` (by file
    name); each older one is named in ``notes``.

    Newest is the greatest timestamp of the name, compared as text: lm-eval's
    stamps (``datetime.isoformat()`` with ``-`` for ``:``) have fixed-width
    fields, and one without microseconds (``...T03-04-05``, a run started on
    the second) is a prefix of, so older than, that second's others
    (``...T03-04-05.000006``), though its file name sorts after theirs.

    >>> stamps = ["2026-01-02T03-04-05.000006", "2026-01-02T03-04-05"]
    >>> sorted(f"samples_t_{s}.jsonl" for s in stamps)[-1], max(stamps)
    ('samples_t_2026-01-02T03-04-05.jsonl', '2026-01-02T03-04-05.000006')
    """
    files = samples_files(folder)
    if not files:
        raise RunError(f"{folder}: holds lm-eval results but no samples files: rerun lm_eval with --log_samples")
    newest: dict[str, tuple[str, Path]] = {}
    for p in files:
        task, stamp = samples_name(p.name)
        if task not in newest or stamp > newest[task][0]:
            newest[task] = (stamp, p)
    notes += [f"{samples_name(p.name)[0]}: older samples file {p.name} ignored"
              for p in files if newest[samples_name(p.name)[0]][1] != p]
    return {task: p for task, (_, p) in sorted(newest.items(), key=lambda item: item[1][1])}


def newest_samples(path: str | Path, notes: list[str] | None = None) -> dict[str, Path]:
    """task -> samples file of a run argument, for tasks of any kind: the
    samples file itself, those written with a results file (same timestamp,
    beside it), or in a folder (or its one model sub-folder) the newest
    samples file of each task (:func:`newest_per_task`), the older ones named
    in ``notes``."""
    path = Path(path).expanduser()
    notes = [] if notes is None else notes
    if not path.exists():
        raise RunError(f"{path}: no such file or folder")
    if path.is_file():
        parts = samples_name(path.name)
        if parts is not None:
            return {parts[0]: path}
        return {task_of(p): p for p in samples_of_results_file(path)}
    folders = [path] if samples_files(path) else sorted(d for d in path.iterdir() if d.is_dir() and samples_files(d))
    if len(folders) != 1:
        what = f"the outputs of {len(folders)} models" if folders else "no samples_*.jsonl (nor a sub-folder with them)"
        raise RunError(f"{path}: holds {what}; pass one model folder, run with --log_samples")
    return newest_per_task(folders[0], notes)


def stamp_date(stamp: str) -> str:
    """``2026-01-02T03-04-05.000006`` -> ``2026-01-02 03:04:05``."""
    m = re.match(r"(\d{4}-\d\d-\d\d)T(\d\d)-(\d\d)-(\d\d)", stamp)
    return f"{m.group(1)} {m.group(2)}:{m.group(3)}:{m.group(4)}" if m else stamp


def short_name(name: str) -> str:
    """The last part of a model path or hub name (``org/model`` -> ``model``)."""
    return name.rstrip("/").split("/")[-1] or name
