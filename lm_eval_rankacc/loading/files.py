"""Local data files in a dataset's hub schema: which files ``data_files``
names, and reading one (.json, .jsonl, either gzipped, or .parquet) with
every problem a :class:`TaskDataError` naming the task and the file. Big
.jsonl files stream (:class:`DataFile`); a file whose bytes repeat an
earlier one's is read once, with a note."""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import json
import logging
import os
import zlib
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lm_eval_rankacc.core.errors import TaskDataError
from lm_eval_rankacc.core.jsontext import REFUSED, fast_loads, json_error, loads, utf8_error, without_bom
from lm_eval_rankacc.loading.rows import FileRows, Rows, TableRows

log = logging.getLogger("lm-eval")


#: The file types ``data_files`` and the mirror may hold.
SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".parquet")


def _file_key(path: Path) -> Any:
    """What makes two paths the same file: device and inode (links, ``..``,
    symlinks), or the resolved path where the system has no inodes."""
    stat = path.stat()
    return (stat.st_dev, stat.st_ino) if stat.st_ino else os.path.realpath(path)


def resolve_data_files(task: str, data_files: Any) -> list[Path]:
    """Paths matched by ``data_files`` (a path or glob, or a list of them); an
    error if one matches nothing. A file matched again (listed twice, by
    overlapping globs, through a link) is read once, with a note naming it."""
    patterns = data_files if isinstance(data_files, (list, tuple)) else [data_files]
    if not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise TaskDataError(
            f"{task}: metadata 'data_files' must be a path or glob string (or a list of them), got {data_files!r}"
        )
    paths: dict[Any, Path] = {}
    for pattern in patterns:
        matched = sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
        files = [Path(m) for m in matched if Path(m).is_file()]
        if not files:
            raise TaskDataError(f"{task}: data_files {pattern!r} matches no file")
        for path in files:
            first = paths.setdefault(_file_key(path), path)
            if first is not path:
                again = "more than once" if first == path else f"again as {path}"
                log.warning("%s: data_files names %s %s: read once", task, first, again)
    return list(paths.values())


def _gunzip_error(err: BaseException) -> str:
    return f"not a readable gzip file ({err or type(err).__name__})"


def _gunzip(fail: Callable[[str], TaskDataError], raw: bytes) -> bytes:
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:  # not gzip, truncated, corrupt
        raise fail(_gunzip_error(err)) from None


def _decode(fail: Callable[[str], TaskDataError], raw: bytes) -> str:
    """UTF-8 text; a byte-order mark at the start is accepted."""
    raw = without_bom(raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise fail(utf8_error(raw, err)) from None


def _jsonl(fail: Callable[[str], TaskDataError], label: str, text: str) -> FileRows:
    records, numbers = [], []
    for line_no, line in enumerate(io.StringIO(text, newline="\n"), start=1):
        if line.strip():
            try:
                records.append(loads(line))
            except (ValueError, RecursionError) as err:
                raise fail(f"line {line_no}: not valid JSON ({json_error(err)})") from None
            numbers.append(line_no)
    return FileRows(label, records, "line", numbers)


def _json(fail: Callable[[str], TaskDataError], label: str, text: str) -> FileRows:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        line = f"line {err.lineno}: " if isinstance(err, json.JSONDecodeError) else ""
        raise fail(f"{line}not valid JSON ({json_error(err)})") from None
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) == 1:
            data = lists[0]
    if not isinstance(data, list):
        raise fail("expected a JSON list of records (or an object holding one list)")
    return FileRows(label, data, "record")


def _parquet(fail: Callable[[str], TaskDataError], label: str, source: Any) -> TableRows:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return TableRows(label, pq.read_table(pa.BufferReader(source) if isinstance(source, bytes) else source))
    except (pa.ArrowException, OSError, ValueError) as err:
        raise fail(f"not a readable parquet file ({err})") from None


def data_suffix(path: Path) -> str | None:
    name = path.name.lower()
    return next((s for s in SUFFIXES if name.endswith(s)), None)


def _check_suffix(task: str, path: Path, label: str) -> None:
    if data_suffix(path) is None:
        raise TaskDataError(
            f"{task}: {label}: not a data file: expected .json, .jsonl (either gzipped) or .parquet"
        )


def _unreadable(task: str, label: str, err: OSError) -> TaskDataError:
    return TaskDataError(f"{task}: {label}: cannot be read ({err.strerror or err})")


def _file_bytes(task: str, path: Path, label: str) -> bytes:
    _check_suffix(task, path, label)
    try:
        return path.read_bytes()
    except OSError as err:
        raise _unreadable(task, label, err) from None


def read_records(task: str, path: Path, label: str | None = None, raw: bytes | None = None) -> FileRows | TableRows:
    """Records of one local file in a hub schema, read whole: .json (a list,
    or an object with one list), .jsonl, either gzipped, or .parquet. Every
    problem with the file is a TaskDataError naming the task and the file
    (``label``). Big .jsonl files are streamed instead (:class:`JsonlFile`)."""
    label = label or str(path)

    def fail(message: str) -> TaskDataError:
        return TaskDataError(f"{task}: {label}: {message}")

    raw = _file_bytes(task, path, label) if raw is None else raw
    suffix = data_suffix(path)
    if suffix == ".parquet":
        return _parquet(fail, label, raw)
    if suffix.endswith(".gz"):
        raw = _gunzip(fail, raw)
    text = _decode(fail, raw)
    return _jsonl(fail, label, text) if suffix.startswith(".jsonl") else _json(fail, label, text)


