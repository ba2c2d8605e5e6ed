"""Reading lm-eval output folders and matching documents between runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.helpers.rankacc_samples import TS, doc, write_run, write_samples

from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.outputs.matching import match_documents
from lm_eval_rankacc.outputs.runs import load_run
from lm_eval_rankacc.outputs.samples import read_samples

TS_OLD = "2025-12-31T23-59-59.000001"
DOCS = [doc(f"d{k}", [-1.0 - k, -2.0], [1, 2]) for k in range(4)]


def test_every_way_to_name_a_run(tmp_path):
    sub = write_run(tmp_path / "out", {"rankacc_a": DOCS, "rankacc_b": DOCS[:2]})
    for path in (tmp_path / "out", sub, sub / f"results_{TS}.json"):
        run = load_run(path)
        assert run.folder == sub and run.label == "model-a"
        assert list(run.tasks) == ["rankacc_a", "rankacc_b"]
        assert len(run.tasks["rankacc_a"]) == 4
    single = load_run(sub / f"samples_rankacc_b_{TS}.jsonl")
    assert list(single.tasks) == ["rankacc_b"] and single.label == "model-a"
    ts = single.tasks["rankacc_b"]
    assert ts.ids == ["d0", "d1"] and ts.loglik == [[-1.0, -2.0], [-2.0, -2.0]]
    assert np.isnan(ts.array("alpha", [0, 1])).all()  # no rater proportions


def test_newest_samples_file_per_task(tmp_path):
    sub = write_run(tmp_path / "out", {"rankacc_a": DOCS})
    write_samples(sub / f"samples_rankacc_a_{TS_OLD}.jsonl", DOCS[:1])
    run = load_run(sub)
    assert len(run.tasks["rankacc_a"]) == 4
    assert any(TS_OLD in n and "ignored" in n for n in run.notes)


def test_task_patterns(tmp_path):
    write_run(tmp_path / "out", {"rankacc_a": DOCS, "rankacc_b": DOCS})
    assert list(load_run(tmp_path / "out", "rankacc_b").tasks) == ["rankacc_b"]
    assert list(load_run(tmp_path / "out", "rankacc_*").tasks) == ["rankacc_a", "rankacc_b"]
    with pytest.raises(RunError, match="no rankacc task matches --tasks pattern 'nope'"):
        load_run(tmp_path / "out", "rankacc_a,nope")
    assert load_run(tmp_path / "out", "nope", require_match=False).tasks == {}


def test_several_models_is_ambiguous(tmp_path):
    write_run(tmp_path / "out", {"rankacc_a": DOCS}, model="m1")
    write_run(tmp_path / "out", {"rankacc_a": DOCS}, model="m2")
    with pytest.raises(RunError, match=r"2 models \(m1, m2\); pass one model folder"):
        load_run(tmp_path / "out")


def test_run_without_log_samples(tmp_path):
    sub = write_run(tmp_path / "out", {"rankacc_a": DOCS}, samples=False)
    for path in (tmp_path / "out", sub, sub / f"results_{TS}.json"):
        with pytest.raises(RunError, match="--log_samples"):
            load_run(path)


def test_missing_and_empty(tmp_path):
    with pytest.raises(RunError, match="no such file or folder"):
        load_run(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="no lm-eval output"):
        load_run(tmp_path / "empty")
    empty = tmp_path / f"samples_rankacc_a_{TS}.jsonl"
    empty.write_text("")
    with pytest.raises(RunError, match="holds no samples"):
        load_run(empty)


def test_malformed_and_truncated_files(tmp_path):
    sub = write_run(tmp_path / "out", {"rankacc_a": DOCS})
    path = sub / f"samples_rankacc_a_{TS}.jsonl"
    good = path.read_text()
    lines = good.splitlines(keepends=True)
    path.write_text(lines[0] + lines[1][: len(lines[1]) // 2])  # cut mid-line
    with pytest.raises(RunError, match=r"line 2: not valid JSON.*truncated"):
        load_run(sub)
    path.write_text("".join(lines[:3]))  # whole lines missing: the results file knows 4 were scored
    with pytest.raises(RunError, match="holds 3 documents but lm-eval scored 4"):
        load_run(sub)
    rec = json.loads(lines[1])
    del rec["scores"]["loglik"][1]
    path.write_text(lines[0] + json.dumps(rec) + "\n")
    with pytest.raises(RunError, match="line 2: scores need loglik, n_tokens and n_bytes for each of the 2"):
        read_samples(path)
    rec = json.loads(lines[1])
    rec["doc"]["ranks"] = [1]
    path.write_text(lines[0] + json.dumps(rec) + "\n")
    with pytest.raises(RunError, match="line 2: doc needs >= 2 responses"):
        read_samples(path)
    path.write_text(lines[0] + lines[0])
    with pytest.raises(RunError, match="line 2: document id 'd0' already on line 1"):
        read_samples(path)
    path.write_text(lines[0] + "[1, 2]\n")
    with pytest.raises(RunError, match="line 2: not a JSON object"):
        read_samples(path)


def test_not_a_rankacc_task(tmp_path):
    other = {"doc_id": 0, "doc": {"question": "q", "choices": ["a", "b"]}, "resps": [[["-1.0", "False"]]],
             "filtered_resps": [], "acc": 1.0, "doc_hash": "x"}
    path = tmp_path / "m" / f"samples_arc_easy_{TS}.jsonl"
    path.parent.mkdir()
    path.write_text(json.dumps(other) + "\n")
    with pytest.raises(RunError, match="task 'arc_easy' is not a rankacc task"):
        load_run(path)
    with pytest.raises(RunError, match=r"no samples of a rankacc task \(only arc_easy\)"):
        load_run(tmp_path / "m")
    write_samples(tmp_path / "m" / f"samples_rankacc_a_{TS}.jsonl", DOCS)
    run = load_run(tmp_path / "m")
    assert list(run.tasks) == ["rankacc_a"]
    assert any("not rankacc tasks, left out: arc_easy" in n for n in run.notes)


def test_match_by_id_and_hash_not_position(tmp_path):
    a = write_run(tmp_path / "a", {"rankacc_a": DOCS}, model="a")
    b = write_run(tmp_path / "b", {"rankacc_a": DOCS[::-1]}, model="b")
    ta, tb = load_run(a).tasks["rankacc_a"], load_run(b).tasks["rankacc_a"]
    order = match_documents(ta, tb)
    assert order.tolist() == [3, 2, 1, 0]
    assert [tb.ids[k] for k in order] == ta.ids
    assert np.array_equal(match_documents(ta, ta), np.arange(4))


def test_runs_over_different_documents(tmp_path):
    a = write_run(tmp_path / "a", {"rankacc_a": DOCS}, model="a")
    other = DOCS[:3] + [doc("x9", [-1.0, -2.0], [1, 2])]
    b = write_run(tmp_path / "b", {"rankacc_a": other}, model="b", metadata={"sample_size": 3})
    ta, tb = load_run(a).tasks["rankacc_a"], load_run(b).tasks["rankacc_a"]
    with pytest.raises(RunError) as err:
        match_documents(ta, tb, "REF", "POL")
    msg = str(err.value)
    assert "1 only in REF (d3)" in msg and "1 only in POL (x9)" in msg and "sample_size None vs 3" in msg
    assert "\n" not in msg
    # same id, other content (another task version): caught by doc_hash
    changed = DOCS[:3] + [doc("d3", [-1.0, -2.0], [2, 1])]
    c = write_run(tmp_path / "c", {"rankacc_a": changed}, model="c", version=2.0)
    with pytest.raises(RunError, match=r"1 with the same id but different content/doc_hash \(d3\).*version 1.0 vs 2.0"):
        match_documents(ta, load_run(c).tasks["rankacc_a"])
    # a sub-sample is not silently compared either
    d = write_run(tmp_path / "d", {"rankacc_a": DOCS[:2]}, model="d")
    with pytest.raises(RunError, match="2 only in REF"):
        match_documents(ta, load_run(d).tasks["rankacc_a"])


# ----------------------------------------------------------------- every field the analyses read (issue 11, item 8)
def _one_bad_line(tmp_path, change) -> tuple:
    """A run whose line 2 is changed by ``change(record)``; the samples file."""
    sub = write_run(tmp_path / "out", {"rankacc_a": DOCS})
    path = sub / f"samples_rankacc_a_{TS}.jsonl"
    lines = path.read_text().splitlines()
    rec = json.loads(lines[1])
    change(rec)
    lines[1] = json.dumps(rec)
    path.write_text("\n".join(lines) + "\n")
    return sub, path


def _set(where: str, key: str, value):
    def change(rec):
        target = rec if where == "" else rec[where]
        if value is KeyError:
            del target[key]
        else:
            target[key] = value
    return change


@pytest.mark.parametrize("where, key, value, message", [
    ("scores", "n_bytes", [None, 7], "field 'scores.n_bytes[0]': expected a positive integer, got null"),
    ("scores", "n_bytes", [0, 7], "field 'scores.n_bytes[0]': expected a positive integer, got 0"),
    ("scores", "n_bytes", KeyError, "field 'scores.n_bytes' is missing"),
    ("scores", "n_tokens", ["5", 3], "field 'scores.n_tokens[0]': expected a positive integer or null"),
    ("scores", "n_tokens", [5, 2.5], "field 'scores.n_tokens[1]': expected a positive integer or null"),
    ("scores", "n_tokens", [True, 3], "field 'scores.n_tokens[0]'"),
    ("scores", "n_tokens", [-1, 3], "field 'scores.n_tokens[0]'"),
    ("scores", "loglik", [True, -1.0],
     "field 'scores.loglik[0]': expected a log-probability: a number <= 0 (NaN and -Infinity allowed), got true"),
    ("scores", "loglik", ["-1.0", -1.0], "field 'scores.loglik[0]': expected a log-probability"),
    ("scores", "loglik", [-1.0, None], "field 'scores.loglik[1]': expected a log-probability"),
    # a positive log-likelihood is no log-probability (issue 20, item 6): refused, not analysed
    ("scores", "loglik", [-1.0, 0.5], "field 'scores.loglik[1]': expected a log-probability: a number <= 0"),
    ("scores", "loglik", [1e400, -1.0], "field 'scores.loglik[0]': expected a log-probability: a number <= 0"),
    ("scores", "loglik", "-1.0", "scores need loglik, n_tokens and n_bytes for each of the 2 responses"),
    ("", "scores", [1, 2], "field 'scores': expected an object"),
    ("doc", "ranks", [0, 1], "field 'doc.ranks[0]': expected an integer >= 1, got 0"),
    ("doc", "ranks", [1.0, 2], "field 'doc.ranks[0]': expected an integer >= 1, got 1.0"),
    ("doc", "ranks", [True, 2], "field 'doc.ranks[0]'"),
    ("doc", "ranks", "12", "doc needs >= 2 responses and one integer rank per response (field 'doc.ranks'"),
    ("doc", "alpha", 1.5, "field 'doc.alpha': expected a share in [0, 1] or null, got 1.5"),
    ("doc", "alpha", True, "field 'doc.alpha'"),
    ("doc", "alpha", "0.5", "field 'doc.alpha'"),
    ("doc", "responses", ["a", None], "field 'doc.responses[1]': expected a string, got null"),
    ("doc", "prompt", None, "field 'doc.prompt': expected a string, got null"),
    ("doc", "prompt", KeyError, "doc has no 'prompt'"),
    ("doc", "id", [1], "field 'doc.id'"),
    ("doc", "id", None, "field 'doc.id'"),
    ("", "doc_hash", 7, "field 'doc_hash': expected a non-empty string"),
])
def test_every_field_the_analyses_read_is_checked(tmp_path, where, key, value, message):
    sub, path = _one_bad_line(tmp_path, _set(where, key, value))
    for source in (path, sub):  # the file itself, and the run folder
        with pytest.raises(RunError) as err:
            load_run(source)
        text = str(err.value)
        assert text.startswith(f"{path}: line 2: ") and message in text and "\n" not in text


def test_nan_infinity_and_unknown_token_counts_are_valid(tmp_path):
    sub, path = _one_bad_line(tmp_path, _set("scores", "n_tokens", [None, None]))
    text = path.read_text().replace("[-2.0, -2.0]", "[NaN, -Infinity]")  # d1's log-likelihoods
    path.write_text(text)
    ts = load_run(sub).tasks["rankacc_a"]
    assert np.isnan(ts.loglik[1][0]) and ts.loglik[1][1] == -np.inf
    assert ts.n_tokens[1] == [None, None] and not ts.has_token_counts


def test_non_utf8_bytes_name_line_and_field(tmp_path):
    sub = write_run(tmp_path / "out", {"rankacc_a": DOCS})
    path = sub / f"samples_rankacc_a_{TS}.jsonl"
    data = path.read_bytes()
    at = data.index(b'"d0"') + 2  # inside doc.id of line 1: the folder's first look at the file
    path.write_bytes(data[:at] + b"\xff" + data[at:])
    for source in (sub, path):
        with pytest.raises(RunError, match=r"line 1: field 'doc.id': not UTF-8 text \(byte 0xff at column \d+\)"):
            load_run(source)
    at = data.index(b"response 1 of d2")
    path.write_bytes(data[:at] + b"\xc3\x28" + data[at:])  # an invalid two-byte sequence on line 3
    with pytest.raises(RunError, match=r"line 3: field 'doc.responses\[1\]': not UTF-8 text \(byte 0xc3"):
        load_run(sub)
    lines = data.split(b"\n")
    path.write_bytes(b"\n".join([lines[0], b"\x80" + lines[1], *lines[2:]]))  # outside any string
    with pytest.raises(RunError, match=r"line 2: not UTF-8 text \(byte 0x80 at column 1\)"):
        load_run(sub)


def test_lines_split_on_newlines_only(tmp_path):
    """A JSON string may hold U+2028 / U+0085 (lm-eval writes them raw): not a line break."""
    docs = [doc("d0", [-1.0, -2.0], [1, 2], responses=["one\u2028line", "two\x85lines\r"]), *DOCS[1:]]
    sub = write_run(tmp_path / "out", {"rankacc_a": docs})
    ts = load_run(sub).tasks["rankacc_a"]
    assert ts.docs[0]["responses"] == ["one\u2028line", "two\x85lines\r"] and len(ts) == 4


def test_empty_and_predict_only_samples_are_named_as_such(tmp_path):
    sub = write_run(tmp_path / "out", {"rankacc_a": DOCS, "rankacc_b": DOCS})
    path = sub / f"samples_rankacc_b_{TS}.jsonl"
    path.write_text("")
    with pytest.raises(RunError, match=r"samples_rankacc_b_.*: holds no samples \(an empty or interrupted run\?\)"):
        load_run(sub)
    assert list(load_run(sub, "rankacc_a").tasks) == ["rankacc_a"]  # --tasks leaves it aside
    # lm_eval --predict_only: the rankacc document, its resps, no metrics and no scores
    lines = (sub / f"samples_rankacc_a_{TS}.jsonl").read_text().splitlines()
    recs = [json.loads(line) for line in lines]
    for rec in recs:
        for key in ("scores", "invalid", "rank_acc", "rank_acc_norm", "rank_acc_bytes"):
            rec.pop(key)
        rec["metrics"] = []
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    for source in (sub, path):
        with pytest.raises(RunError, match=r"task 'rankacc_b' was run with lm_eval --predict_only, so its samples "
                                           r"carry no scores: rerun lm_eval without --predict_only"):
            load_run(source)


def test_documents_dropped_as_too_long_are_left_out_and_counted(tmp_path):
    """lm-eval logs a document it dropped (a response longer than the window) with null log-likelihoods."""
    sub, path = _one_bad_line(tmp_path, _set("scores", "loglik", [None, None]))
    run = load_run(sub)  # the results file says 4 documents: 3 scored + 1 dropped
    ts = run.tasks["rankacc_a"]
    assert ts.ids == ["d0", "d2", "d3"] and ts.dropped == ["d1"]
    assert any(n.startswith("rankacc_a: 1 document(s) dropped by lm-eval") and n.endswith("d1") for n in run.notes)
    full = load_run(write_run(tmp_path / "full", {"rankacc_a": DOCS}, model="full")).tasks["rankacc_a"]
    with pytest.raises(RunError, match="1 only in REF \\(d1\\).*OTHER dropped 1 as too long"):
        match_documents(full, ts)


def test_texts_read_back_from_the_file_not_held(tmp_path):
    """The numbers are held compactly; a document's texts are re-read from its
    line (byte offset) only when asked, after a BOM and a NaN line too."""
    entries = [doc("a", [-1.0, float("nan")], [1, 2], alpha=0.75, n_tokens=[3, None], prompt="P\u00e9"),
               doc("b", [-2.0, -3.0], [2, 1], responses=["x\u2028y", "z"])]
    path = write_samples(tmp_path / f"samples_rankacc_a_{TS}.jsonl", entries)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    ts = read_samples(path)
    assert ts.offsets[0] == 0 and ts.offsets[1] == len(path.read_bytes().split(b"\n")[0]) + 1
    assert ts.docs[0]["prompt"] == "P\u00e9" and ts.docs[1]["responses"] == ["x\u2028y", "z"]
    assert ts.docs[0].get("alpha") == 0.75 and ts.docs[1].get("alpha") is None and ts.docs[1]["ranks"] == [2, 1]
    assert ts.n_tokens[0] == [3, None] and ts.n_bytes[1] == [6, 2] and np.isnan(ts.loglik[0][1])
    assert ts.array("ranks", [1, 0]).tolist() == [[2, 1], [1, 2]] and ts.array("n_tokens", [0])[0, 0] == 3.0
