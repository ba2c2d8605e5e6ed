"""Converters and loading: hub-schema rows -> common-schema documents, with the
drop rules, the fixed sample and clear errors for bad input."""

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from lm_eval_rankacc.harness import TaskDataError, load_docs, sample_indices
from lm_eval_rankacc.schema import RowError, dense_ranks
from lm_eval_rankacc.sources import alpaca_farm, hh_rlhf

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HH_REAL = SHARED / "hh-rlhf-harmless-base" / "test.jsonl.gz"
ALPACA_REAL = SHARED / "alpaca-farm-crossannotations-excerpt" / "records.json"
needs_hh = pytest.mark.skipif(not HH_REAL.is_file(), reason="../shared/data (real HH-RLHF) is absent")
needs_alpaca = pytest.mark.skipif(not ALPACA_REAL.is_file(), reason="../shared/data (Alpaca Farm excerpt) is absent")


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


# ------------------------------------------------------------------ HH-RLHF
def test_hh_split_and_drop():
    rows = [
        {"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: go away"},
        {"chosen": "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: d",
         "rejected": "\n\nHuman: a\n\nAssistant: X\n\nHuman: c\n\nAssistant: e"},
        {"chosen": "\n\nHuman: q\n\nAssistant:", "rejected": "\n\nHuman: q\n\nAssistant: no"},
    ]
    conv = hh_rlhf.convert(rows, "test")
    assert conv.dropped == Counter({hh_rlhf.DROP_PREFIX: 1})
    first, empty = conv.docs
    assert first["prompt"] == "\n\nHuman: hi\n\nAssistant:"
    assert first["responses"] == ["hello", "go away"] and first["ranks"] == [1, 2]
    assert first["prompt"] + " " + first["responses"][0] == rows[0]["chosen"]
    assert first["id"] == "test/0" and empty["id"] == "test/2"
    assert empty["responses"] == ["", "no"]


@pytest.mark.parametrize(
    "row, field, message",
    [
        ({"chosen": "\n\nHuman: x\n\nAssistant: y"}, "rejected", "is missing"),
        ({"chosen": 3, "rejected": "\n\nHuman: x\n\nAssistant: y"}, "chosen", "expected a string, got int"),
        ({"chosen": "no turns", "rejected": "\n\nHuman: x\n\nAssistant: y"}, "chosen", "has no"),
        ({"chosen": None, "rejected": "\n\nHuman: x\n\nAssistant: y"}, "chosen", "expected a string, got null"),
        (["not", "an", "object"], "chosen", "row is not an object"),
    ],
)
def test_hh_malformed_rows_name_row_and_field(tmp_path, row, field, message):
    good = {"chosen": "\n\nHuman: x\n\nAssistant: y", "rejected": "\n\nHuman: x\n\nAssistant: z"}
    path = write_jsonl(tmp_path / "t.jsonl", [good, row])
    with pytest.raises(TaskDataError) as err:
        load_docs(source="hh_rlhf", task="rankacc_hh_rlhf_test", data_files=path)
    text = str(err.value)
    assert text.startswith("rankacc_hh_rlhf_test: ")
    assert "row 1" in text and f"'{field}'" in text and message in text


@needs_hh
def test_hh_real_harmless_test_split():
    docs = load_docs(source="hh_rlhf", task="t", data_files=str(HH_REAL), sample_size=0)["test"]
    assert len(docs) == 2312 - 5
    with gzip.open(HH_REAL, "rt") as f:
        rows = [json.loads(line) for line in f]
    by_id = {d["id"]: d for d in docs}
    kept = 0
    for i, row in enumerate(rows):  # independent check of the split rule
        k = "\n\nAssistant:"
        pc, pr = row["chosen"].rsplit(k, 1)[0], row["rejected"].rsplit(k, 1)[0]
        if pc != pr:
            assert f"test/{i}" not in by_id
            continue
        kept += 1
        d = by_id[f"test/{i}"]
        assert d["prompt"] + " " + d["responses"][0] == row["chosen"] or d["responses"][0] == ""
        assert d["prompt"] + " " + d["responses"][1] == row["rejected"] or d["responses"][1] == ""
    assert kept == len(docs)
    sample = load_docs(source="hh_rlhf", task="t", data_files=str(HH_REAL))["test"]
    again = load_docs(source="hh_rlhf", task="t", data_files=str(HH_REAL), seed=0)["test"]
    other = load_docs(source="hh_rlhf", task="t", data_files=str(HH_REAL), seed=1)["test"]
    assert len(sample) == 1000 and sample["id"] == again["id"] and sample["id"] != other["id"]


# ------------------------------------------------------------------ Alpaca Farm
def alpaca_row(instr, o1, o2, pref, rater=0):
    return {"instruction": instr, "output_1": o1, "output_2": o2, "preference": pref, "annotator_index": rater}


def test_alpaca_grouping_votes_swaps_and_ties():
    rows = [
        alpaca_row("I", "A", "B", 1), alpaca_row("I", "A", "B", 1),
        alpaca_row("I", "B", "A", 1),  # swapped: a vote for B
        alpaca_row("I", "A", "B", 2),  # 2 for A, 2 for B: a tie
        alpaca_row("J", "C", "D", 2), alpaca_row("J", "C", "D", 2), alpaca_row("J", "D", "C", 2),
    ]
    conv = alpaca_farm.convert(rows, "val", ties="include")
    tie, pair = conv.docs
    assert tie["responses"] == ["A", "B"] and tie["votes"] == [2, 2] and tie["alpha"] == 0.5 and tie["ranks"] == [1, 1]
    # J: two votes for D, the swapped row votes for C: votes [C, D] = [1, 2]
    assert pair["responses"] == ["C", "D"] and pair["votes"] == [1, 2]
    assert pair["alpha"] == pytest.approx(1 / 3) and pair["ranks"] == [2, 1]
    excl = alpaca_farm.convert(rows, "val", ties="exclude")
    assert [d["id"] for d in excl.docs] == [pair["id"]]
    assert excl.dropped == Counter({alpaca_farm.DROP_TIE: 1})