class DataFile:
    """One file of ``data_files`` (or of the mirror), read when a pass
    reaches it, with the checks of a whole-file read in the same order: a
    data file's suffix, readable, not the same bytes as an earlier file (then
    skipped with a note), gzip, UTF-8, JSON. A .jsonl file (gzipped or not)
    is streamed: a record is parsed when the converter asks for it and not
    kept, only its line number; :meth:`take` re-reads chosen records. Other
    types are read whole (:func:`read_records`)."""

    unit = "line"

    def __init__(self, task: str, path: Path, earlier: list["DataFile"]):
        self.task, self.path, self.label, self.earlier = task, path, str(path), earlier
        self.skipped = False
        self.numbers: array | None = None  # line numbers, filled by the first pass
        self.whole: FileRows | TableRows | None = None  # files read whole
        self._digest: str | None = None
        self._size: int | None = None

    def fail(self, message: str) -> TaskDataError:
        return TaskDataError(f"{self.task}: {self.label}: {message}")

    @property
    def count(self) -> int:
        if self.whole is not None:
            return self.whole.count
        return len(self.numbers) if self.numbers is not None else 0

    def name(self, i: int) -> str:
        return self.whole.name(i) if self.whole is not None else f"line {self.numbers[i]}"

    @property
    def streamed(self) -> bool:
        return data_suffix(self.path) in (".jsonl", ".jsonl.gz")

    # --------------------------------------------------------- opening
    def size(self) -> int:
        if self._size is None:
            try:
                self._size = self.path.stat().st_size
            except OSError as err:
                raise _unreadable(self.task, self.label, err) from None
        return self._size

    def digest(self) -> str:
        if self._digest is None:
            sha = hashlib.sha256()
            try:
                with open(self.path, "rb") as handle:
                    for chunk in iter(lambda: handle.read(1 << 20), b""):
                        sha.update(chunk)
            except OSError as err:
                raise _unreadable(self.task, self.label, err) from None
            self._digest = sha.hexdigest()
        return self._digest

    def _open(self) -> bool:
        """The checks before reading; False when the file repeats an earlier one."""
        _check_suffix(self.task, self.path, self.label)
        try:
            open(self.path, "rb").close()
        except OSError as err:
            raise _unreadable(self.task, self.label, err) from None
        same = [f for f in self.earlier if not f.skipped and f.size() == self.size()]
        first = next((f for f in same if f.digest() == self.digest()), None)
        if first is not None:
            log.warning("%s: %s has the same content as %s: read once", self.task, self.path, first.path)
            self.skipped = True
        return not self.skipped

    # --------------------------------------------------------- streaming
    def _raw_lines(self):
        """(line number, bytes) of each physical line; a broken gzip stream or
        an unreadable file is a TaskDataError, as from a whole-file read."""
        gz = self.path.name.lower().endswith(".gz")
        try:
            with (gzip.open(self.path, "rb") if gz else open(self.path, "rb")) as handle:
                for line_no, raw in enumerate(handle, start=1):
                    yield line_no, without_bom(raw, line_no)
        except (OSError, EOFError, zlib.error) as err:
            if gz and not isinstance(err, FileNotFoundError | PermissionError | IsADirectoryError):
                raise self.fail(_gunzip_error(err)) from None
            raise _unreadable(self.task, self.label, err) from None

    def _first_error(self, lines: Any, error: TaskDataError, json_error: bool) -> TaskDataError:
        """The error a whole-file read reports, given ``error`` at the current
        line: a gzip error anywhere comes first, then (for a JSON error) the
        first non-UTF-8 line."""
        for line_no, raw in lines:  # raises a gzip error further on
            if json_error:
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    error, json_error = self.fail(utf8_error(raw, err, line_no)), False
        return error

    def _records(self, wanted: set[int] | None = None):
        """(line number, record) of each non-blank line (only the lines in ``wanted``, when given)."""
        lines = self._raw_lines()
        for line_no, raw in lines:
            if wanted is not None and line_no not in wanted:
                continue
            record = fast_loads(raw)  # the common case: orjson takes the UTF-8 bytes as they are
            if record is not REFUSED:
                yield line_no, record
                continue
            try:  # a blank line, a line the checks below word, or one only json accepts
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise self._first_error(lines, self.fail(utf8_error(raw, err, line_no)), False) from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError) as err:
                error = self.fail(f"line {line_no}: not valid JSON ({json_error(err)})")
                raise self._first_error(lines, error, True) from None
            yield line_no, record

    def __iter__(self):
        if self.numbers is None and self.whole is None:  # the first pass
            if not self._open():
                self.numbers = array("q")
                return
            if not self.streamed:
                self.whole = read_records(self.task, self.path)
            else:
                self.numbers = array("q")
                for line_no, record in self._records():
                    self.numbers.append(line_no)
                    yield record
                return
        if self.whole is not None:
            yield from self.whole
        elif not self.skipped:
            yield from (record for _, record in self._records())

    def take(self, indices: list[int]):
        """The records at ``indices`` (sorted) of a file a pass has read."""
        if self.whole is not None:
            return self.whole.take(indices)
        return (record for _, record in self._records({self.numbers[i] for i in indices}))


def read_files(task: str, paths: list[Path]) -> Rows:
    """The rows of ``paths`` in order, each file read when a pass reaches it
    (:class:`DataFile`); a file whose bytes repeat an earlier one's is read once, with a note."""
    parts: list[DataFile] = []
    for path in paths:
        parts.append(DataFile(task, path, list(parts)))
    return Rows(parts)
