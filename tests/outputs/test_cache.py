"""The samples cache (``outputs/cache.py``): an unchanged samples file is read
once; a changed, truncated or replaced one is read again; a corrupt entry,
an unwritable cache folder and a read-only run folder give a note and the
same documents; two writers at once leave one valid entry. Every loaded run
is compared, field by field, with the samples file read without the cache."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest

from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.outputs import cache, lines
from lm_eval_rankacc.outputs.runs import load_run
from lm_eval_rankacc.outputs.samples import read_samples
from tests.helpers.rankacc_samples import TS, doc, write_run

TASK = "rankacc_demo"


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(cache.CACHE_ENV, str(folder))
    return folder


def _entries(n: int = 12, shift: float = 0.0, alpha: bool = True) -> list[dict]:
    return [doc(f"d{k}", [-1.0 - k - shift, -2.5 - k / 3], [1, 2] if k % 3 else [2, 1],
                alpha=(0.75 if k % 2 else None) if alpha else None, n_tokens=[3 + k % 4, None if k == 5 else 4])
            for k in range(n)]


def _samples(sub: Path) -> Path:
    return sub / f"samples_{TASK}_{TS}.jsonl"


def _fields(ts) -> dict:
    """Everything the analyses read of a TaskSamples, as plain lists (NaN kept as the string 'nan')."""
    def plain(values):
        return [["nan" if isinstance(v, float) and math.isnan(v) else v for v in row] for row in values]
    return {"ids": list(ts.ids), "hashes": list(ts.hashes), "dropped": list(ts.dropped),
            "ranks": plain(ts.ranks), "loglik": plain(ts.loglik), "n_tokens": plain(ts.n_tokens),
            "n_bytes": plain(ts.n_bytes), "alpha": ["nan" if math.isnan(a) else a for a in ts.alpha.tolist()],
            "offsets": ts.offsets.tolist(), "texts": [dict(d) for d in ts.docs]}


def _independent(path: Path) -> dict:
    """The documents of a samples file straight from its JSON lines, without the package's reader."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {"ids": [str(r["doc"]["id"]) for r in rows], "loglik": [r["scores"]["loglik"] for r in rows],
            "hashes": [r["doc_hash"] for r in rows]}


def test_second_read_comes_from_the_cache_with_the_same_fields(tmp_path, cache_dir, monkeypatch):
    sub = write_run(tmp_path / "run", {TASK: _entries()})
    first = load_run(sub)
    assert len(list(cache_dir.glob("*" + cache.SUFFIX))) == 1 and first.notes == []
    expected = _fields(first.tasks[TASK])
    assert {k: expected[k] for k in ("ids", "loglik", "hashes")} == _independent(_samples(sub))
    monkeypatch.setattr(lines, "blocks", lambda path: (_ for _ in ()).throw(AssertionError(f"read {path}")))
    second = load_run(sub)  # no line of the samples file read, texts included only when asked
    assert second.notes == [] and second.tasks[TASK].cache_entry is not None
    monkeypatch.undo()
    monkeypatch.setenv(cache.CACHE_ENV, str(cache_dir))
    assert _fields(second.tasks[TASK]) == expected
    monkeypatch.setenv(cache.CACHE_ENV, "off")
    assert _fields(load_run(sub).tasks[TASK]) == expected


def test_cache_off_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, "off")
    monkeypatch.setenv("LM_EVAL_RANKACC_CACHE", str(tmp_path / "root"))
    load_run(write_run(tmp_path / "run", {TASK: _entries()}))
    assert not (tmp_path / "root").exists()


def test_default_folder_is_under_the_project_cache(tmp_path, monkeypatch):
    monkeypatch.delenv(cache.CACHE_ENV, raising=False)
    monkeypatch.setenv("LM_EVAL_RANKACC_CACHE", str(tmp_path / "root"))
    assert cache.cache_folder() == tmp_path / "root" / "samples"


def _same_stat_rewrite(path: Path, text: str) -> None:
    """Rewrite a file in place and put its modification time back."""
    st = path.stat()
    with path.open("r+", encoding="utf-8") as fh:
        fh.write(text)
        fh.truncate()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_changed_file_is_read_again(tmp_path, cache_dir):
    sub = write_run(tmp_path / "run", {TASK: _entries()})
    path = _samples(sub)
    load_run(sub)
    text = path.read_text(encoding="utf-8")
    changed = text.replace('"loglik": [-1.0,', '"loglik": [-9.0,', 1)
    assert changed != text and len(changed) == len(text)
    _same_stat_rewrite(path, changed)  # same size, same mtime: the content hash and ctime tell
    ts = load_run(sub).tasks[TASK]
    assert ts.loglik[0][0] == -9.0 and _fields(ts)["loglik"] == _independent(path)["loglik"]


