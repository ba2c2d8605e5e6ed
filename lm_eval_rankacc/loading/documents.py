"""A task's documents: the rows read (local ``data_files``, package data,
the ``RANKACC_DATA_DIR`` mirror or the pinned hub source), converted by the
source into the common schema, and the fixed sample (:func:`documents`).
No lm-eval: the evaluation tasks (:mod:`lm_eval_rankacc.lmeval.dataset`)
and training read documents through here alike.

Every file is read once (a file named again, or with the same bytes as an
earlier one, is skipped with a note), and every problem with it is a
:class:`TaskDataError` naming the task and the file. The loader keeps where
each row came from (:class:`Rows`): a converter's :class:`RowError` names an
index into the rows it got, and the loader reports it as
``<task>: <file>: line N: field 'x': message``.

Big splits are not held (docs/tasks.md, "Loading big splits"): .jsonl files
stream (:class:`DataFile`), hub splits and parquet stay Arrow tables
(:class:`TableRows`), and for a sample the rows are converted in two passes:
ids and drop counts from every row, then full documents from the sampled
rows only (:func:`documents`).
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import json
import logging
import os
import re
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any

from lm_eval_rankacc.core.errors import RowError, TaskDataError
from lm_eval_rankacc.core.jsontext import REFUSED, fast_loads, json_error, loads, no_cyclic_gc, utf8_error, without_bom
from lm_eval_rankacc.core.schema import RowConflict
from lm_eval_rankacc.sources import Conversion, HubDataset, HubFile, get_source

log = logging.getLogger("lm-eval")

#: Documents per task unless ``--metadata '{"sample_size": N}'`` (0 = all), as in the paper.
DEFAULT_SAMPLE_SIZE = 1000
DEFAULT_SEED = 0
#: Prompt and response are joined as prompt + " " + response (the task's target_delimiter).
JOIN = " "


# ----------------------------------------------------------------- options
def _check_int(task: str, key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TaskDataError(
            f"{task}: metadata '{key}' must be an integer >= {minimum}, got {value!r}"
        )
    return value


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


# ----------------------------------------------------------------- reading
#: The file types ``data_files`` and the mirror may hold.
SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".parquet")
#: Rows per batch when a table (parquet, a hub split) is turned into records.
BATCH_ROWS = 100



@dataclass
class FileRows:
    """The records of one file held in memory (.json, small package files),
    and how messages number them: ``unit`` ``line`` (.jsonl: the physical
    line, blank lines counted), ``record`` (a .json list) or ``row``;
    ``numbers`` holds each record's 1-based number where it is not its
    position + 1."""

    label: str
    records: list[Any]
    unit: str = "row"
    numbers: list[int] | None = None

    @property
    def count(self) -> int:
        return len(self.records)

    def name(self, i: int) -> str:
        return f"{self.unit} {self.numbers[i] if self.numbers is not None else i + 1}"

    def __iter__(self):
        return iter(self.records)

    def take(self, indices: list[int]):
        return (self.records[i] for i in indices)


class TableRows:
    """The rows of an Arrow table (a parquet file) or of a ``datasets`` split,
    kept in their compact (for the hub, memory-mapped) form and turned into
    records a batch at a time; numbered ``row N``."""

    unit = "row"

    def __init__(self, label: str, table: Any):
        self.label, self.table = label, table

    @property
    def count(self) -> int:
        return len(self.table)

    def name(self, i: int) -> str:
        return f"row {i + 1}"

    def __iter__(self):
        if hasattr(self.table, "to_batches"):  # a pyarrow Table
            for batch in self.table.to_batches(max_chunksize=BATCH_ROWS):
                yield from batch.to_pylist()
        elif hasattr(self.table, "iter"):  # a datasets.Dataset: its own formatting, in batches
            for batch in self.table.iter(batch_size=BATCH_ROWS):
                keys = list(batch)
                yield from (dict(zip(keys, values)) for values in zip(*batch.values()))
        else:
            yield from self.table

    def take(self, indices: list[int]):
        if hasattr(self.table, "to_batches"):
            return iter(self.table.take(indices).to_pylist())
        return (self.table[i] for i in indices)


class Rows:
    """The rows a task read, in order, and where each came from: converters
    iterate the Rows (records stream by, nothing is kept but line numbers)
    and report indices into them, :meth:`locate` turns an index back into
    ``<file>: line N``. ``light`` asks converters for document ids only
    (:func:`lm_eval_rankacc.sources.is_light`)."""

    def __init__(self, parts: list[Any]):
        self.parts = parts
        self.light = False
        self._live = None

    def __len__(self) -> int:
        """Rows read so far (all of them once a pass has ended)."""
        return sum(part.count for part in self.parts)

    def __iter__(self):
        self._live = (record for part in self.parts for record in part)
        return self._live

    def drain(self) -> None:
        """Read the rest of the pass a converter stopped: a broken file
        further on is reported before a bad row, as when files were read
        whole before conversion."""
        for _ in self._live or ():
            pass

    def select(self, indices: list[int]) -> "Selection":
        return Selection(self, indices)

    @property
    def where(self) -> str:
        return ", ".join(part.label for part in self.parts if not getattr(part, "skipped", False))

    def _part_of(self, index: int) -> tuple[int, int]:
        """(part, index within it) of row ``index``."""
        starts = list(accumulate((part.count for part in self.parts[:-1]), initial=0))
        k = bisect_right(starts, index) - 1
        while k > 0 and self.parts[k].count == 0:  # skipped or empty files hold no row
            k -= 1
        return k, index - starts[k]

    def locate(self, index: Any, near: Any = None) -> str:
        """``<file>: line N`` of row ``index``; the file left out when it is the file of row ``near``."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self):
            return f"{self.where}: row {index}"
        k, local = self._part_of(index)
        name = self.parts[k].name(local)
        if isinstance(near, int) and 0 <= near < len(self) and self._part_of(near)[0] == k:
            return name
        return f"{self.parts[k].label}: {name}"


