"""The rows a task reads, and where each came from: the readers of one
source of rows (a file held in memory, an Arrow table or ``datasets``
split, a streamed .jsonl file: :class:`RowSource`), the rows of all of them
in order (:class:`Rows`) and a selection of them read again
(:class:`Selection`). Converters iterate rows and report indices; these
turn an index back into ``<file>: line N``."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Protocol


class RowSource(Protocol):
    """What :class:`Rows` needs of one source of rows (:class:`FileRows`,
    :class:`TableRows`, :class:`lm_eval_rankacc.loading.files.DataFile`):
    its label in messages, how many rows a pass has read, the name of row
    ``i`` (``line 12``, ``record 3``, ``row 7``), the rows in order, and the
    rows at some indices read again."""

    label: str

    @property
    def count(self) -> int: ...

    def name(self, i: int) -> str: ...

    def __iter__(self) -> Iterator[Any]: ...

    def take(self, indices: list[int]) -> Iterable[Any]: ...


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

    def __init__(self, parts: list[RowSource]):
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
