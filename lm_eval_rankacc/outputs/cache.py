"""The samples cache: what the analyses read from a samples file, kept per
file in a cache folder and used again while the file is unchanged, so that
analysing the same runs again reads no samples file.

An entry holds what :func:`~lm_eval_rankacc.outputs.samples.read_samples`
gives (document ids, ``doc_hash``, ranks, alpha, log-likelihoods, token and
byte counts, the dropped ids, each line's byte offset, from which a
document's texts are read back when asked) or, for another task's file, its
kind. It is one file per samples file (named by a hash of its resolved
path): a magic line, a JSON header (what the entry is of, and where each
array lies with its dtype, length and CRC-32), then the arrays' bytes, each
at a multiple of 64, read back in one read and used in place. It is written
to a temporary file in the cache folder and renamed into place, so a reader
or a second writer never sees half an entry.
It is used only when its format, the reader's code, the path, the task and
the file's key (:func:`file_key`) all match and its arrays fit together;
an entry that cannot be read is never trusted: the file is read again, with a
note, and the entry written anew. Where the cache folder cannot be written,
the samples are read and a note says so.

The folder: ``$LM_EVAL_RANKACC_SAMPLES_CACHE`` (a folder, or ``off``), else
``samples/`` in the project's cache folder (``$LM_EVAL_RANKACC_CACHE``, as
the demo model's). Why a key without a hash of the whole file, and what it
can and cannot catch: ``docs/analyses.md`` (the samples cache).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lm_eval_rankacc.loading.cache_dir import default_cache_dir
from lm_eval_rankacc.outputs import columns, lines, samples, validation
from lm_eval_rankacc.outputs.columns import Strings, TaskSamples, packed, packed_arrays
from lm_eval_rankacc.outputs.names import task_of

__all__ = ["CACHE_ENV", "cache_folder", "cached_samples", "entry_path", "file_key", "is_fresh", "remembered"]

CACHE_ENV = "LM_EVAL_RANKACC_SAMPLES_CACHE"
#: The entry layout; raised when it changes (the reader's code is in the key besides).
FORMAT = 3
#: Files up to this size are hashed whole in the key; bigger ones in :data:`PIECES` pieces.
WHOLE_HASH_BYTES = 8 << 20
#: Pieces of :data:`PIECE_BYTES` hashed in a bigger file: the first, the last and evenly between.
PIECES, PIECE_BYTES = 16, 64 << 10
#: A file bigger than :data:`WHOLE_HASH_BYTES` modified less than this long before it is read
#: is not cached: a same-size rewrite within one tick of a coarse clock could keep its stat.
RACY_NS = 2_000_000_000
_STRINGS = ("ids", "hashes", "dropped")
#: An entry's file name ends so; it starts with :data:`MAGIC` and the header's length (8 bytes, little-endian).
SUFFIX, MAGIC = ".rankacc-samples", b"RANKACC-SAMPLES\n"
#: The dtypes an entry's arrays may have; each starts at a multiple of :data:`_ALIGN` bytes.
_DTYPES = {"<f8": np.dtype("<f8"), "<i8": np.dtype("<i8"), "|u1": np.dtype("|u1")}
_ALIGN = 64
#: The most bytes an entry's header may hold (a corrupt length is refused before reading).
_MAX_HEADER = 1 << 20
_ENTRY_ERRORS = (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError)


def cache_folder() -> Path | None:
    """The folder of the samples cache; None when ``$LM_EVAL_RANKACC_SAMPLES_CACHE`` is ``off``."""
    chosen = os.environ.get(CACHE_ENV, "").strip()
    if chosen.lower() in ("off", "0", "no", "false", "none"):
        return None
    return Path(chosen).expanduser() if chosen else default_cache_dir() / "samples"


def entry_path(folder: Path, path: Path) -> Path:
    """The entry of a samples file: a hash of its resolved path."""
    return folder / (hashlib.sha256(str(path.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:32]
                     + SUFFIX)


_READER: str | None = None


def _reader_version() -> str:
    """A hash of the reading code (lines, validation, columns, samples, this module): an entry
    written by other rules of reading is not used."""
    global _READER
    if _READER is None:
        digest = hashlib.sha256(str(FORMAT).encode())
        for module in (lines, validation, columns, samples):
            digest.update(Path(module.__file__).read_bytes())
        digest.update(Path(__file__).read_bytes())
        _READER = digest.hexdigest()
    return _READER


def file_key(path: Path, st: os.stat_result) -> dict[str, Any]:
    """What identifies a samples file's content: size, modification and
    change times (ns), inode and device, and the SHA-256 of the whole file
    (up to :data:`WHOLE_HASH_BYTES`) or of :data:`PIECES` pieces of it
    (the first and last :data:`PIECE_BYTES` and evenly between)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        if st.st_size <= WHOLE_HASH_BYTES:
            digest.update(fh.read())
        else:
            for k in range(PIECES):
                fh.seek(max(0, st.st_size - PIECE_BYTES) * k // (PIECES - 1))
                digest.update(fh.read(PIECE_BYTES))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "inode": st.st_ino,
            "device": st.st_dev, "sha256": digest.hexdigest()}


