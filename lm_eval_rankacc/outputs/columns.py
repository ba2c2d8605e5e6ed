"""The compact column store of one task's samples: :class:`TaskSamples`,
its numbers held as :class:`_Ragged` arrays, its documents' texts read back
from their lines when asked (:class:`_Docs`), and :class:`Columns`, which
packs the checked lines of a samples file into it; :func:`packed_arrays` and
:func:`packed` take a packed one apart into plain arrays and back (the
samples cache)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from lm_eval_rankacc.core.jsontext import loads
from lm_eval_rankacc.outputs.lines import line_at

__all__ = ["Columns", "Strings", "TaskSamples", "packed", "packed_arrays"]


class _Ragged(Sequence):
    """One list of numbers per document, held as one flat array and each
    document's start: ``flat[starts[k]:starts[k + 1]]``. Elements come back
    as Python numbers; with ``nullable``, NaN comes back as None (unknown)."""

    def __init__(self, flat: np.ndarray, starts: np.ndarray, nullable: bool = False):
        self.flat, self.starts, self.nullable = flat, starts, nullable
        self._sizes: np.ndarray | None = None
        self._one_size: int | None = None  # every document's number of values, where they all hold as many

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
        """Each document's number of values (computed once; read-only)."""
        if self._sizes is None:
            self._sizes = np.diff(self.starts)
            self._sizes.flags.writeable = False
            if len(self._sizes) and (self._sizes == self._sizes[0]).all():
                self._one_size = int(self._sizes[0])
        return self._sizes

    def block(self, index: Sequence[int] | np.ndarray, n: int) -> np.ndarray:
        """(len(index), n) array of documents that all hold ``n`` values (a
        view of the flat array when ``index`` is every document in order: not
        to be written to)."""
        index = np.asarray(index, dtype=np.int64)
        self.sizes()
        if self._one_size == n and n:  # one shape for all: rows of the flat array, no gather of single values
            rows = self.flat.reshape(-1, n)
            return rows if np.array_equal(index, np.arange(len(rows))) else rows[index]
        at = self.starts[index]
        return self.flat[at[:, None] + np.arange(n)]

    @classmethod
    def of(cls, lists: Iterable[Sequence], nullable: bool = False) -> _Ragged:
        sizes, flat = [], []
        for values in lists:
            sizes.append(len(values))
            flat += [math.nan if v is None else v for v in values]
        dtype = float if nullable or any(type(v) is float for v in flat) else np.int64
        return cls(np.array(flat, dtype=dtype), np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]), nullable)


class Strings(Sequence):
    """``n`` strings held as their UTF-8 bytes joined by NUL (a uint8 array,
    none of the strings holding a NUL), made Python strings only when one is
    asked for: equal runs compare their bytes at once (the samples cache's ids
    and hashes)."""

    def __init__(self, joined: np.ndarray, n: int):
        self.joined, self._n = joined, n
        self._values: list[str] | None = None
        self._ends: np.ndarray | None = None  # where each string ends (its NUL, or the end)

    def _list(self) -> list[str]:
        if self._values is None:
            values = self.joined.tobytes().decode("utf-8", "surrogatepass").split("\0") if self._n else []
            if len(values) != self._n:
                raise ValueError(f"{len(values)} strings where {self._n} were written")
            self._values = values
        return self._values

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, k):  # type: ignore[override]
        if self._values is not None or not isinstance(k, (int, np.integer)):
            return self._list()[k]
        if k < 0:
            k += self._n
        if not 0 <= k < self._n:
            raise IndexError(k)
        if self._ends is None:  # one string asked for: found by the NULs, the rest left as bytes
            self._ends = np.append(np.flatnonzero(self.joined == 0), len(self.joined))
        start = int(self._ends[k - 1]) + 1 if k else 0
        return self.joined[start:int(self._ends[k])].tobytes().decode("utf-8", "surrogatepass")

    def __iter__(self) -> Iterator[str]:
        return iter(self._list())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Strings):
            return self._n == other._n and np.array_equal(self.joined, other.joined)
        return isinstance(other, (list, tuple, Sequence)) and self._list() == list(other)

    __hash__ = None  # type: ignore[assignment]


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
    ids: Sequence[str]  # a list, or :class:`Strings` from the samples cache
    hashes: Sequence[str]
    docs: Sequence[Mapping[str, Any]]
    loglik: Sequence[list[float]]
    n_tokens: Sequence[list[int | None]]
    n_bytes: Sequence[list[int]]
    dropped: list[str] = field(default_factory=list)  # ids lm-eval did not score (too long for the window)
    ranks: _Ragged | None = None  # default: from docs (where they hold ranks)
    alpha: np.ndarray | None = None  # per document, NaN when None; default: from docs
    offsets: np.ndarray | None = None  # byte offset of each document's line (docs read back from the file)
    cache_entry: Path | None = field(default=None, compare=False, repr=False)  # the samples cache's entry, if any
    derived: dict = field(default_factory=dict, compare=False, repr=False)  # what analyses computed of it, kept

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
        return loads(line_at(self.path, int(self.offsets[k])))["doc"]

    @property
    def sizes(self) -> np.ndarray:
        """Number of responses of each document."""
        return self.ranks.sizes().astype(int, copy=False)

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
        one = getattr(self.ranks, "_one_size", None)
        if one is not None:
            return {one: np.arange(len(sizes))}
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


