"""Reading lm-eval's samples of rankacc tasks (``--output_path ... --log_samples``).

lm-eval writes, per model, ``<output_path>/<model_name_sanitized>/`` holding
``results_<timestamp>.json`` and one ``samples_<task>_<timestamp>.jsonl`` per
task (the file names, and the results JSON, are :mod:`lm_eval_rankacc.outputs.results`).
Each samples line is one document: ``doc_id``, ``doc`` (the rankacc schema:
``id``, ``prompt``, ``responses``, ``ranks``, ``votes``, ``alpha``),
``doc_hash`` and the per-document metrics, among them
``scores`` = ``{"loglik": [...], "n_tokens": [...], "n_bytes": [...]}``.

Every field the analyses read is checked in one place (:func:`_valid_sample`):
ranks integers >= 1, token counts positive integers or null (unknown), byte
counts positive integers, log-likelihoods numbers (JSON ``NaN`` /
``Infinity`` allowed: the analyses count them as invalid; never booleans,
strings or null, except all null for a document lm-eval dropped as too long
for the model's window, which is left out and counted), alpha in [0, 1] or
null, the text fields strings, the whole file UTF-8. Anything else is a
:class:`RunError` naming the file, the line and the field. Where ``msgspec``
is installed, :func:`_fast_sample` decodes only those fields and makes the
same checks; a line it cannot vouch for goes through :func:`_valid_sample`,
which words the error.

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
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from itertools import chain
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:  # typed decoding of the fields the analyses read only (:func:`_fast_sample`); optional
    import msgspec as _msgspec
except ImportError:  # pragma: no cover - msgspec is optional
    _msgspec = None

from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.core.jsontext import loads, no_cyclic_gc, utf8_error, without_bom
from lm_eval_rankacc.outputs.results import (
    results_data_for,
    results_files,
    results_stamp,
    samples_files,
    samples_name,
    short_name,
    task_metadata,
)

__all__ = ["Run", "RunError", "TaskSamples", "as_run", "as_runs", "load_run", "match_documents", "read_samples",
           "split_patterns"]


class _Ragged(Sequence):
    """One list of numbers per document, held as one flat array and each
    document's start: ``flat[starts[k]:starts[k + 1]]``. Elements come back
    as Python numbers; with ``nullable``, NaN comes back as None (unknown)."""

    def __init__(self, flat: np.ndarray, starts: np.ndarray, nullable: bool = False):
        self.flat, self.starts, self.nullable = flat, starts, nullable

    def __len__(self) -> int:
        return len(self.starts) - 1

    def __getitem__(self, k: int) -> list:  # type: ignore[override]
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(k)
        values = self.flat[self.starts[k]:self.starts[k + 1]].tolist()
        if self.nullable:
            return [None if v != v else int(v) for v in values]
        return values

    def __eq__(self, other: object) -> bool:
        return list(self) == (list(other) if isinstance(other, (_Ragged, list, tuple)) else other)

    def sizes(self) -> np.ndarray:
        return np.diff(self.starts)

    def block(self, index: Sequence[int] | np.ndarray, n: int) -> np.ndarray:
        """(len(index), n) array of documents that all hold ``n`` values."""
        at = self.starts[np.asarray(index, dtype=np.int64)]
        return self.flat[at[:, None] + np.arange(n)]

    @classmethod
    def of(cls, lists: Iterable[Sequence], nullable: bool = False) -> _Ragged:
        sizes, flat = [], []
        for values in lists:
            sizes.append(len(values))
            flat += [math.nan if v is None else v for v in values]
        dtype = float if nullable or any(type(v) is float for v in flat) else np.int64
        return cls(np.array(flat, dtype=dtype), np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]), nullable)


class _Doc(Mapping):
    """A document of a samples file: ``id``, ``ranks`` and ``alpha`` held in
    memory; any other field (prompt, responses, votes) read back from its line
    of the file when asked for."""

    def __init__(self, ts: TaskSamples, k: int):
        self._ts, self._k = ts, k
        self._full: dict | None = None

    def _fields(self) -> dict:
        if self._full is None:
            self._full = self._ts._reread(self._k)
        return self._full

    def __getitem__(self, key: str) -> Any:
        if key == "ranks":
            return self._ts.ranks[self._k]
        if key == "alpha" and self._full is None:
            alpha = float(self._ts.alpha[self._k])
            return None if alpha != alpha else alpha
        return self._fields()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields())

    def __len__(self) -> int:
        return len(self._fields())


class _Docs(Sequence):
    """The documents of a :class:`TaskSamples` read from a file, as :class:`_Doc`."""

    def __init__(self, ts: TaskSamples):
        self._ts = ts

    def __len__(self) -> int:
        return len(self._ts.ids)

    def __getitem__(self, k: int) -> _Doc:  # type: ignore[override]
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(k)
        return _Doc(self._ts, k)


@dataclass
class TaskSamples:
    """The logged documents of one rankacc task in one run, in file order.

    Read from a file, the numbers are held compactly (:class:`_Ragged`) and
    ``docs`` reads a document's texts back from its line (``offsets``) only
    when asked; built by hand, plain lists work the same."""

    task: str
    path: Path
    ids: list[str]
    hashes: list[str]
    docs: Sequence[Mapping[str, Any]]
    loglik: Sequence[list[float]]
    n_tokens: Sequence[list[int | None]]
    n_bytes: Sequence[list[int]]
    dropped: list[str] = field(default_factory=list)  # ids lm-eval did not score (too long for the window)
    ranks: _Ragged | None = None  # default: from docs (where they hold ranks)
    alpha: np.ndarray | None = None  # per document, NaN when None; default: from docs
    offsets: np.ndarray | None = None  # byte offset of each document's line (docs read back from the file)

    def __post_init__(self) -> None:
        if self.ranks is None and all("ranks" in d for d in self.docs):  # built by hand: maybe without ranks
            self.ranks = _Ragged.of(d["ranks"] for d in self.docs)
        if self.alpha is None:
            self.alpha = np.array([math.nan if d.get("alpha") is None else float(d["alpha"]) for d in self.docs],
                                  dtype=float)

    def __len__(self) -> int:
        return len(self.ids)

    def _reread(self, k: int) -> dict[str, Any]:
        """The document of the ``k``-th kept line, parsed again from the file."""
        with self.path.open("rb") as fh:
            fh.seek(int(self.offsets[k]))
            raw = without_bom(fh.readline(), 1 if int(self.offsets[k]) == 0 else 2).rstrip(b"\r\n")
        return loads(raw.decode("utf-8"))["doc"]

    @property
    def sizes(self) -> np.ndarray:
        """Number of responses of each document."""
        return self.ranks.sizes().astype(int)

    @property
    def tied(self) -> np.ndarray:
        """Boolean per document: a two-response human tie (Def. C.1)."""
        pair = self.sizes == 2
        out = np.zeros(len(pair), dtype=bool)
        at = self.ranks.starts[:-1][pair]
        out[pair] = self.ranks.flat[at] == self.ranks.flat[at + 1]
        return out

    @property
    def has_ties(self) -> bool:
        return bool(self.tied.any())

    @property
    def has_token_counts(self) -> bool:
        if isinstance(self.n_tokens, _Ragged):
            return not bool(np.isnan(self.n_tokens.flat).any())
        return all(n is not None for counts in self.n_tokens for n in counts)

    def groups(self) -> dict[int, np.ndarray]:
        """Indices of the documents, grouped by number of responses."""
        sizes = self.sizes
        return {int(n): np.flatnonzero(sizes == n) for n in np.unique(sizes)}

    def array(self, name: str, index: Sequence[int] | np.ndarray) -> np.ndarray:
        """(len(index), n) float array of ``loglik``, ``n_tokens`` (NaN when
        unknown) or ``n_bytes`` for documents of one size; or ``ranks``
        (int), or ``alpha`` ((len(index),) float, NaN when None)."""
        index = np.asarray(index, dtype=np.int64)
        if name == "alpha":
            return self.alpha[index].astype(float)
        source = {"ranks": self.ranks, "loglik": self.loglik, "n_tokens": self.n_tokens, "n_bytes": self.n_bytes}[name]
        dtype = int if name == "ranks" else float
        sizes = self.sizes[index]
        if isinstance(source, _Ragged) and len(index) and (sizes == sizes[0]).all():
            return source.block(index, int(sizes[0])).astype(dtype)
        return np.array(
            [[math.nan if v is None else v for v in source[i]] for i in index], dtype=dtype
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
#: Bytes read at once by :func:`_blocks` (cut at the last newline): small enough to stay in
#: the CPU cache across the passes over them (UTF-8 check, line split, decoding).
_READ_BYTES = 1 << 20


def _open(path: Path):  # noqa: ANN202 - a binary file
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise RunError(f"{path}: no such file") from None
    except OSError as err:
        raise RunError(f"{path}: cannot be read ({err.strerror or err})") from None


def _blocks(path: Path) -> Iterator[tuple[bytes, int, bool]]:
    """(a block of whole lines, its byte offset, whether it is known to be
    UTF-8) of a file read in blocks of about
    :data:`_READ_BYTES`, each cut after a newline (the file's last line may
    lack one)."""
    at = 0
    with _open(path) as fh:
        while True:
            block = fh.read(_READ_BYTES)
            if not block:
                return
            cut = block.rfind(b"\n") + 1
            if 0 < cut < len(block):  # the block ends inside a line: read it again with the next block
                block = block[:cut]
                fh.seek(at + cut)
            elif not cut and len(block) == _READ_BYTES:  # one line longer than a block
                block += fh.readline()
            utf8 = block.isascii()
            if not utf8:
                try:
                    block.decode("utf-8")
                    utf8 = True
                except UnicodeDecodeError:  # the line holding it is worded by :func:`_line_text`
                    pass
            yield block, at, utf8
            at += len(block)


def _raw_lines(path: Path) -> Iterator[tuple[int, memoryview, bool, int, bool]]:
    """(1-based line number, its bytes without the newline (a view into its
    block), whether it is the file's last line without a newline, its byte
    offset, whether its block is known to be UTF-8) of every line of
    :func:`_blocks`, split on newline bytes only."""
    line_no = 0
    for block, at, utf8 in _blocks(path):
        view, start, size = memoryview(block), 0, len(block)
        while start < size:
            stop = block.find(b"\n", start)
            line_no += 1
            if stop < 0:
                yield line_no, view[start:], True, at + start, utf8
                return
            yield line_no, view[start:stop], False, at + start, utf8
            start = stop + 1


def _line_text(path: Path, line_no: int, raw: bytes | memoryview) -> str | None:
    """A raw line as text (a leading byte-order mark on line 1 and trailing
    CR dropped); None for a blank line; a line that is not UTF-8 is a
    :class:`RunError` naming it."""
    raw = without_bom(bytes(raw), line_no).rstrip(b"\r\n")
    if not raw.strip():
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RunError(f"{path}: {utf8_error(raw, err, line_no, _field_with_bad_byte(raw))}") from None


def _lines(path: Path) -> Iterator[tuple[int, str, bool, int]]:
    """(1-based line number, text, whether it is the file's last line without
    a newline, its byte offset) of each non-blank line, streamed. Lines are split on newline bytes only
    (a JSON string may hold U+2028); a line that is not UTF-8 is a
    :class:`RunError` naming it; a leading byte-order mark is dropped."""
    for line_no, raw, last, at, _ in _raw_lines(path):
        text = _line_text(path, line_no, raw)
        if text is not None:
            yield line_no, text, last, at


def _field_with_bad_byte(raw: bytes) -> str | None:
    """The field whose key or text holds a line's first byte that is not
    UTF-8, when the line is JSON; None otherwise."""
    try:
        return _field_with(json.loads(raw.decode("utf-8", "surrogateescape")), "")
    except (json.JSONDecodeError, RecursionError):
        return None


def _field_with(value: Any, where: str) -> str | None:
    """The first field (``doc.responses[1]``) of parsed JSON whose key or text
    holds an undecodable byte (a lone surrogate of ``surrogateescape``)."""
    if isinstance(value, str):
        return where if any("\udc80" <= ch <= "\udcff" for ch in value) else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        name = f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}".lstrip(".")
        found = name if isinstance(key, str) and _field_with(key, name) else _field_with(item, name)
        if found:
            return found
    return None


def _parsed(path: Path, line_no: int, line: str, last: bool) -> Any:
    """One samples line as JSON (``last``: the file's last line, without newline)."""
    try:
        return loads(line)
    except json.JSONDecodeError as err:
        hint = " (the file looks truncated)" if last else " (a corrupted samples file?)"
        raise RunError(f"{path}: line {line_no}: not valid JSON: {err.msg}{hint}") from None
    except RecursionError:
        raise RunError(f"{path}: line {line_no}: JSON nested too deeply") from None


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


def _first_kind(path: Path) -> str:
    """:func:`_kind` of a samples file's first line; ``empty`` for a file without one."""
    for line_no, line, last, _ in _lines(path):
        return _kind(_parsed(path, line_no, line, last))
    return "empty"


def _not_rankacc(path: Path, task: str, kind: str) -> RunError:
    """Why a samples file of ``kind`` (:func:`_first_kind`) cannot be analysed."""
    if kind == "empty":
        return RunError(f"{path}: holds no samples (an empty or interrupted run?)")
    if kind == "predict_only":
        return RunError(f"{path}: task '{task}' was run with lm_eval --predict_only, so its samples carry no "
                        "scores: rerun lm_eval without --predict_only (with --log_samples)")
    return RunError(f"{path}: task '{task}' is not a rankacc task (its samples carry no rankacc 'scores')")


# ----------------------------------------------------------------- validating one samples line
class _Invalid(Exception):
    """A field of a samples line the analyses cannot use; the message names the field."""


def _shown(value: Any) -> str:
    """A value as JSON, on one line, at most 40 characters."""
    text = json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= 40 else text[:39] + "\u2026"


#: What an element of each per-response list may be: (description, test). Integers
#: stop at 2**53 (exact as floats); booleans are never numbers.
_MAX_INT = 2**53
_RANK = ("an integer >= 1", lambda v: type(v) is int and 1 <= v <= _MAX_INT)
_COUNT = ("a positive integer", lambda v: type(v) is int and 1 <= v <= _MAX_INT)
_COUNT_OR_NULL = ("a positive integer or null (unknown)", lambda v: v is None or _COUNT[1](v))
_REAL = ("a number (NaN and Infinity allowed)",
         lambda v: type(v) is float or (type(v) is int and abs(v) <= sys.float_info.max))
_TEXT = ("a string", lambda v: isinstance(v, str))
_MISSING = object()


def _elements(values: list, field: str, rule: tuple[str, Callable[[Any], bool]]) -> list:
    description, ok = rule
    for i, value in enumerate(values):
        if not ok(value):
            raise _Invalid(f"field '{field}[{i}]': expected {description}, got {_shown(value)}")
    return values


def _per_response(container: dict, key: str, where: str, n: int, rule: tuple, lead: str,
                  default: Any = _MISSING) -> list:
    """``container[key]``: a list of one valid value per response (``lead`` opens the error)."""
    field, value = f"{where}.{key}", container.get(key, default)
    if value is _MISSING:
        raise _Invalid(f"{lead} (field '{field}' is missing)")
    if not isinstance(value, list) or len(value) != n:
        got = f"{len(value)} value(s)" if isinstance(value, list) else _shown(value)
        raise _Invalid(f"{lead} (field '{field}': {got} for {n} responses)")
    return _elements(value, field, rule)


def _valid_doc(doc: Any) -> int:
    """Check the document of a samples line; its number of responses."""
    if not isinstance(doc, dict):
        raise _Invalid(f"field 'doc': expected an object, got {_shown(doc)}")
    for key in ("id", "prompt", "responses", "ranks"):
        if key not in doc:
            raise _Invalid(f"doc has no '{key}'")
    if type(doc["id"]) not in (str, int) or doc["id"] == "":
        raise _Invalid(f"field 'doc.id': expected a non-empty string or an integer, got {_shown(doc['id'])}")
    if not isinstance(doc["prompt"], str):
        raise _Invalid(f"field 'doc.prompt': expected a string, got {_shown(doc['prompt'])}")
    lead = "doc needs >= 2 responses and one integer rank per response"
    responses = doc["responses"]
    if not isinstance(responses, list) or len(responses) < 2:
        raise _Invalid(f"{lead} (field 'doc.responses': {_shown(responses)})")
    _elements(responses, "doc.responses", _TEXT)
    _per_response(doc, "ranks", "doc", len(responses), _RANK, lead)
    alpha = doc.get("alpha")
    if alpha is not None and not (_REAL[1](alpha) and 0.0 <= alpha <= 1.0):
        raise _Invalid(f"field 'doc.alpha': expected a share in [0, 1] or null, got {_shown(alpha)}")
    return len(responses)


def _valid_sample(rec: Any) -> tuple[list[float] | None, list[int | None], list[int]]:
    """Check every field of a samples line the analyses read: the document
    (id, prompt, responses, ranks, alpha), ``doc_hash`` and ``scores``; its
    (loglik, n_tokens, n_bytes), loglik None for a document lm-eval dropped
    (every log-likelihood null: a response longer than the model's window).
    Raises :class:`_Invalid` naming the field."""
    if not isinstance(rec, dict):
        raise _Invalid("not a JSON object")
    n = _valid_doc(rec.get("doc"))
    doc_hash = rec.get("doc_hash")
    if not isinstance(doc_hash, str) or not doc_hash:
        raise _Invalid(f"no 'doc_hash' (field 'doc_hash': expected a non-empty string, got {_shown(doc_hash)})")
    scores = rec.get("scores")
    if not isinstance(scores, dict):
        raise _Invalid(f"field 'scores': expected an object, got {_shown(scores)}")
    lead = f"scores need loglik, n_tokens and n_bytes for each of the {n} responses"
    dropped = scores.get("loglik") == [None] * n
    loglik = None if dropped else _per_response(scores, "loglik", "scores", n, _REAL, lead)
    n_tokens = _per_response(scores, "n_tokens", "scores", n, _COUNT_OR_NULL, lead, default=[None] * n)
    n_bytes = _per_response(scores, "n_bytes", "scores", n, _COUNT, lead)
    return None if loglik is None else [float(x) for x in loglik], n_tokens, n_bytes


if _msgspec is not None:  # the checks of :func:`_valid_sample` msgspec can make while decoding
    from typing import Annotated

    _Count = Annotated[int, _msgspec.Meta(ge=1, le=_MAX_INT)]
    _Text = Annotated[str, _msgspec.Meta(min_length=1)]

    class _FastDoc(_msgspec.Struct):
        """The fields of ``doc`` the analyses read, with their JSON types (others skipped)."""

        id: _Text | int
        prompt: str
        responses: Annotated[list[str], _msgspec.Meta(min_length=2)]
        ranks: list[_Count]
        alpha: Annotated[float, _msgspec.Meta(ge=0.0, le=1.0)] | None = None

    class _FastScores(_msgspec.Struct):
        loglik: list[float | None]
        n_bytes: list[_Count]
        n_tokens: list[_Count | None] | _msgspec.UnsetType = _msgspec.UNSET

    class _FastRecord(_msgspec.Struct):
        doc: _FastDoc
        doc_hash: _Text
        scores: _FastScores

    _FAST_DECODE = _msgspec.json.Decoder(_FastRecord).decode
    _FAST_ERRORS: tuple = (_msgspec.DecodeError, _msgspec.ValidationError)
    _UNSET = _msgspec.UNSET
else:  # pragma: no cover
    _FAST_DECODE = None
    _FAST_ERRORS, _UNSET = (), None


def _fast_sample(line: bytes | memoryview) -> tuple | None:
    """A samples line that passes every check of :func:`_valid_sample`, as
    (doc id, doc_hash, alpha, ranks, loglik or None (dropped), n_tokens,
    n_bytes), decoded by msgspec (types and ranges checked while decoding,
    the texts' neighbours (arguments, resps, ...) skipped); None for any line
    it cannot vouch for (then the reference path :func:`_sample` reads it and
    words the error)."""
    try:
        rec = _FAST_DECODE(line)
    except _FAST_ERRORS:
        return None
    doc, scores = rec.doc, rec.scores
    loglik, n_tokens = scores.loglik, scores.n_tokens
    n = len(doc.responses)
    if n_tokens is _UNSET:
        n_tokens = [None] * n
    if not len(doc.ranks) == len(loglik) == len(scores.n_bytes) == len(n_tokens) == n:
        return None
    if None in loglik:
        if loglik.count(None) != n:
            return None
        loglik = None
    return doc.id, rec.doc_hash, doc.alpha, doc.ranks, loglik, n_tokens, scores.n_bytes


def _sample_fields(path: Path, line_no: int, raw: bytes | memoryview, last: bool, utf8: bool, task: str) -> tuple | None:
    """The checked fields of one raw samples line as :func:`_fast_sample`
    gives them (unknown token counts as NaN); None for a blank line. By
    msgspec where installed and it vouches for the line, else by :func:`_sample`."""
    fields = None
    if _FAST_DECODE is not None and utf8 and line_no > 1 and raw[:1] == b"{":  # line 1 tells the file's kind
        fields = _fast_sample(raw)
    if fields is None:
        line = _line_text(path, line_no, raw)
        if line is None:
            return None
        rec, (loglik, n_tokens, n_bytes) = _sample(path, line_no, line, last, task)
        doc = rec["doc"]
        fields = doc["id"], rec["doc_hash"], doc.get("alpha"), doc["ranks"], loglik, n_tokens, n_bytes
    if None in fields[5]:
        return *fields[:5], [math.nan if v is None else v for v in fields[5]], fields[6]
    return fields


def _sample(path: Path, line_no: int, line: str, last: bool, task: str) -> tuple[dict[str, Any], tuple]:
    """One samples line: its record and its checked (loglik, n_tokens, n_bytes);
    anything else is a :class:`RunError` naming file, line and field."""
    rec = _parsed(path, line_no, line, last)
    kind = _kind(rec)
    if line_no == 1 and kind != "rankacc" and (kind == "predict_only" or isinstance(rec, dict) and "resps" in rec):
        raise _not_rankacc(path, task, kind)
    try:
        return rec, _valid_sample(rec)
    except _Invalid as err:
        raise RunError(f"{path}: line {line_no}: {err}") from None


def _check_count(ts: TaskSamples) -> None:
    """The number of documents against the number lm-eval scored (its results file, when beside)."""
    results = results_data_for(ts.path)
    expected = (((results or {}).get("n-samples") or {}).get(ts.task) or {}).get("effective")
    if isinstance(expected, int) and expected != len(ts) + len(ts.dropped):
        raise RunError(f"{ts.path}: holds {len(ts) + len(ts.dropped)} documents but lm-eval scored {expected} in "
                       "that run (a truncated file?)")


class _Columns:
    """The checked fields of the documents of a samples file, packed into
    compact arrays every :data:`_PACK_DOCS` documents (:class:`_Ragged` at
    the end), so no Python list of all their numbers is kept."""

    _PACK_DOCS = 1 << 14
    _NAMES = ("ranks", "loglik", "n_tokens", "n_bytes")

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.hashes: list[str] = []
        self.dropped: list[str] = []
        self.chunks: dict[str, list[np.ndarray]] = {}
        self.pending: list[tuple] = []  # (id, offset, fields) of documents not packed yet

    def add(self, doc_id: str, at: int, fields: tuple) -> None:
        """One document: (id, doc_hash, alpha, ranks, loglik or None (dropped), n_tokens (None as NaN), n_bytes)."""
        if fields[4] is None:
            self.dropped.append(doc_id)
            return
        self.pending.append((doc_id, at, fields))
        if len(self.pending) >= self._PACK_DOCS:
            self._pack()

    def _put(self, name: str, values: np.ndarray) -> None:
        self.chunks.setdefault(name, []).append(values)

    def _pack(self) -> None:
        pending, self.pending = self.pending, []
        if not pending:
            return
        self.ids += [p[0] for p in pending]
        self.hashes += [p[2][1] for p in pending]
        self._put("offsets", np.array([p[1] for p in pending], dtype=np.int64))
        self._put("alpha", np.array([p[2][2] for p in pending], dtype=np.float64))  # None -> NaN
        for j, name in enumerate(self._NAMES, start=3):
            lists = [p[2][j] for p in pending]
            dtype = np.float64 if name in ("loglik", "n_tokens") else np.int64
            sizes = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
            if (sizes == sizes[0]).all():  # one size: numpy converts the nested lists at once
                flat = np.array(lists, dtype=dtype).reshape(-1)
            else:
                flat = np.fromiter(chain.from_iterable(lists), dtype=dtype, count=int(sizes.sum()))
            self._put(f"{name}.sizes", sizes)
            self._put(name, flat)

    def _joined(self, name: str, dtype: type) -> np.ndarray:
        return np.concatenate(self.chunks[name]) if name in self.chunks else np.zeros(0, dtype=dtype)

    def task_samples(self, task: str, path: Path) -> TaskSamples:
        self._pack()
        ragged = {name: _Ragged(self._joined(name, np.float64 if name in ("loglik", "n_tokens") else np.int64),
                                np.concatenate([[0], np.cumsum(self._joined(f"{name}.sizes", np.int64))]),
                                nullable=name == "n_tokens")
                  for name in self._NAMES}
        return TaskSamples(task, path, self.ids, self.hashes, [], ragged["loglik"], ragged["n_tokens"],
                           ragged["n_bytes"], self.dropped, ragged["ranks"], self._joined("alpha", np.float64),
                           self._joined("offsets", np.int64))


def read_samples(path: str | Path, task: str | None = None) -> TaskSamples:
    """Read one ``samples_<task>_<ts>.jsonl`` of a rankacc task.

    Raises :class:`RunError` for an unreadable, empty, truncated or malformed
    file (any field the analyses read, see the module docstring), duplicate
    document ids, a ``--predict_only`` run, or a task that is not a rankacc
    task. Documents lm-eval dropped as too long are left out and listed in
    ``dropped``. When the results file of the same run is beside it, the
    number of documents is checked against the number lm-eval scored.
    """
    path = Path(path)
    task = task or _task_of(path)
    columns = _Columns()
    seen: dict[str, int] = {}
    with no_cyclic_gc():
        for line_no, raw, last, at, utf8 in _raw_lines(path):
            fields = _sample_fields(path, line_no, raw, last, utf8, task)
            if fields is None:
                continue
            doc_id = str(fields[0])
            if doc_id in seen:
                raise RunError(f"{path}: line {line_no}: document id {doc_id!r} already on line {seen[doc_id]}")
            seen[doc_id] = line_no
            columns.add(doc_id, at, fields)
    del seen
    ts = columns.task_samples(task, path)
    ts.docs = _Docs(ts)
    if not ts.ids:
        raise _not_rankacc(path, task, "empty") if not ts.dropped else RunError(
            f"{path}: lm-eval dropped all {len(ts.dropped)} documents (a response longer than the model's "
            "window): nothing to analyse")
    _check_count(ts)
    return ts


def dropped_note(ts: TaskSamples) -> str | None:
    """A note counting the documents lm-eval dropped (``too_long``), left out of every analysis."""
    if not ts.dropped:
        return None
    return (f"{ts.task}: {len(ts.dropped)} document(s) dropped by lm-eval (a response longer than the model's "
            f"window, metric too_long), left out: {_examples(ts.dropped)}")


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
    return Run(path, path.parent, _label(path.parent, results), {ts.task: ts}, list(filter(None, [dropped_note(ts)])))


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
        kind = _first_kind(p)
        if kind == "other":
            skipped.append(task)
            continue
        if kind != "rankacc":
            raise _not_rankacc(p, task, kind)
        loaded[task] = read_samples(p, task)
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


#: Samples bytes (all the runs to read together) from which :func:`map_in_processes`
#: reads each run in its own process; below it, starting processes costs more than it saves.
PARALLEL_BYTES = 256 << 20


def samples_bytes(path: Path) -> int:
    """Bytes of the samples files a run path names, or a folder holds (0 when unknown)."""
    try:
        files = [path] if path.is_file() else path.rglob("samples_*.jsonl")
        return sum(f.stat().st_size for f in files)
    except OSError:
        return 0


def map_in_processes(function: Callable[[Any], Any], items: Sequence[Any], nbytes: int) -> list[Any]:
    """``[function(item) for item in items]``, in order: in one forked
    process per item (at most the CPU count) where there are two or more
    items, the files they read hold :data:`PARALLEL_BYTES` (``nbytes``) or
    more and the platform forks; else in this process. ``function`` must be
    a module-level function; its errors reach the caller unchanged."""
    workers = min(len(items), os.cpu_count() or 1)
    if workers < 2 or nbytes < PARALLEL_BYTES or "fork" not in multiprocessing.get_all_start_methods():
        return [function(item) for item in items]
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(function, items))