_STAT = ("size", "mtime_ns", "ctime_ns", "inode", "device")


def _stat_part(st: os.stat_result) -> tuple:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev


def _key_stat(key: dict[str, Any]) -> tuple:
    return tuple(key[k] for k in _STAT)


def _strings(values: list[str]) -> np.ndarray:
    """A list of strings as UTF-8 bytes (a uint8 array): a NUL byte, then the
    strings joined by NUL where none holds one (split again at once), else
    their JSON."""
    joined = "\0".join(values)
    if values and joined.count("\0") == len(values) - 1:
        text = ("\0" + joined).encode("utf-8", "surrogatepass")
    else:
        text = json.dumps(values, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return np.frombuffer(text, dtype=np.uint8)


def _unstrings(array: np.ndarray, n: int | None = None) -> list[str] | Strings:
    """The strings of :func:`_strings` (its bytes checked by their CRC-32
    before): NUL-joined ones as :class:`Strings` of ``n`` (made Python strings
    only when asked for), else the list."""
    if len(array) and array[0] == 0:
        count = int(np.count_nonzero(array == 0))  # the marker and one NUL between each two strings
        if n is not None and count != n:
            raise ValueError(f"{count} strings where {n} were written")
        joined = Strings(array[1:], count)
        return joined if n is not None else list(joined)
    values = json.loads(array.tobytes().decode("utf-8", "surrogatepass"))
    if not isinstance(values, list):
        raise TypeError("not a list of strings")  # caught as a corrupt entry
    return values


class _Corrupt(Exception):
    """An entry that cannot be read or whose parts do not fit together."""


def _checksums(arrays: dict[str, np.ndarray]) -> dict[str, int]:
    """The CRC-32 of each array's bytes."""
    return {name: zlib.crc32(np.ascontiguousarray(a).view(np.uint8)) for name, a in sorted(arrays.items())}


def _layout(arrays: dict[str, np.ndarray]) -> list[list]:
    """[name, dtype, length, offset] of each array in an entry's data (offsets from its start, aligned)."""
    out, at = [], 0
    for name, a in arrays.items():
        out.append([name, a.dtype.str, int(a.size), at])
        at += -(-a.nbytes // _ALIGN) * _ALIGN
    return out


def _header(path: Path, task: str, kind: str, key: dict[str, Any], n: int, crc32: Any, layout: Any
            ) -> dict[str, Any]:
    return {"format": FORMAT, "reader": _reader_version(), "path": str(path.resolve()), "task": task,
            "kind": kind, "key": key, "documents": n, "crc32": crc32, "arrays": layout}


def _header_fits(header: dict[str, Any], path: Path, task: str, st: os.stat_result) -> bool:
    """Whether an entry's header is of ``path`` as it is now (``st``): format, reader, path, task and key."""
    expected = _header(path, task, header.get("kind"), header.get("key"), header.get("documents"),
                       header.get("crc32"), header.get("arrays"))
    return header == expected and _stat_part(st) == _key_stat(header["key"]) and header["key"] == file_key(path, st)


def _read_header(fh: Any) -> tuple[dict[str, Any], int]:
    """An entry's header and where its data starts. Raises ValueError for what is no entry."""
    lead = fh.read(len(MAGIC) + 8)
    if len(lead) != len(MAGIC) + 8 or not lead.startswith(MAGIC):
        raise ValueError("not a samples cache entry")
    size = int.from_bytes(lead[len(MAGIC):], "little")
    if size > _MAX_HEADER:
        raise ValueError(f"a header of {size} bytes")
    text = fh.read(size)
    if len(text) != size:
        raise ValueError("truncated")
    header = json.loads(text)
    if not isinstance(header, dict):
        raise ValueError("its header is not an object")
    return header, -(-(len(lead) + size) // _ALIGN) * _ALIGN


def _read_arrays(fh: Any, header: dict[str, Any], start: int) -> dict[str, np.ndarray]:
    """The arrays of an entry, read in one read and used in place, checked against their CRC-32."""
    layout = header["arrays"]
    size = max((offset + -(-length * _DTYPES[dtype].itemsize // _ALIGN) * _ALIGN
                for _, dtype, length, offset in layout), default=0)
    data = np.empty(size, dtype=np.uint8)
    fh.seek(start)
    if fh.readinto(data) != size or fh.read(1):
        raise ValueError("truncated or longer than its header says")
    arrays = {}
    for name, dtype, length, offset in layout:
        nbytes = length * _DTYPES[dtype].itemsize
        if not (isinstance(offset, int) and 0 <= offset and offset % _ALIGN == 0 and offset + nbytes <= size):
            raise ValueError(f"array {name!r} lies outside the entry")
        arrays[name] = data[offset:offset + nbytes].view(_DTYPES[dtype])
    if _checksums(arrays) != header["crc32"]:
        raise ValueError("its arrays do not match their checksums")
    return arrays


def _fresh_header(folder: Path, path: Path, task: str) -> dict[str, Any] | None:
    """The header of the entry of ``path`` where it is of the file as it is now, else None."""
    try:
        with entry_path(folder, path).open("rb") as fh:
            header = _read_header(fh)[0]
        return header if _header_fits(header, path, task, path.stat()) else None
    except _ENTRY_ERRORS:
        return None


def is_fresh(path: Path) -> bool:
    """Whether the cache holds an entry of the samples file ``path`` as it is
    now, by the entry's header alone (its arrays are checked when loaded):
    what decides whether reading a run is worth a process of its own."""
    folder = cache_folder()
    return folder is not None and _fresh_header(folder, path, task_of(path)) is not None


def _kept_path(folder: Path, path: Path) -> Path:
    return entry_path(folder, path).with_suffix(".kept.json")


def _kept(folder: Path, path: Path, header: dict[str, Any]) -> dict[str, Any]:
    """The values kept beside the entry of ``path`` (whose header is ``header``); {} when none are, or
    they were kept for another entry or cannot be read."""
    try:
        kept = json.loads(_kept_path(folder, path).read_bytes())
        return kept["values"] if kept["entry"] == header and isinstance(kept["values"], dict) else {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def remembered(path: str | Path, task: str | None, name: str, compute: Callable[[TaskSamples], Any],
               notes: list[str] | None = None) -> Any:
    """``compute(samples)`` of a samples file (a small JSON value: a digest, a
    count), kept beside its cache entry (``<entry>.kept.json``, written
    atomically, valid only with the entry it was computed from) so that a
    second analysis takes it from there without loading the entry at all;
    computed from :func:`cached_samples` otherwise. A kept file that cannot
    be read or written is recomputed, silently (the value is the same)."""
    path = Path(path)
    task = task or task_of(path)
    folder = cache_folder()
    header = _fresh_header(folder, path, task) if folder is not None else None
    if header is not None and name in (kept := _kept(folder, path, header)):
        return kept[name]
    ts = cached_samples(path, task, notes)
    value = compute(ts)
    header = _fresh_header(folder, path, task) if folder is not None and ts.cache_entry is not None else None
    if header is not None:
        text = json.dumps({"entry": header, "values": {**_kept(folder, path, header), name: value}}).encode()
        try:
            _replace_atomically(folder, _kept_path(folder, path), lambda fh: fh.write(text))
        except OSError:
            pass  # computed again next time
    return value


def _open_entry(entry: Path, path: Path, task: str, st: os.stat_result) -> TaskSamples | str | None:
    """The cached samples (or kind) of ``path`` from ``entry``; None when the
    entry is of another file, task, reader or content. Raises :class:`_Corrupt`."""
    try:
        with entry.open("rb") as fh:
            header, start = _read_header(fh)
            if not _header_fits(header, path, task, st):
                return None
            if header["kind"] != "rankacc":
                return header["kind"]
            arrays = _read_arrays(fh, header, start)
        n = header["documents"] if isinstance(header["documents"], int) else -1
        strings = {name: _unstrings(arrays.pop(name), None if name == "dropped" else n) for name in _STRINGS}
    except _ENTRY_ERRORS as err:
        raise _Corrupt(str(err).splitlines()[0][:120] if str(err) else type(err).__name__) from None
    try:
        if len(strings["ids"]) != header["documents"]:
            raise ValueError(f"{len(strings['ids'])} ids for {header['documents']} documents")
        return packed(task, path, strings["ids"], strings["hashes"], strings["dropped"], arrays)
    except ValueError as err:
        raise _Corrupt(str(err)) from None


def _replace_atomically(folder: Path, target: Path, write: Callable[[Any], None]) -> None:
    """``write(binary file)`` to a temporary file in ``folder``, renamed onto ``target``: a reader or a
    second writer never sees half a file."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".writing-", suffix=target.suffix)
    try:
        umask = os.umask(0o022)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as an ordinary file (mkstemp's are private): a shared folder works
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write(folder: Path, entry: Path, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write an entry atomically: its magic, header and aligned arrays."""
    text = json.dumps(header).encode()

    def write(fh: Any) -> None:
        fh.write(MAGIC + len(text).to_bytes(8, "little") + text)
        fh.write(bytes(-fh.tell() % _ALIGN))
        for a in arrays.values():
            data = np.ascontiguousarray(a).view(np.uint8)
            fh.write(data)
            fh.write(bytes(-len(data) % _ALIGN))
    _replace_atomically(folder, entry, write)


def _store(folder: Path, path: Path, task: str, kind: str, key: dict[str, Any], ts: TaskSamples | None,
           notes: list[str]) -> Path | None:
    """Cache ``ts`` (or the kind of another task's file) unless the file changed while read; the entry."""
    try:
        after = path.stat()
    except OSError:
        return None
    if _stat_part(after) != _key_stat(key):
        notes.append(f"samples cache: {path} changed while it was read: not cached")
        return None
    arrays: dict[str, np.ndarray] = {}
    if ts is not None:
        arrays = {**packed_arrays(ts), "ids": _strings(ts.ids), "hashes": _strings(ts.hashes),
                  "dropped": _strings(ts.dropped)}
    entry = entry_path(folder, path)
    try:
        _write(folder, entry, _header(path, task, kind, key, len(ts) if ts is not None else 0,
                                      _checksums(arrays), _layout(arrays)), arrays)
    except OSError as err:
        notes.append(f"samples cache: cannot write {folder} ({err.strerror or err}): {path.name} read, not cached")
        return None
    return entry


def _from_entry(folder: Path, path: Path, task: str, st: os.stat_result, notes: list[str]
                ) -> TaskSamples | str | None:
    """The cached samples (or kind) of ``path`` where its entry is valid; None otherwise (a note when
    the entry cannot be used)."""
    entry = entry_path(folder, path)
    if not entry.exists():
        return None
    try:
        found = _open_entry(entry, path, task, st)
    except _Corrupt as err:
        notes.append(f"samples cache: entry {entry} of {path.name} cannot be used ({err}): the samples file "
                     "was read again")
        return None
    if isinstance(found, TaskSamples):
        samples.check_count(found)  # the results file beside may have changed: checked every time
        found.cache_entry = entry
    return found


def cached_samples(path: str | Path, task: str | None = None, notes: list[str] | None = None,
                   kind_of: Callable[[Path], str] | None = None) -> TaskSamples | str:
    """:func:`~lm_eval_rankacc.outputs.samples.read_samples` of ``path``
    through the cache: from a valid entry without reading the samples file,
    else read (and cached). With ``kind_of`` (e.g.
    :func:`~lm_eval_rankacc.outputs.samples.first_kind`) a file whose kind is
    not ``rankacc`` gives that kind instead (``other`` is cached too).
    Problems of the cache go to ``notes``; problems of the file are the
    reader's :class:`RunError`, cached or not."""
    path, notes = Path(path), notes if notes is not None else []
    task = task or task_of(path)
    folder, key = cache_folder(), None
    try:
        st = path.stat()
    except OSError:
        folder = None  # the reader words the error
    if folder is not None:
        found = _from_entry(folder, path, task, st, notes)
        if isinstance(found, TaskSamples) or (found is not None and kind_of is not None):
            return found
        racy = st.st_size > WHOLE_HASH_BYTES and time.time_ns() - st.st_mtime_ns < RACY_NS
        try:
            key = None if racy else file_key(path, st)
        except OSError:
            folder = None  # unreadable: the reader words the error
    if kind_of is not None:
        kind = kind_of(path)
        if kind != "rankacc":
            if key is not None and kind == "other":
                _store(folder, path, task, kind, key, None, notes)
            return kind
    ts = samples.read_samples(path, task)
    if folder is not None and key is None:  # just modified (racy)
        notes.append(f"samples cache: {path.name} was modified under {RACY_NS // 10**9} s ago: not cached")
    elif key is not None:
        ts.cache_entry = _store(folder, path, task, "rankacc", key, ts, notes)
    return ts
