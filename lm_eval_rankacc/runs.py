"""Reading lm-eval's samples of rankacc tasks (``--output_path ... --log_samples``).

lm-eval writes, per model, ``<output_path>/<model_name_sanitized>/`` holding
``results_<timestamp>.json`` and one ``samples_<task>_<timestamp>.jsonl`` per
task (the file names, and the results JSON, are :mod:`lm_eval_rankacc.results`).
Each samples line is one document: ``doc_id``, ``doc`` (the rankacc schema:
``id``, ``prompt``, ``responses``, ``ranks``, ``votes``, ``alpha``),
``doc_hash`` and the per-document metrics, among them
``scores`` = ``{"loglik": [...], "n_tokens": [...], "n_bytes": [...]}``.

:func:`load_run` accepts the output folder, a model sub-folder, a samples file
or a results file, and keeps the newest samples file of each task.
:func:`match_documents` pairs the documents of two runs by document id *and*
``doc_hash``, never by position. Nothing here reruns a model or does
mathematics; every problem is a :class:`RunError` with a one-line message.
"""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lm_eval_rankacc.errors import RunError
from lm_eval_rankacc.results import (
    results_data_for,
    results_files,
    results_stamp,
    samples_files,
    samples_name,
    short_name,
    task_metadata,
)

__all__ = ["Run", "RunError", "TaskSamples", "as_run", "load_run", "match_documents", "read_samples",
           "split_patterns"]


@dataclass
class TaskSamples:
    """The logged documents of one rankacc task in one run, in file order."""

    task: str
    path: Path
    ids: list[str]
    hashes: list[str]
    docs: list[dict[str, Any]]
    loglik: list[list[float]]
    n_tokens: list[list[int | None]]
    n_bytes: list[list[int]]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def sizes(self) -> np.ndarray:
        """Number of responses of each document."""
        return np.array([len(d["ranks"]) for d in self.docs], dtype=int)

    @property
    def tied(self) -> np.ndarray:
        """Boolean per document: a two-response human tie (Def. C.1)."""
        return np.array(
            [len(d["ranks"]) == 2 and d["ranks"][0] == d["ranks"][1] for d in self.docs], dtype=bool
        )

    @property
    def has_ties(self) -> bool:
        return bool(self.tied.any())

    @property
    def has_token_counts(self) -> bool:
        return all(n is not None for counts in self.n_tokens for n in counts)

    def groups(self) -> dict[int, np.ndarray]:
        """Indices of the documents, grouped by number of responses."""
        sizes = self.sizes
        return {int(n): np.flatnonzero(sizes == n) for n in np.unique(sizes)}

    def array(self, name: str, index: Sequence[int] | np.ndarray) -> np.ndarray:
        """(len(index), n) float array of ``loglik``, ``n_tokens`` (NaN when
        unknown) or ``n_bytes`` for documents of one size; or ``ranks``
        (int), or ``alpha`` ((len(index),) float, NaN when None)."""
        if name == "alpha":
            return np.array(
                [math.nan if self.docs[i].get("alpha") is None else float(self.docs[i]["alpha"]) for i in index],
                dtype=float,
            )
        if name == "ranks":
            return np.array([self.docs[i]["ranks"] for i in index], dtype=int)
        source = {"loglik": self.loglik, "n_tokens": self.n_tokens, "n_bytes": self.n_bytes}[name]
        return np.array(
            [[math.nan if v is None else v for v in source[i]] for i in index], dtype=float
        ).reshape(len(index), -1)


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


def _task_of(samples: Path) -> str:
    parts = samples_name(samples.name)
    if parts is None:
        raise RunError(f"{samples}: not an lm-eval samples file name (samples_<task>_<timestamp>.jsonl)")
    return parts[0]