def test_a_truncated_file_is_read_again(tmp_path, cache_dir):
    sub = write_run(tmp_path / "run", {TASK: _entries()})
    path = _samples(sub)
    load_run(sub)
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.rindex("\n", 0, len(text) - 1) + 1], encoding="utf-8")  # the last line gone
    with pytest.raises(RunError, match="holds 11 documents but lm-eval scored 12"):
        load_run(sub)


def test_a_replaced_file_is_read_again(tmp_path, cache_dir):
    sub = write_run(tmp_path / "run", {TASK: _entries()})
    load_run(sub)
    other = write_run(tmp_path / "other", {TASK: _entries(shift=4.0)})
    os.replace(_samples(other), _samples(sub))  # another inode, maybe the same size and time
    ts = load_run(sub).tasks[TASK]
    assert _fields(ts)["loglik"] == _independent(_samples(sub))["loglik"] and ts.loglik[0][0] == -5.0


def test_a_changed_results_file_is_checked_again(tmp_path, cache_dir):
    sub = write_run(tmp_path / "run", {TASK: _entries()})
    load_run(sub)
    results = sub / f"results_{TS}.json"
    data = json.loads(results.read_text())
    data["n-samples"][TASK]["effective"] = 13
    results.write_text(json.dumps(data))
    with pytest.raises(RunError, match="holds 12 documents but lm-eval scored 13"):
        load_run(sub)


def test_file_key_sees_a_changed_piece_of_a_big_file(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "WHOLE_HASH_BYTES", 1000)
    monkeypatch.setattr(cache, "PIECE_BYTES", 100)
    path = tmp_path / "f"
    path.write_bytes(bytes(5000))
    before = cache.file_key(path, path.stat())["sha256"]
    for at in (0, 4999, (5000 - 100) * 7 // 15 + 50):  # the first, the last, a middle piece
        data = bytearray(5000)
        data[at] = 1
        path.write_bytes(bytes(data))
        assert cache.file_key(path, path.stat())["sha256"] != before
    data = bytearray(5000)
    data[150] = 1  # between pieces: only the stat (mtime, ctime) tells, as documented
    path.write_bytes(bytes(data))
    assert cache.file_key(path, path.stat())["sha256"] == before


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped", "empty", "other header", "appended"])
def test_a_corrupt_entry_is_read_again_with_a_note(tmp_path, cache_dir, damage):
    sub = write_run(tmp_path / "run", {TASK: _entries()})
    expected = _fields(load_run(sub).tasks[TASK])
    (entry,) = cache_dir.glob("*" + cache.SUFFIX)
    data = entry.read_bytes()
    if damage == "garbage":
        entry.write_bytes(b"not a cache entry")
    elif damage == "truncated":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "flipped":  # the last byte of the log-likelihoods: a checksum tells
        with entry.open("rb") as fh:
            header, start = cache._read_header(fh)
        _, _, length, offset = next(a for a in header["arrays"] if a[0] == "loglik")
        at = start + offset + 8 * length - 1
        entry.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:])
    elif damage == "empty":
        entry.write_bytes(b"")
    elif damage == "appended":
        entry.write_bytes(data + b"\0" * 64)
    else:  # a well-formed entry (checksums right) whose arrays do not fit together
        with entry.open("rb") as fh:
            header, start = cache._read_header(fh)
            arrays = dict(cache._read_arrays(fh, header, start))
        arrays["loglik_starts"] = arrays["loglik_starts"][:-1]
        header.update(crc32=cache._checksums(arrays), arrays=cache._layout(arrays))
        cache._write(entry.parent, entry, header, arrays)
    run = load_run(sub)
    assert len(run.notes) == 1 and "cannot be used" in run.notes[0] and "read again" in run.notes[0], run.notes
    assert _fields(run.tasks[TASK]) == expected
    assert load_run(sub).notes == []  # the entry was written anew


def test_an_unwritable_cache_folder_gives_a_note(tmp_path, monkeypatch):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv(cache.CACHE_ENV, str(blocker / "cache"))  # cannot be created, as root too
    sub = write_run(tmp_path / "run", {TASK: _entries()})
    monkeypatch.setenv(cache.CACHE_ENV, "off")
    expected = _fields(load_run(sub).tasks[TASK])
    monkeypatch.setenv(cache.CACHE_ENV, str(blocker / "cache"))
    run = load_run(sub)
    assert len(run.notes) == 1 and "cannot write" in run.notes[0] and "not cached" in run.notes[0]
    assert _fields(run.tasks[TASK]) == expected


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_cache_folder_gives_a_note(tmp_path, cache_dir):
    cache_dir.mkdir()
    cache_dir.chmod(0o555)
    try:
        run = load_run(write_run(tmp_path / "run", {TASK: _entries()}))
    finally:
        cache_dir.chmod(0o755)
    assert len(run.notes) == 1 and "cannot write" in run.notes[0]
    assert not list(cache_dir.iterdir())