class Selection:
    """Some rows of a :class:`Rows` (sorted indices), re-read from where they
    live; :meth:`numbered` gives each with its index in the whole input."""

    light = False

    def __init__(self, rows: Rows, indices: list[int]):
        self.rows, self.indices = rows, indices

    def numbered(self):
        by_part: dict[int, list[tuple[int, int]]] = {}
        for index in self.indices:
            k, local = self.rows._part_of(index)
            by_part.setdefault(k, []).append((index, local))
        for k, pairs in by_part.items():
            records = self.rows.parts[k].take([local for _, local in pairs])
            yield from zip((index for index, _ in pairs), records)

    def __iter__(self):
        return (record for _, record in self.numbered())


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


def _suffix(path: Path) -> str | None:
    name = path.name.lower()
    return next((s for s in SUFFIXES if name.endswith(s)), None)


def _check_suffix(task: str, path: Path, label: str) -> None:
    if _suffix(path) is None:
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
    suffix = _suffix(path)
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
        return _suffix(self.path) in (".jsonl", ".jsonl.gz")

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


#: A local mirror of the hub sources, for air-gapped machines: files in each
#: dataset's hub schema at ``$RANKACC_DATA_DIR/<source>/<split>.<ext>`` (for a
#: single-file source, ``<source>/<hub filename>``) are read instead of the hub.
MIRROR_ENV = "RANKACC_DATA_DIR"


def mirror_files(task: str, source: str, hub: HubDataset | HubFile, split: str) -> list[Path]:
    """The mirror's file for ``split`` (none without ``RANKACC_DATA_DIR``); an
    error when the folder holds several (``test.jsonl`` and ``test.parquet``
    would be the same rows twice)."""
    root = os.environ.get(MIRROR_ENV)
    if not root:
        return []
    folder = Path(root).expanduser() / source
    if isinstance(hub, HubFile):
        return [folder / hub.filename] if (folder / hub.filename).is_file() else []
    files = sorted(p for p in folder.glob(f"{split}.*") if p.is_file() and _suffix(p) is not None)
    if len(files) > 1:
        raise TaskDataError(
            f"{task}: {MIRROR_ENV} holds {len(files)} files for split {split!r} "
            f"({', '.join(str(p) for p in files)}): keep one"
        )
    return files


