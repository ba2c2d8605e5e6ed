"""The msgspec path of ``samples.read_samples`` (fields the analyses read,
decoded and checked without building the rest of the line) against the
reference path (every line parsed whole and checked by ``valid_sample``):
the same documents, arrays, offsets and texts, and the same error, worded
the same, for every fault."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.helpers.rankacc_samples import TS, doc, sample_line, write_samples

from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.outputs import lines as line_reader
from lm_eval_rankacc.outputs import validation
from lm_eval_rankacc.outputs.columns import TaskSamples
from lm_eval_rankacc.outputs.samples import read_samples

pytest.importorskip("msgspec")


def _read(path, fast: bool, monkeypatch):
    """read_samples with the msgspec path on or off: its TaskSamples, or the RunError text."""
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(validation, "_FAST_DECODE", None)
            m.setattr(validation, "_FAST_LINES", None)
        try:
            return read_samples(path)
        except RunError as err:
            return str(err)


def _same(a, b) -> None:
    """Two reads hold the same documents, numbers, offsets and texts."""
    assert isinstance(a, TaskSamples) and isinstance(b, TaskSamples), (a, b)
    assert (a.ids, a.hashes, a.dropped) == (b.ids, b.hashes, b.dropped)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    np.testing.assert_array_equal(a.alpha, b.alpha)  # NaN where None, on both
    for name in ("ranks", "loglik", "n_tokens", "n_bytes"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.flat.dtype == y.flat.dtype, name
        np.testing.assert_array_equal(x.flat, y.flat)
        np.testing.assert_array_equal(x.starts, y.starts)
    for k in range(len(a)):
        assert dict(a.docs[k]) == dict(b.docs[k])


def _lines(tmp_path) -> list[str]:
    entries = [
        doc("a", [-1.0, -2.0], [1, 2], alpha=0.75),
        doc("b\u00e9", [-3.0, -2.5], [2, 1], prompt="caf\u00e9 \u2028 \U0001f600", responses=["x\x85y", "z\r"]),
        doc("c", [-1.0, -2.0, -4.0], [1, 2, 3], n_tokens=[3, None, 4]),
        doc("d", [-5.0, -5.0], [1, 1], alpha=0.5),
        doc("e", [-1.0, -9.0], [2, 1], alpha=1),
    ]
    lines = [json.dumps(sample_line(k, e), ensure_ascii=False) for k, e in enumerate(entries)]
    edits = [  # (line, edit of its record)
        (2, lambda r: r["scores"].pop("n_tokens")),                       # unknown token counts
        (3, lambda r: r["scores"].update(loglik=[None, None])),           # dropped as too long
        (4, lambda r: r["doc"].update(id=17)),                            # an integer id
        (4, lambda r: r["doc"].pop("alpha")),                             # no alpha at all
        (1, lambda r: r["scores"].update(loglik=[-1, -3])),               # integers as log-likelihoods
    ]
    recs = [json.loads(line) for line in lines]
    for at, edit in edits:
        edit(recs[at])
    lines = [json.dumps(r, ensure_ascii=False) for r in recs]
    lines[2] = lines[2].replace('"loglik": [-1.0, -2.0, -4.0]', '"loglik": [NaN, -Infinity, -1e400]')
    return lines


@pytest.mark.parametrize("block", [1 << 24, 700, 64])
def test_fast_reader_equals_reference_reader(tmp_path, monkeypatch, block):
    """Valid lines of every kind, CRLF and blank lines, a last line without a
    newline; blocks smaller than a line too (``outputs.lines._READ_BYTES``)."""
    lines = _lines(tmp_path)
    path = tmp_path / f"samples_rankacc_a_{TS}.jsonl"
    text = "\ufeff" + lines[0] + "\r\n" + lines[1] + "\r\n\n  \n" + "\n".join(lines[2:]) + "\n" + json.dumps(
        sample_line(9, doc("last", [-1.0, -2.0], [1, 2])))
    path.write_bytes(text.encode("utf-8"))
    monkeypatch.setattr(line_reader, "_READ_BYTES", block)
    fast, slow = _read(path, True, monkeypatch), _read(path, False, monkeypatch)
    _same(fast, slow)
    assert fast.ids == ["a", "b\u00e9", "c", "17", "last"] and fast.dropped == ["d"]
    assert np.isnan(fast.loglik[2][0]) and fast.loglik[2][1:] == [-np.inf, -np.inf] and fast.loglik[1] == [-1.0, -3.0]
    assert fast.n_tokens[2] == [None, None, None] and fast.n_tokens[0] == [5, 5] and np.isnan(fast.alpha[3])
    assert fast.docs[1]["prompt"] == "caf\u00e9 \u2028 \U0001f600" and fast.docs[4]["id"] == "last"


def _change(rec: dict, where: str, key: str, value) -> None:
    target = rec if where == "" else rec[where]
    if value is KeyError:
        del target[key]
    else:
        target[key] = value


FAULTS = [
    ("doc", "ranks", [0, 1]), ("doc", "ranks", [1.0, 2]), ("doc", "ranks", [True, 2]), ("doc", "ranks", [1]),
    ("doc", "ranks", [2**53 + 1, 1]), ("doc", "ranks", [2**64, 1]), ("doc", "ranks", [2**70, 1]),
    ("doc", "ranks", None), ("doc", "responses", ["only one"]), ("doc", "responses", ["a", 3]),
    ("doc", "responses", "ab"), ("doc", "prompt", 5), ("doc", "prompt", KeyError), ("doc", "id", ""),
    ("doc", "id", 1.5), ("doc", "id", True), ("doc", "id", KeyError), ("doc", "alpha", 1.5), ("doc", "alpha", -0.1),
    ("doc", "alpha", True), ("doc", "alpha", "0.5"), ("", "doc", [1]), ("", "doc_hash", ""), ("", "doc_hash", 7),
    ("", "doc_hash", KeyError), ("", "scores", None), ("scores", "loglik", [-1.0, None]),
    ("scores", "loglik", [None, None, None]), ("scores", "loglik", [True, 1.0]), ("scores", "loglik", [-1.0]),
    ("scores", "loglik", [10**400, 1.0]), ("scores", "n_tokens", None), ("scores", "n_tokens", [0, 3]),
    ("scores", "n_tokens", [3]), ("scores", "n_tokens", [2**53 + 1, 3]), ("scores", "n_bytes", [None, 7]),
    ("scores", "n_bytes", [7, 7, 7]), ("scores", "n_bytes", KeyError), ("scores", "n_bytes", [1.5, 7]),
    ("doc", "id", "d0"),  # a duplicate of line 1's id
    ("doc", "id", 0),
]


@pytest.mark.parametrize("block", [1 << 24, 2000])
@pytest.mark.parametrize("where, key, value", FAULTS)
def test_fast_reader_words_every_fault_as_the_reference(tmp_path, monkeypatch, where, key, value, block):
    """Block 2000: lines 3 and 4 in a block of their own, read by the block decoder (it gives up
    on a fault and the block is read line by line, worded by the reference path)."""
    monkeypatch.setattr(line_reader, "_READ_BYTES", block)
    docs = [doc(f"d{k}", [-1.0 - k, -2.0], [1, 2]) for k in range(4)]
    path = write_samples(tmp_path / f"samples_rankacc_a_{TS}.jsonl", docs)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert block > 1 << 20 or len("\n".join(lines[:2])) < block < len("\n".join(lines[:3]))
    rec = json.loads(lines[2])
    _change(rec, where, key, value)
    lines[2] = json.dumps(rec)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    fast, slow = _read(path, True, monkeypatch), _read(path, False, monkeypatch)
    if isinstance(slow, str):
        assert fast == slow and "line 3" in slow
    else:
        _same(fast, slow)


@pytest.mark.parametrize("raw", [
    b'{"doc": {}} trailing', b"not json", b'{"doc": {"id": "x"', b'[1, 2]',
    b'{"doc": {"id": "x\xff", "prompt": "p"}}', b'\x80{"doc": 1}',
])
def test_fast_reader_words_broken_lines_as_the_reference(tmp_path, monkeypatch, raw):
    """Broken JSON, trailing text, bytes that are not UTF-8; the first fault in the file wins (a
    duplicate id on line 2 before a broken line 3)."""
    docs = [doc(f"d{k}", [-1.0 - k, -2.0], [1, 2]) for k in range(4)]
    path = write_samples(tmp_path / f"samples_rankacc_a_{TS}.jsonl", docs)
    lines = path.read_bytes().split(b"\n")
    for first in (lines[1], lines[0]):  # line 2 itself, then a duplicate of line 1 on line 2
        path.write_bytes(b"\n".join([lines[0], first, raw, *lines[3:]]))
        fast, slow = _read(path, True, monkeypatch), _read(path, False, monkeypatch)
        assert isinstance(slow, str) and fast == slow


def test_reading_leaves_the_garbage_collector_as_it_found_it(tmp_path):
    """read_samples pauses Python's cyclic collector while reading, and gives it back, after an error too."""
    import gc

    docs = [doc(f"d{k}", [-1.0 - k, -2.0], [1, 2]) for k in range(3)]
    path = write_samples(tmp_path / f"samples_rankacc_a_{TS}.jsonl", docs)
    bad = write_samples(tmp_path / f"samples_rankacc_b_{TS}.jsonl", [docs[0], docs[0]])  # a duplicate id
    was = gc.isenabled()
    try:
        for enabled in (True, False):
            gc.enable() if enabled else gc.disable()
            assert len(read_samples(path)) == 3 and gc.isenabled() == enabled
            with pytest.raises(RunError, match="already on line 1"):
                read_samples(bad)
            assert gc.isenabled() == enabled
    finally:
        gc.enable() if was else gc.disable()