@pytest.mark.parametrize("pref", [0, 3, 1.5, "1", None, True])
def test_alpaca_unknown_preference_code(tmp_path, pref):
    path = tmp_path / "x.json"
    path.write_text(json.dumps([alpaca_row("I", "A", "B", 1), alpaca_row("I", "A", "B", pref)]))
    with pytest.raises(TaskDataError, match=r"rankacc_alpaca_farm_val: .*row 1: field 'preference': unknown preference code"):
        load_docs(source="alpaca_farm", task="rankacc_alpaca_farm_val", data_files=str(path))


@needs_alpaca
def test_alpaca_real_excerpt():
    records = json.loads(ALPACA_REAL.read_text())
    docs = load_docs(source="alpaca_farm", task="t", data_files=str(ALPACA_REAL), sample_size=0)["test"]
    votes = {}  # independent count, keyed by the unordered pair
    for r in records:
        key = (r["instruction"], frozenset([r["output_1"], r["output_2"]]))
        winner = r["output_1"] if r["preference"] == 1 else r["output_2"]
        votes.setdefault(key, Counter())[winner] += 1
    assert len(docs) == len(votes) == 4
    for d in docs:
        c = votes[(d["prompt"], frozenset(d["responses"]))]
        assert d["votes"] == [c[d["responses"][0]], c[d["responses"][1]]]
        assert sum(d["votes"]) == 4
        assert d["alpha"] == pytest.approx(d["votes"][0] / 4)
        assert d["ranks"] == ([1, 2] if d["alpha"] > 0.5 else [2, 1])


# ------------------------------------------------------------------ options and files
def demo_rows(n):
    return [{"prompt": f"q{i}", "responses": [f"a{i}", f"b{i}"], "ranks": [1, 2]} for i in range(n)]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sample_size": "10"}, "'sample_size' must be an integer >= 0"),
        ({"sample_size": -1}, "'sample_size' must be an integer >= 0"),
        ({"sample_size": True}, "'sample_size' must be an integer >= 0"),
        ({"seed": 1.5}, "'seed' must be an integer >= 0"),
        ({"data_files": 7}, "'data_files' must be a path or glob"),
        ({"data_files": "nowhere/*.jsonl"}, "matches no file"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(TaskDataError, match=message):
        load_docs(source="demo", task="rankacc_demo", **kwargs)


def test_unknown_keys_are_ignored_and_globs_read(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", demo_rows(3))
    write_jsonl(tmp_path / "b.jsonl", demo_rows(2))
    docs = load_docs(source="demo", task="t", data_files=str(tmp_path / "*.jsonl"), pretrained="x", dtype="y")["test"]
    assert len(docs) == 5


def test_duplicate_ids_rejected(tmp_path):
    rows = [dict(r, id="same") for r in demo_rows(2)]
    with pytest.raises(TaskDataError, match="not unique"):
        load_docs(source="demo", task="t", data_files=write_jsonl(tmp_path / "a.jsonl", rows))


@pytest.mark.parametrize(
    "row, field",
    [
        ({"prompt": "q", "responses": ["only one"], "ranks": [1]}, "responses"),
        ({"prompt": "q", "responses": ["a", 5], "ranks": [1, 2]}, "responses[1]"),
        ({"prompt": "", "responses": ["a", "b"], "ranks": [1, 2]}, "prompt"),
        ({"prompt": "q", "responses": "ab", "ranks": [1, 2]}, "responses"),
        ({"prompt": "q", "responses": ["a", "b"], "ranks": [1]}, "ranks"),
        ({"prompt": "q", "responses": ["a", "b"]}, "ranks"),
        ({"prompt": "q", "responses": ["a", "b"], "ranks": [1, 2], "votes": [0, 0]}, "votes"),
    ],
)
def test_demo_schema_errors(tmp_path, row, field):
    path = write_jsonl(tmp_path / "a.jsonl", demo_rows(2) + [row])
    with pytest.raises(TaskDataError, match=rf"row 2: field '{__import__('re').escape(field)}'"):
        load_docs(source="demo", task="rankacc_demo", data_files=path)


def test_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(demo_rows(1)[0]) + "\n" + '{"prompt": "q", "respo')
    with pytest.raises(TaskDataError, match="line 2 is not valid JSON"):
        load_docs(source="demo", task="t", data_files=str(path))


def test_sample_is_fixed_and_in_document_order():
    a = sample_indices(5000, 1000, 0)
    assert a == sample_indices(5000, 1000, 0) and a == sorted(a) and len(set(a)) == 1000
    assert a != sample_indices(5000, 1000, 1)
    assert sample_indices(10, 0, 0) == list(range(10)) == sample_indices(10, 50, 0)


def test_shipped_demo_task_data():
    docs = load_docs(source="demo", task="rankacc_demo", split="demo")["test"]
    assert 30 <= len(docs) <= 60
    assert sum(1 for d in docs if d["ranks"][0] == d["ranks"][1]) >= 3  # has ties
    assert any(d["responses"][0] == d["responses"][1] for d in docs)  # and an identical pair


def test_dense_ranks():
    assert dense_ranks([3.0, 5.0, 3.0, 1.0]) == [2, 1, 2, 3]


def test_row_error_message():
    assert str(RowError(4, "chosen", "is missing")) == "row 4: field 'chosen': is missing"