def read_hub(task: str, hub: HubDataset | HubFile, split: str) -> Rows:
    """Rows of the pinned hub source (needs network access to the hub or its cache)."""
    if isinstance(hub, HubFile):
        from huggingface_hub import hf_hub_download

        local = hf_hub_download(hub.repo, hub.filename, repo_type="dataset", revision=hub.revision)
        return Rows([read_records(task, Path(local), label=f"{hub.repo}/{hub.filename}")])
    import datasets

    data_files = list(hub.data_files) if isinstance(hub.data_files, tuple) else hub.data_files
    ds = datasets.load_dataset(
        hub.path, hub.name, data_dir=hub.data_dir, data_files=data_files,
        revision=hub.revision, split=split,
    )
    return Rows([TableRows(f"{hub.path} ({split})", ds)])


# ----------------------------------------------------------------- sampling
def sample_indices(n: int, sample_size: int, seed: int) -> list[int]:
    """The fixed subsample: the first ``sample_size`` of numpy's
    ``default_rng(seed).permutation(n)`` (the generator ``datasets`` uses for
    ``train_test_split``), returned in document order. 0 or >= n means all."""
    if sample_size == 0 or sample_size >= n:
        return list(range(n))
    import numpy as np

    return sorted(int(i) for i in np.random.default_rng(seed).permutation(n)[:sample_size])


def report_drops(task: str, n_rows: int, conversion: Conversion) -> None:
    for reason, count in sorted(conversion.dropped.items()):
        log.warning("%s: dropped %d of %d rows: %s", task, count, n_rows, reason)


_TASK_LINE = re.compile(r"""^task:[ \t]*["']?([^"'\s#]+)""", re.MULTILINE)


def task_name(config_source: Any) -> str:
    """The ``task:`` of the YAML file lm-eval loaded the task from (passed to
    the loader as ``config_source``), so ``dataset_kwargs`` need not repeat it;
    the file name if it has none, a generic name when there is no file."""
    if isinstance(config_source, str) and config_source:
        path = Path(config_source)
        try:
            match = _TASK_LINE.search(path.read_text(encoding="utf-8"))
        except OSError:
            match = None
        return match.group(1) if match else path.stem
    return "rankacc task"


def _task_hub(task: str, source: str, module: Any, options: dict[str, Any], data_files: Any):
    """(where the rows live, the mirror folder name): the source's pinned ``HUB``,
    or for a source whose location is a task option (``fields``) its ``task_hub``."""
    if not hasattr(module, "task_hub"):
        return module.HUB, source
    try:
        return module.task_hub(options, data_files), f"{source}/{task}"
    except ValueError as err:  # e.g. a missing field mapping
        raise TaskDataError(f"{task}: {err}") from None


def read_rows(task: str, hub: Any, mirror: str, split: str, data_files: Any) -> Rows:
    """The rows in the source's own schema, and where each came from:
    ``data_files``, data shipped with the package, the ``RANKACC_DATA_DIR``
    mirror, or the hub."""
    if data_files is not None:
        return read_files(task, resolve_data_files(task, data_files))
    if isinstance(hub, Path):  # data shipped with the package
        return Rows([read_records(task, hub, label=hub.name)])
    if files := mirror_files(task, mirror, hub, split):
        return read_files(task, files)
    return read_hub(task, hub, split)


def row_error_message(task: str, rows: Rows, err: RowError) -> str:
    """``<task>: <file>: line N: field 'x': message`` for a converter's RowError;
    a :class:`RowConflict` also names where the earlier row is."""
    message = f"{task}: {rows.locate(err.row)}: field '{err.field}': {err.message}"
    if isinstance(err, RowConflict):
        message += f" ({rows.locate(err.earlier, near=err.row)})"
    return message


def check_unique_ids(task: str, rows: Rows, conversion: Conversion) -> None:
    """An error naming the repeated document ids and the rows they come from."""
    seen: dict[str, list[int]] = {}
    for k, doc_id in enumerate(conversion.ids()):
        seen.setdefault(doc_id, []).append(k)
    repeated = [(doc_id, ks) for doc_id, ks in seen.items() if len(ks) > 1]
    if not repeated:
        return
    located = len(conversion.rows) == len(conversion.docs)

    def where(ks: list[int]) -> str:
        names = [rows.locate(conversion.rows[k]) if located else f"document {k + 1}" for k in ks[:3]]
        return ", ".join(names) + (f" and {len(ks) - 3} more" if len(ks) > 3 else "")

    listed = "; ".join(f"{doc_id!r} ({where(ks)})" for doc_id, ks in repeated[:3])
    more = f"; and {len(repeated) - 3} more ids" if len(repeated) > 3 else ""
    raise TaskDataError(f"{task}: document ids are not unique: {listed}{more}")