def test_the_fast_path_reads_the_valid_lines(tmp_path, monkeypatch):
    """What ``_read(..., fast=False)`` switches off is what reads every valid line after the first
    (so the comparisons above compare two paths, not one with itself)."""
    calls: list = []
    decode = validation._FAST_DECODE
    monkeypatch.setattr(validation, "_FAST_DECODE", lambda line: calls.append(1) or decode(line))
    docs = [doc(f"d{k}", [-1.0 - k, -2.0], [1, 2]) for k in range(4)]
    assert len(read_samples(write_samples(tmp_path / f"samples_rankacc_a_{TS}.jsonl", docs))) == 4
    assert len(calls) == 3  # line 1 tells the file's kind: read by the reference path


def test_whole_blocks_are_decoded_at_once(tmp_path, monkeypatch):
    """Blocks after the first whose lines all start with ``{`` go through one ``decode_lines`` call
    each; a block with a blank line goes line by line; offsets and line numbers stay the file's."""
    monkeypatch.setattr(line_reader, "_READ_BYTES", 2500)
    docs = [doc(f"d{k}", [-1.0 - k, -2.0], [1, 2]) for k in range(30)]
    path = write_samples(tmp_path / f"samples_rankacc_a_{TS}.jsonl", docs)
    text = path.read_bytes().split(b"\n")
    text.insert(20, b"")  # a blank line 21
    text[25] = text[25].replace(b'"d24"', b'"d3"')  # line 26 repeats the id of line 4
    path.write_bytes(b"\n".join(text))
    blocks: list = []
    decode_lines = validation._FAST_LINES
    monkeypatch.setattr(validation, "_FAST_LINES", lambda block: blocks.append(block.count(b"\n")) or decode_lines(block))
    with pytest.raises(RunError, match="line 26: document id 'd3' already on line 4"):
        read_samples(path)
    assert len(blocks) >= 3 and max(blocks) >= 2  # several blocks of several lines decoded at once
    text[25] = text[25].replace(b'"d3"', b'"d24"')
    path.write_bytes(b"\n".join(text))
    fast, slow = _read(path, True, monkeypatch), _read(path, False, monkeypatch)
    _same(fast, slow)
    starts = [k for k, line in zip(np.cumsum([0] + [len(t) + 1 for t in text[:-1]]), text) if line]
    assert fast.offsets.tolist() == starts[:30] and list(fast.ids) == [f"d{k}" for k in range(30)]
