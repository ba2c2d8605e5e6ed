"""Reading lm-eval output folders and matching documents between runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rankacc_samples import TS, doc, write_run, write_samples

from lm_eval_rankacc.runs import RunError, load_run, match_documents, read_samples

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