def _convert(task: str, module: Any, rows: Rows, split: str, options: dict[str, Any]) -> Conversion:
    """The documents of ``rows`` in the common schema (only their ids when
    ``rows.light``); drops reported, ids checked unique."""
    try:
        conversion = module.convert(rows, split, **options)
    except RowError as err:
        rows.drain()  # a broken file further on is reported first
        raise TaskDataError(row_error_message(task, rows, err)) from None
    except TaskDataError:
        raise  # a broken file, already named
    except ValueError as err:  # a bad converter option (form, ties), checked before any row is read
        raise TaskDataError(f"{task}: {err}") from None
    report_drops(task, len(rows), conversion)
    if not conversion.docs:
        raise TaskDataError(f"{task}: {rows.where}: no documents left after conversion")
    check_unique_ids(task, rows, conversion)
    return conversion


def _sampled_documents(task: str, module: Any, rows: Rows, split: str, options: dict[str, Any],
                       first: Conversion, keep: list[int]) -> list[dict[str, Any]]:
    """The documents ``keep`` of a light first pass, built by converting only
    the rows they come from (a document's ``members``, else its row), which
    keep their indices; every such row survived the drop rules, so the
    converter drops none of them. Checked against the first pass's ids."""
    needed = sorted({r for k in keep for r in first.members.get(k, [first.rows[k]])})
    try:
        docs = module.convert(rows.select(needed), split, **options).docs
    except RowError as err:  # not expected: these rows passed the first pass
        raise TaskDataError(row_error_message(task, rows, err)) from None
    ids = first.ids()
    if [d["id"] for d in docs] != [ids[k] for k in keep]:
        raise TaskDataError(
            f"{task}: {rows.where}: the sampled documents differ from the first pass "
            "(the rows changed while they were read?)"
        )
    return docs


def documents(
    *,
    source: str,
    task: str | None = None,
    split: str = "test",
    sample_size: Any = DEFAULT_SAMPLE_SIZE,
    seed: Any = DEFAULT_SEED,
    data_files: Any = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """A task's documents in the common schema: the rows read (hub, local
    ``data_files`` or mirror), converted by the source, and the fixed sample.

    ``options`` (the rest of ``dataset_kwargs`` and ``--metadata``) go to the
    source's converter, which takes the keys it knows (e.g. ``ties``) and
    ignores the others (lm-eval also passes every ``--model_args`` key).

    For a sample of a source with ``TWO_PASS``, rows are converted twice:
    every row streams through the converter, which validates it and applies
    the drop rules but keeps only document ids; the sample is drawn on them;
    then only the sampled documents' rows are read again and converted in
    full. Same documents and drop counts as one full conversion, in memory
    bounded by the ids (docs/tasks.md, "Loading big splits")."""
    task = task or task_name(options.get("config_source"))
    sample_size = _check_int(task, "sample_size", sample_size, 0)
    seed = _check_int(task, "seed", seed, 0)
    module = get_source(source)
    hub, mirror = _task_hub(task, source, module, options, data_files)
    rows = read_rows(task, hub, mirror, split, data_files)
    rows.light = sample_size != 0 and getattr(module, "TWO_PASS", False) is True
    with no_cyclic_gc():
        conversion = _convert(task, module, rows, split, options)
    n = len(conversion.docs)
    keep = sample_indices(n, sample_size, seed)
    if len(keep) < n:
        log.info(
            "%s: scoring a fixed sample of %d of %d documents (seed %d); "
            "--metadata '{\"sample_size\": 0}' scores all",
            task, len(keep), n, seed,
        )
    elif sample_size > n:
        log.info("%s: sample_size %d is more than the %d documents: all %d are used", task, sample_size, n, n)
    if rows.light:
        return _sampled_documents(task, module, rows, split, options, conversion, keep)
    return [conversion.docs[i] for i in keep]