def test_a_read_only_run_folder_is_cached_elsewhere(tmp_path, cache_dir):
    sub = write_run(tmp_path / "run", {TASK: _entries()})
    before = sorted(p.name for p in sub.iterdir())
    sub.chmod(0o555)
    try:
        first, second = load_run(sub), load_run(sub)
    finally:
        sub.chmod(0o755)
    assert sorted(p.name for p in sub.iterdir()) == before  # nothing written beside the run
    assert first.notes == second.notes == [] and second.tasks[TASK].cache_entry is not None
    assert _fields(first.tasks[TASK]) == _fields(second.tasks[TASK])


def _load_many(args: tuple) -> int:
    sub, barrier = args
    barrier.wait()
    for _ in range(5):
        cache.entry_path(cache.cache_folder(), _samples(sub)).unlink(missing_ok=True)
        load_run(sub)
    return 0


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_two_writers_at_once_leave_one_valid_entry(tmp_path, cache_dir):
    sub = write_run(tmp_path / "run", {TASK: _entries(400)})
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_load_many, args=((sub, barrier),)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert [p.name for p in cache_dir.iterdir()] == [cache.entry_path(cache_dir, _samples(sub)).name]
    notes: list[str] = []
    ts = cache.cached_samples(_samples(sub), TASK, notes)
    assert notes == [] and ts.cache_entry is not None
    fresh = read_samples(_samples(sub))
    assert _fields(ts) == _fields(fresh)


def test_another_tasks_file_is_cached_as_such(tmp_path, cache_dir, monkeypatch):
    sub = write_run(tmp_path / "run", {TASK: _entries()})
    (sub / f"samples_arc_easy_{TS}.jsonl").write_text(json.dumps({"doc_id": 0, "doc": {"q": 1}, "resps": []}) + "\n")
    notes = load_run(sub).notes
    assert notes == ["not rankacc tasks, left out: arc_easy"]
    monkeypatch.setattr(lines, "blocks", lambda path: (_ for _ in ()).throw(AssertionError(f"read {path}")))
    assert load_run(sub).notes == notes


def test_a_big_file_just_written_is_not_cached(tmp_path, cache_dir, monkeypatch):
    monkeypatch.setattr(cache, "WHOLE_HASH_BYTES", 100)
    sub = write_run(tmp_path / "run", {TASK: _entries()})
    run = load_run(sub)
    assert len(run.notes) == 1 and "modified under 2 s ago" in run.notes[0] and not cache_dir.exists()
    old = _samples(sub).stat().st_mtime_ns - 10**10
    os.utime(_samples(sub), ns=(old, old))
    assert load_run(sub).notes == [] and len(list(cache_dir.glob("*" + cache.SUFFIX))) == 1


def test_a_file_changed_while_read_is_not_cached(tmp_path, cache_dir, monkeypatch):
    sub = write_run(tmp_path / "run", {TASK: _entries()})
    real = cache.samples.read_samples

    def read_then_append(path, task=None):
        ts = real(path, task)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write("\n")
        return ts

    monkeypatch.setattr(cache.samples, "read_samples", read_then_append)
    run = load_run(sub)
    assert any("changed while it was read" in n for n in run.notes) and not list(cache_dir.glob("*" + cache.SUFFIX))


def test_ids_with_a_nul_are_kept_exactly(tmp_path, cache_dir):
    """Ids are stored NUL-joined unless one holds a NUL (then as JSON): both come back the same strings."""
    entries = _entries(4)
    entries[2]["doc"]["id"] = "a\u0000b"
    entries[3]["doc"]["id"] = "caf\u00e9 \U0001F600"
    sub = write_run(tmp_path / "run", {TASK: entries})
    expected = _fields(load_run(sub).tasks[TASK])
    second = load_run(sub).tasks[TASK]
    assert second.cache_entry is not None and _fields(second) == expected
    assert list(second.ids)[2:] == ["a\u0000b", "caf\u00e9 \U0001F600"]


def test_cached_ids_are_compared_without_making_strings(tmp_path, cache_dir):
    """Two runs of the same documents from the cache match by their stored bytes: no id made a string."""
    from lm_eval_rankacc.outputs.columns import Strings
    from lm_eval_rankacc.outputs.matching import match_documents
    a, b = write_run(tmp_path / "a", {TASK: _entries()}), write_run(tmp_path / "b", {TASK: _entries(shift=1.0)})
    load_run(a), load_run(b)
    ta, tb = load_run(a).tasks[TASK], load_run(b).tasks[TASK]
    assert isinstance(ta.ids, Strings) and isinstance(tb.hashes, Strings)
    assert match_documents(ta, tb).tolist() == list(range(12))
    assert ta.ids._values is None and tb.hashes._values is None  # compared as bytes
    assert ta.ids == [f"d{k}" for k in range(12)] and ta.ids != [f"d{k}" for k in range(11)]
    assert ta.ids[3] == "d3" and list(tb.hashes) == list(read_samples(_samples(b), TASK).hashes)