class Columns:
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
            dtype = _DTYPES[name]
            sizes = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
            flat = np.fromiter(chain.from_iterable(lists), dtype=dtype, count=int(sizes.sum()))  # 3x np.array's speed
            self._put(f"{name}.sizes", sizes)
            self._put(name, flat)

    def _joined(self, name: str, dtype: type) -> np.ndarray:
        return np.concatenate(self.chunks[name]) if name in self.chunks else np.zeros(0, dtype=dtype)

    def task_samples(self, task: str, path: Path) -> TaskSamples:
        """The documents added, as the :class:`TaskSamples` of ``task``, their texts read back from ``path``."""
        self._pack()
        arrays = {"offsets": self._joined("offsets", np.int64), "alpha": self._joined("alpha", np.float64)}
        for name in self._NAMES:
            arrays[name] = self._joined(name, _DTYPES[name])
            arrays[f"{name}_starts"] = np.concatenate([[0], np.cumsum(self._joined(f"{name}.sizes", np.int64))])
        return packed(task, path, self.ids, self.hashes, self.dropped, arrays)


#: The dtype of each packed array (:func:`packed_arrays`).
_DTYPES = {"offsets": np.int64, "alpha": np.float64, "ranks": np.int64, "loglik": np.float64,
           "n_tokens": np.float64, "n_bytes": np.int64}


def packed_arrays(ts: TaskSamples) -> dict[str, np.ndarray]:
    """The numbers of a :class:`TaskSamples` read from a file, as plain arrays
    (``offsets``, ``alpha``, and each per-response list as ``<name>`` and
    ``<name>_starts``): what :func:`packed` takes back."""
    out = {"offsets": ts.offsets, "alpha": ts.alpha}
    for name in Columns._NAMES:
        ragged = getattr(ts, name)
        out[name], out[f"{name}_starts"] = ragged.flat, ragged.starts
    return out


def packed(task: str, path: Path, ids: Sequence[str], hashes: Sequence[str], dropped: list[str],
           arrays: Mapping[str, np.ndarray]) -> TaskSamples:
    """The :class:`TaskSamples` of plain arrays (:func:`packed_arrays`), its
    texts read back from ``path``; ValueError when the arrays do not fit
    together (lengths, dtypes, starts)."""
    n = len(ids)
    if len(hashes) != n:
        raise ValueError(f"{len(hashes)} hashes for {n} ids")
    for name, dtype in _DTYPES.items():
        if arrays[name].dtype != dtype or arrays[name].ndim != 1:
            raise ValueError(f"'{name}' is not a flat {np.dtype(dtype).name} array")
    if arrays["offsets"].shape != (n,) or arrays["alpha"].shape != (n,):
        raise ValueError(f"offsets or alpha do not hold {n} values")
    ragged = {}
    for name in Columns._NAMES:
        starts = arrays[f"{name}_starts"].astype(np.int64, copy=False)
        if starts.shape != (n + 1,) or starts[0] != 0 or starts[-1] != len(arrays[name]) or (np.diff(starts) < 0).any():
            raise ValueError(f"the starts of '{name}' do not fit its {len(arrays[name])} values")
        if name != "ranks" and not np.array_equal(starts, ragged["ranks"].starts):
            raise ValueError(f"'{name}' holds another number of values than ranks for some document")
        ragged[name] = _Ragged(arrays[name], starts, nullable=name == "n_tokens")
    ts = TaskSamples(task, path, ids, hashes, [], ragged["loglik"], ragged["n_tokens"], ragged["n_bytes"],
                     dropped, ragged["ranks"], arrays["alpha"], arrays["offsets"])
    ts.docs = _Docs(ts)
    return ts