# ----------------------------------------------------------------- reading samples
def _first_line(path: Path) -> dict[str, Any] | None:
    with path.open("r", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    raise RunError(f"{path}: line 1 is not valid JSON (a corrupted samples file?)") from None
                return rec if isinstance(rec, dict) else None
    return None


def _is_rankacc_record(rec: dict[str, Any] | None) -> bool:
    return (
        isinstance(rec, dict)
        and isinstance(rec.get("scores"), dict)
        and "loglik" in rec["scores"]
        and isinstance(rec.get("doc"), dict)
        and "ranks" in rec["doc"]
    )


def _bad(path: Path, line_no: int, message: str) -> RunError:
    return RunError(f"{path}: line {line_no}: {message}")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise RunError(f"{path}: cannot be read ({err})") from None


def _record(path: Path, line_no: int, line: str, task: str, last: bool) -> dict[str, Any]:
    """One samples line as a rankacc record (``last``: the file's last line, without newline)."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as err:
        hint = " (the file looks truncated)" if last else ""
        raise _bad(path, line_no, f"not valid JSON: {err.msg}{hint}") from None
    if not isinstance(rec, dict):
        raise _bad(path, line_no, "not a JSON object")
    if not _is_rankacc_record(rec):
        if line_no == 1 and "doc" in rec and "resps" in rec:
            raise RunError(f"{path}: task '{task}' is not a rankacc task (its samples carry no rankacc 'scores')")
        missing = [k for k in ("doc", "scores") if not isinstance(rec.get(k), dict)]
        raise _bad(path, line_no, f"not a rankacc sample (missing or malformed {', '.join(missing) or 'doc.ranks'})")
    return rec


def _checked_doc(path: Path, line_no: int, rec: dict[str, Any]) -> int:
    """Check a record's document and ``doc_hash``; its number of responses."""
    doc = rec["doc"]
    for key in ("id", "responses", "ranks"):
        if key not in doc:
            raise _bad(path, line_no, f"doc has no '{key}'")
    doc_hash = rec.get("doc_hash")
    if not isinstance(doc_hash, str) or not doc_hash:
        raise _bad(path, line_no, "no 'doc_hash'")
    responses, ranks = doc["responses"], doc["ranks"]
    n = len(responses) if isinstance(responses, list) else -1
    if n < 2 or not isinstance(ranks, list) or len(ranks) != n or not all(
        isinstance(r, int) and not isinstance(r, bool) for r in ranks
    ):
        raise _bad(path, line_no, "doc needs >= 2 responses and one integer rank per response")
    alpha = doc.get("alpha")
    if alpha is not None and not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
        raise _bad(path, line_no, f"doc alpha must be a share in [0, 1] or null, got {alpha!r}")
    return n


def _checked_scores(path: Path, line_no: int, scores: dict[str, Any], n: int) -> tuple[list, list, list]:
    """(loglik, n_tokens, n_bytes) of a record's ``scores``, one per response."""
    loglik = scores.get("loglik")
    n_tokens = scores.get("n_tokens", [None] * n)
    n_bytes = scores.get("n_bytes")
    if not (isinstance(loglik, list) and isinstance(n_tokens, list) and isinstance(n_bytes, list)) or not (
        len(loglik) == len(n_tokens) == len(n_bytes) == n
    ):
        raise _bad(path, line_no, f"scores need loglik, n_tokens and n_bytes for each of the {n} responses")
    try:
        ll = [float(x) for x in loglik]  # JSON NaN / Infinity are kept as such
    except (TypeError, ValueError):
        raise _bad(path, line_no, f"scores.loglik holds a non-number: {loglik!r}") from None
    return ll, [None if v is None else int(v) for v in n_tokens], [int(v) for v in n_bytes]


def _check_count(ts: TaskSamples) -> None:
    """The number of documents against the number lm-eval scored (its results file, when beside)."""
    results = results_data_for(ts.path)
    expected = (((results or {}).get("n-samples") or {}).get(ts.task) or {}).get("effective")
    if isinstance(expected, int) and expected != len(ts):
        raise RunError(
            f"{ts.path}: holds {len(ts)} documents but lm-eval scored {expected} in that run (a truncated file?)"
        )


def read_samples(path: str | Path, task: str | None = None) -> TaskSamples:
    """Read one ``samples_<task>_<ts>.jsonl`` of a rankacc task.

    Raises :class:`RunError` for an unreadable, empty, truncated or malformed
    file, duplicate document ids, or a task that is not a rankacc task. When
    the results file of the same run is beside it, the number of documents is
    checked against the number lm-eval scored.
    """
    path = Path(path)
    task = task or _task_of(path)
    text = _read_text(path)
    lines = text.splitlines()
    ts = TaskSamples(task, path, [], [], [], [], [], [])
    seen: dict[str, int] = {}
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        rec = _record(path, line_no, line, task, last=line_no == len(lines) and not text.endswith("\n"))
        n = _checked_doc(path, line_no, rec)
        ll, n_tokens, n_bytes = _checked_scores(path, line_no, rec["scores"], n)
        doc_id = str(rec["doc"]["id"])
        if doc_id in seen:
            raise _bad(path, line_no, f"document id {doc_id!r} already on line {seen[doc_id]}")
        seen[doc_id] = line_no
        ts.ids.append(doc_id)
        ts.hashes.append(rec["doc_hash"])
        ts.docs.append(rec["doc"])
        ts.loglik.append(ll)
        ts.n_tokens.append(n_tokens)
        ts.n_bytes.append(n_bytes)
    if not ts.ids:
        raise RunError(f"{path}: holds no samples (an empty or interrupted run?)")
    _check_count(ts)
    return ts


# ----------------------------------------------------------------- runs
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
    ts = read_samples(path)
    results = results_data_for(path)
    if require_match and not _matches(ts.task, patterns):
        raise RunError(f"{path}: task '{ts.task}' does not match --tasks {','.join(patterns or [])}")
    return Run(path, path.parent, _label(path.parent, results), {ts.task: ts}, [])


def _samples_of_results_file(path: Path) -> list[Path]:
    """The samples files written with a results file (same timestamp, beside it)."""
    stamp = results_stamp(path.name)
    if stamp is None:
        raise RunError(f"{path}: not an lm-eval output file (samples_<task>_<ts>.jsonl or results_<ts>.json)")
    chosen = [p for p in samples_files(path.parent) if samples_name(p.name)[1] == stamp]
    if not chosen:
        raise RunError(f"{path}: no samples files from this run beside it: rerun lm_eval with --log_samples")
    return chosen


def _newest_samples(folder: Path, notes: list[str]) -> list[Path]:
    """The newest samples file of each task in ``folder``; older ones named in ``notes``."""
    files = samples_files(folder)
    if not files:
        raise RunError(f"{folder}: holds lm-eval results but no samples files: rerun lm_eval with --log_samples")
    newest: dict[str, Path] = {}
    for p in files:
        task, stamp = samples_name(p.name)
        if task not in newest or stamp > samples_name(newest[task].name)[1]:
            if task in newest:
                notes.append(f"{task}: older samples file {newest[task].name} ignored")
            newest[task] = p
        else:
            notes.append(f"{task}: older samples file {p.name} ignored")
    return sorted(newest.values())


def _read_tasks(chosen: list[Path], patterns: list[str] | None, notes: list[str]) -> tuple[dict, list[str]]:
    """The rankacc tasks among ``chosen`` matching ``patterns``, and the other tasks left out."""
    loaded: dict[str, TaskSamples] = {}
    skipped: list[str] = []
    for p in chosen:
        task = _task_of(p)
        if not _matches(task, patterns):
            continue
        if not _is_rankacc_record(_first_line(p)):
            skipped.append(task)
            continue
        loaded[task] = read_samples(p, task)
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
        folder, chosen = path.parent, _samples_of_results_file(path)
    else:
        folder = _model_folder(path)
        chosen = _newest_samples(folder, notes)
    loaded, skipped = _read_tasks(chosen, patterns, notes)
    _check_found(folder, loaded, skipped, patterns, require_match)
    results = results_data_for(chosen[-1])
    return Run(path, folder, _label(folder, results), dict(sorted(loaded.items())), notes)


def as_run(run: Run | str | Path, tasks: str | Sequence[str] | None = None, require_match: bool = True) -> Run:
    """``run`` itself when already loaded (all its tasks), else :func:`load_run`."""
    return run if isinstance(run, Run) else load_run(run, tasks, require_match)


# ----------------------------------------------------------------- matching
def _run_config(ts: TaskSamples) -> dict[str, Any]:
    results = results_data_for(ts.path) or {}
    cfg = ((results.get("configs") or {}).get(ts.task) or {})
    return {"version": (results.get("versions") or {}).get(ts.task), **task_metadata(cfg)}


def _examples(items: Iterable[str], k: int = 5) -> str:
    items = list(items)
    shown = ", ".join(items[:k])
    return shown + (f", ... ({len(items) - k} more)" if len(items) > k else "")


def match_documents(ref: TaskSamples, other: TaskSamples, ref_name: str = "REF", other_name: str = "OTHER") -> np.ndarray:
    """Indices into ``other`` of the documents of ``ref``, in ``ref``'s order,
    matched by document id and ``doc_hash``.

    Raises :class:`RunError` naming the documents that differ (ids found in
    one run only, or the same id with different content) and, where the
    results files say so, the differing task version / sample size / seed.
    """
    where = {(i, h): k for k, (i, h) in enumerate(zip(other.ids, other.hashes))}
    index = [where.get(key) for key in zip(ref.ids, ref.hashes)]
    if all(k is not None for k in index) and len(ref) == len(other):
        return np.array(index, dtype=int)
    ref_ids, other_ids = dict(zip(ref.ids, ref.hashes)), dict(zip(other.ids, other.hashes))
    only_ref = [i for i in ref.ids if i not in other_ids]
    only_other = [i for i in other.ids if i not in ref_ids]
    changed = [i for i in ref.ids if i in other_ids and other_ids[i] != ref_ids[i]]
    parts = []
    if only_ref:
        parts.append(f"{len(only_ref)} only in {ref_name} ({_examples(only_ref)})")
    if only_other:
        parts.append(f"{len(only_other)} only in {other_name} ({_examples(only_other)})")
    if changed:
        parts.append(f"{len(changed)} with the same id but different content/doc_hash ({_examples(changed)})")
    cfg_ref, cfg_other = _run_config(ref), _run_config(other)
    diffs = [
        f"{k} {cfg_ref.get(k)!r} vs {cfg_other.get(k)!r}"
        for k in sorted(set(cfg_ref) | set(cfg_other))
        if cfg_ref.get(k) != cfg_other.get(k)
    ]
    hint = f"; the runs differ in {', '.join(diffs)}" if diffs else " (another sample size, seed or task version?)"
    raise RunError(
        f"{ref.task}: {ref_name} ({ref.path.name}, {len(ref)} docs) and {other_name} ({other.path.name}, "
        f"{len(other)} docs) score different documents: {'; '.join(parts)}{hint}"
    )