def test_a_wrong_string_count_is_a_corrupt_entry(tmp_path, cache_dir, monkeypatch):
    """An entry whose id bytes hold another number of strings than its documents is read again, with a note."""
    sub = write_run(tmp_path / "run", {TASK: _entries()})
    expected = _fields(load_run(sub).tasks[TASK])
    next(cache_dir.glob("*" + cache.SUFFIX)).unlink()
    with monkeypatch.context() as patched:
        patched.setattr(cache, "_strings", lambda values: np.frombuffer(b"\x00a\x00b", dtype=np.uint8))
        load_run(sub)  # written with two ids (and hashes) for twelve documents
    run = load_run(sub)
    assert len(run.notes) == 1 and "cannot be used" in run.notes[0], run.notes
    assert _fields(run.tasks[TASK]) == expected


def test_fresh_entries_are_loaded_without_forking(tmp_path, cache_dir, monkeypatch):
    """Runs whose samples the cache answers for are loaded in this process, each entry once."""
    from lm_eval_rankacc.outputs import parallel, runs
    monkeypatch.setattr(parallel, "PARALLEL_BYTES", 1)
    a, b = write_run(tmp_path / "a", {TASK: _entries()}), write_run(tmp_path / "b", {TASK: _entries(shift=1.0)})
    assert not cache.is_fresh(_samples(a))
    runs.as_runs([a, b])  # read in two forked processes, cached
    assert cache.is_fresh(_samples(a)) and cache.is_fresh(_samples(b))
    opened: list = []
    real_open = cache._open_entry
    monkeypatch.setattr(cache, "_open_entry", lambda *args: opened.append(args[1]) or real_open(*args))
    monkeypatch.setattr(parallel, "ProcessPoolExecutor", None)  # a fork would fail
    loaded = runs.as_runs([a, b])
    assert [r.tasks[TASK].cache_entry is not None for r in loaded] == [True, True]
    assert sorted(opened) == sorted([_samples(a), _samples(b)])
    _samples(a).write_text(_samples(a).read_text() + "\n")
    assert not cache.is_fresh(_samples(a)) and cache.is_fresh(_samples(b))


def test_remembered_values_are_kept_beside_the_entry(tmp_path, cache_dir, monkeypatch):
    """A value computed of a cached run is taken from beside its entry the second time (the entry
    not even loaded), computed again once the samples file changes or the kept file is damaged."""
    sub = write_run(tmp_path / "run", {TASK: _entries()})
    calls: list = []

    def count(ts):
        calls.append(1)
        return {"n": len(ts), "first": ts.ids[0]}
    assert cache.remembered(_samples(sub), TASK, "count", count) == {"n": 12, "first": "d0"} and len(calls) == 1
    with monkeypatch.context() as patched:
        patched.setattr(cache, "_open_entry", lambda *a: (_ for _ in ()).throw(AssertionError("entry loaded")))
        assert cache.remembered(_samples(sub), TASK, "count", count) == {"n": 12, "first": "d0"}
    assert len(calls) == 1
    (kept,) = cache_dir.glob("*.kept.json")
    kept.write_text("{not json")
    assert cache.remembered(_samples(sub), TASK, "count", count)["n"] == 12 and len(calls) == 2
    write_run(tmp_path / "run", {TASK: _entries(7)})  # the samples file rewritten
    assert cache.remembered(_samples(sub), TASK, "count", count) == {"n": 7, "first": "d0"} and len(calls) == 3
    monkeypatch.setenv(cache.CACHE_ENV, "off")
    assert cache.remembered(_samples(sub), TASK, "count", count)["n"] == 7 and len(calls) == 4



def test_strings_give_one_string_without_making_all():
    """Strings: items by index (negative too) from the NUL positions, slices and iteration as a list."""
    from lm_eval_rankacc.outputs.columns import Strings
    values = ["a", "", "caf\u00e9", "\U0001F600x", "last"]
    joined = Strings(np.frombuffer("\0".join(values).encode(), dtype=np.uint8), len(values))
    assert [joined[k] for k in range(5)] == values and joined[-1] == "last" and joined._values is None
    with pytest.raises(IndexError):
        joined[5]
    assert joined[1:3] == values[1:3] and list(joined) == values and joined == values