def _load_run_args(args: tuple) -> Run:
    return load_run(*args)


def as_runs(runs: Sequence[Run | str | Path], tasks: str | Sequence[str] | None = None,
            require_match: Sequence[bool] | None = None) -> list[Run]:
    """:func:`as_run` of each run, in order (``require_match`` per run,
    default true for the first, false for the others); the runs still to
    read are read in parallel processes where :func:`map_in_processes`
    says so (the same documents, checks and errors)."""
    require = list(require_match) if require_match is not None else [True] + [False] * (len(runs) - 1)
    todo = [k for k, run in enumerate(runs) if not isinstance(run, Run)]
    nbytes = sum(samples_bytes(Path(runs[k]).expanduser()) for k in todo)
    loaded = map_in_processes(_load_run_args, [(runs[k], tasks, require[k]) for k in todo], nbytes)
    out: list[Any] = list(runs)
    for k, run in zip(todo, loaded):
        out[k] = run
    return out


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
    if ref.ids == other.ids and ref.hashes == other.hashes:  # the same documents in the same order: no index built
        return np.arange(len(ref))
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
    hint += "".join(f"; {name} dropped {len(ts.dropped)} as too long for its window" for name, ts in
                    ((ref_name, ref), (other_name, other)) if ts.dropped)
    raise RunError(
        f"{ref.task}: {ref_name} ({ref.path.name}, {len(ref)} docs) and {other_name} ({other.path.name}, "
        f"{len(other)} docs) score different documents: {'; '.join(parts)}{hint}"
    )
