"""Reading one rankacc task's ``samples_<task>_<ts>.jsonl`` (``lm_eval
--log_samples``) into a :class:`~lm_eval_rankacc.outputs.columns.TaskSamples`.

Each samples line is one document: ``doc_id``, ``doc`` (the rankacc schema:
``id``, ``prompt``, ``responses``, ``ranks``, ``votes``, ``alpha``),
``doc_hash`` and the per-document metrics, among them
``scores`` = ``{"loglik": [...], "n_tokens": [...], "n_bytes": [...]}``.
The file is read by stage: its lines (:mod:`~lm_eval_rankacc.outputs.lines`,
the whole file UTF-8), each line's fields checked
(:mod:`~lm_eval_rankacc.outputs.validation`), packed into columns
(:mod:`~lm_eval_rankacc.outputs.columns`). What a line is (:func:`first_kind`)
tells a rankacc task from another task's or a ``--predict_only`` run's
samples; a document lm-eval dropped as too long for the model's window is
left out and counted (:func:`dropped_note`). Every problem is a
:class:`~lm_eval_rankacc.core.errors.RunError` naming the file, the line and
the field.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.core.jsontext import no_cyclic_gc
from lm_eval_rankacc.outputs.columns import Columns, TaskSamples
from lm_eval_rankacc.outputs import lines
from lm_eval_rankacc.outputs.lines import line_text, parsed, text_lines
from lm_eval_rankacc.outputs.names import results_data_for, task_of
from lm_eval_rankacc.outputs.validation import InvalidField, fast_lines, fast_sample, valid_sample

__all__ = ["check_count", "check_document_count", "dropped_note", "examples", "first_kind", "not_rankacc", "read_samples"]


def _kind(rec: Any) -> str:
    """What a samples line is: ``rankacc`` (a rankacc document with its
    ``scores``), ``predict_only`` (a rankacc document from ``lm_eval
    --predict_only``: no metrics, no scores) or ``other`` (another task's)."""
    doc = rec.get("doc") if isinstance(rec, dict) else None
    if not (isinstance(doc, dict) and "ranks" in doc and "responses" in doc):
        return "other"
    if "scores" in rec:
        return "rankacc"
    return "predict_only" if rec.get("metrics") in ([], ["bypass"]) or "bypass" in rec else "other"


def first_kind(path: Path) -> str:
    """What a samples file's first line is (``rankacc``, ``predict_only`` or
    ``other``); ``empty`` for a file without one."""
    for line_no, line, last, _ in text_lines(path):
        return _kind(parsed(path, line_no, line, last))
    return "empty"


def not_rankacc(path: Path, task: str, kind: str) -> RunError:
    """Why a samples file of ``kind`` (:func:`first_kind`) cannot be analysed."""
    if kind == "empty":
        return RunError(f"{path}: holds no samples (an empty or interrupted run?)")
    if kind == "predict_only":
        return RunError(f"{path}: task '{task}' was run with lm_eval --predict_only, so its samples carry no "
                        "scores: rerun lm_eval without --predict_only (with --log_samples)")
    return RunError(f"{path}: task '{task}' is not a rankacc task (its samples carry no rankacc 'scores')")


def _sample(path: Path, line_no: int, line: str, last: bool, task: str) -> tuple[dict[str, Any], tuple]:
    """One samples line: its record and its checked (loglik, n_tokens, n_bytes);
    anything else is a :class:`RunError` naming file, line and field."""
    rec = parsed(path, line_no, line, last)
    kind = _kind(rec)
    if line_no == 1 and kind != "rankacc" and (kind == "predict_only" or isinstance(rec, dict) and "resps" in rec):
        raise not_rankacc(path, task, kind)
    try:
        return rec, valid_sample(rec)
    except InvalidField as err:
        raise RunError(f"{path}: line {line_no}: {err}") from None


def _sample_fields(path: Path, line_no: int, raw: bytes | memoryview, last: bool, utf8: bool, task: str) -> tuple | None:
    """The checked fields of one raw samples line as
    :func:`~lm_eval_rankacc.outputs.validation.fast_sample` gives them
    (unknown token counts as NaN); None for a blank line. By msgspec where
    installed and it vouches for the line, else by :func:`_sample`."""
    fields = None
    if utf8 and line_no > 1 and raw[:1] == b"{":  # line 1 tells the file's kind
        fields = fast_sample(raw)
    if fields is None:
        line = line_text(path, line_no, raw)
        if line is None:
            return None
        rec, (loglik, n_tokens, n_bytes) = _sample(path, line_no, line, last, task)
        doc = rec["doc"]
        fields = doc["id"], rec["doc_hash"], doc.get("alpha"), doc["ranks"], loglik, n_tokens, n_bytes
    return _unknown_as_nan(fields)


def _unknown_as_nan(fields: tuple) -> tuple:
    """Fields with unknown token counts (None) as NaN."""
    if None in fields[5]:
        return *fields[:5], [math.nan if v is None else v for v in fields[5]], fields[6]
    return fields


def _documents(path: Path, task: str) -> Iterator[tuple[int, int, tuple]]:
    """(line number, byte offset, checked fields) of each document line of a
    samples file: a block of whole lines that each start with ``{`` decoded
    at once where msgspec vouches for all of them (:func:`fast_lines`), every
    other block line by line (:func:`_sample_fields`: the same checks, and
    the reference path words any error). The first block goes line by line:
    line 1 tells the file's kind."""
    line_no = 0
    for block, at, utf8 in lines.blocks(path):
        starts = lines.object_line_starts(block) if utf8 and at else None
        rows = fast_lines(block, len(starts)) if starts else None
        if rows is not None:
            for k, (start, fields) in enumerate(zip(starts, rows), start=line_no + 1):
                yield k, at + start, _unknown_as_nan(fields)
            line_no += len(rows)
            continue
        for line_no, raw, last, offset, _ in lines.block_lines(block, at, utf8, line_no):
            fields = _sample_fields(path, line_no, raw, last, utf8, task)
            if fields is not None:
                yield line_no, offset, fields


def check_count(ts: TaskSamples) -> None:
    """The number of documents against the number lm-eval scored (its results file, when beside)."""
    check_document_count(ts.path, ts.task, len(ts) + len(ts.dropped))


def check_document_count(path: Path, task: str, held: int) -> None:
    """:func:`check_count` of a samples file holding ``held`` documents (kept and dropped)."""
    results = results_data_for(path)
    expected = (((results or {}).get("n-samples") or {}).get(task) or {}).get("effective")
    if isinstance(expected, int) and expected != held:
        raise RunError(f"{path}: holds {held} documents but lm-eval scored {expected} in "
                       "that run (a truncated file?)")


def read_samples(path: str | Path, task: str | None = None) -> TaskSamples:
    """Read one ``samples_<task>_<ts>.jsonl`` of a rankacc task.

    Raises :class:`RunError` for an unreadable, empty, truncated or malformed
    file (any field the analyses read, see
    :mod:`~lm_eval_rankacc.outputs.validation`), duplicate document ids, a
    ``--predict_only`` run, or a task that is not a rankacc task. Documents
    lm-eval dropped as too long are left out and listed in ``dropped``. When
    the results file of the same run is beside it, the number of documents
    is checked against the number lm-eval scored.
    """
    path = Path(path)
    task = task or task_of(path)
    columns = Columns()
    seen: dict[str, int] = {}
    with no_cyclic_gc():
        for line_no, at, fields in _documents(path, task):
            doc_id = str(fields[0])
            if doc_id in seen:
                raise RunError(f"{path}: line {line_no}: document id {doc_id!r} already on line {seen[doc_id]}")
            seen[doc_id] = line_no
            columns.add(doc_id, at, fields)
    del seen
    ts = columns.task_samples(task, path)
    if not ts.ids:
        raise not_rankacc(path, task, "empty") if not ts.dropped else RunError(
            f"{path}: lm-eval dropped all {len(ts.dropped)} documents (a response longer than the model's "
            "window): nothing to analyse")
    check_count(ts)
    return ts


def examples(items: Iterable[str], k: int = 5) -> str:
    """The first ``k`` of ``items``, comma-separated, and how many more."""
    items = list(items)
    shown = ", ".join(items[:k])
    return shown + (f", ... ({len(items) - k} more)" if len(items) > k else "")


def dropped_note(ts: TaskSamples) -> str | None:
    """A note counting the documents lm-eval dropped (``too_long``), left out of every analysis."""
    if not ts.dropped:
        return None
    return (f"{ts.task}: {len(ts.dropped)} document(s) dropped by lm-eval (a response longer than the model's "
            f"window, metric too_long), left out: {examples(ts.dropped)}")
