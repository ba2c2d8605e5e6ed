"""Converters and loading: hub-schema rows -> common-schema documents, with the
drop rules, the fixed sample and clear errors for bad input."""

import gzip
import io
import json
import logging
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import preference_rows as R
from lm_eval_rankacc.lmeval.dataset import load_docs
from lm_eval_rankacc.loading.documents import TaskDataError, documents, sample_indices
from lm_eval_rankacc.loading.hub import MIRROR_ENV
from lm_eval_rankacc.core.schema import RowError, dense_ranks
from lm_eval_rankacc.sources import alpaca_farm, hh_rlhf
from lm_eval_rankacc.sources.common import DROP_EMPTY
from tests.helpers import paths

SHARED = paths.SHARED_DATA
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
    # the third row's chosen answer is empty: dropped and counted (the empty-response rule)
    assert conv.dropped == Counter({hh_rlhf.DROP_PREFIX: 1, DROP_EMPTY: 1})
    (first,) = conv.docs
    assert first["prompt"] == "\n\nHuman: hi\n\nAssistant:"
    assert first["responses"] == ["hello", "go away"] and first["ranks"] == [1, 2]
    assert first["prompt"] + " " + first["responses"][0] == rows[0]["chosen"]
    assert first["id"] == "test/0"


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
    assert text.startswith(f"rankacc_hh_rlhf_test: {path}: line 2: field '{field}': {message}"), text


@needs_hh
def test_hh_real_harmless_test_split():
    docs = load_docs(source="hh_rlhf", task="t", data_files=str(HH_REAL), sample_size=0)["test"]
    # 5 transcripts differ before the last assistant turn, 4 have an empty final answer
    assert len(docs) == 2312 - 5 - 4
    with gzip.open(HH_REAL, "rt") as f:
        rows = [json.loads(line) for line in f]
    by_id = {d["id"]: d for d in docs}
    kept = empty = 0
    for i, row in enumerate(rows):  # independent check of the split rule and the empty-response rule
        k = "\n\nAssistant:"
        (pc, rc), (pr, rr) = row["chosen"].rsplit(k, 1), row["rejected"].rsplit(k, 1)
        if pc != pr or not rc.strip() or not rr.strip():
            empty += pc == pr
            assert f"test/{i}" not in by_id
            continue
        kept += 1
        d = by_id[f"test/{i}"]
        assert d["prompt"] + " " + d["responses"][0] == row["chosen"]
        assert d["prompt"] + " " + d["responses"][1] == row["rejected"]
    assert kept == len(docs) and empty == 4
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
    with pytest.raises(TaskDataError, match=r"rankacc_alpaca_farm_val: .*x.json: record 2: field 'preference': unknown preference code"):
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


def test_duplicate_ids_name_the_ids_and_their_lines(tmp_path):
    rows = [dict(r, id="same") for r in demo_rows(2)] + demo_rows(1) + [dict(demo_rows(1)[0], id="same")]
    path = write_jsonl(tmp_path / "a.jsonl", rows)
    with pytest.raises(TaskDataError) as err:
        load_docs(source="demo", task="t", data_files=path)
    assert str(err.value) == f"t: document ids are not unique: 'same' ({path}: line 1, {path}: line 2, {path}: line 4)"


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
    with pytest.raises(TaskDataError, match=rf"a.jsonl: line 3: field '{__import__('re').escape(field)}'"):
        load_docs(source="demo", task="rankacc_demo", data_files=path)


def test_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(demo_rows(1)[0]) + "\n" + '{"prompt": "q", "respo')
    with pytest.raises(TaskDataError, match=r"^t: .*a.jsonl: line 2: not valid JSON"):
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


# ------------------------------------------------------------------ files: read once, clear errors, file and line
def write_parquet(path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


def parquet_bytes(rows):
    buffer = io.BytesIO()
    write_parquet(buffer, rows)
    return buffer.getvalue()


def fixture_file(folder, hub_mirror, source):
    """(split, the one data file in ``folder``): the hub_mirror's rows of
    ``source`` in its hub schema, the Stack Exchange rows as parquet."""
    folder.mkdir()
    if source == "stack_exchange":
        return "train", write_parquet(folder / "train-00000-of-00001.parquet", R.STACK_EXCHANGE)
    split = {"hh_rlhf": "test", "alpaca_farm": "val"}.get(source, "train")
    (mirrored,) = (hub_mirror / source).glob("*" if source == "alpaca_farm" else f"{split}.*")
    (folder / mirrored.name).write_bytes(mirrored.read_bytes())
    return split, str(folder / mirrored.name)


def summary(docs):
    return [(d["id"], d["responses"], d["ranks"], d["votes"]) for d in docs]


@pytest.mark.parametrize("source", ["hh_rlhf", "ultrafeedback", "stack_exchange", "alpaca_farm"])
def test_a_file_named_again_is_read_once(tmp_path, hub_mirror, caplog, source):
    split, path = fixture_file(tmp_path / "data", hub_mirror, source)
    with caplog.at_level(logging.WARNING, logger="lm-eval"):
        once = summary(documents(source=source, task="t", split=split, data_files=path))
    drops = list(caplog.messages)
    link = tmp_path / "link" / Path(path).name
    link.parent.mkdir()
    link.symlink_to(path)
    copy = tmp_path / "copy" / Path(path).name
    copy.parent.mkdir()
    copy.write_bytes(Path(path).read_bytes())
    folder = str(Path(path).parent / "*")
    for data_files in ([path, path], [folder, path], [path, str(link)], [path, str(copy)]):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="lm-eval"):
            again = summary(documents(source=source, task="t", split=split, data_files=data_files))
        assert again == once, data_files  # same documents, same votes (Alpaca Farm), same ids
        (note,) = [m for m in caplog.messages if "read once" in m]
        assert [m for m in caplog.messages if "read once" not in m] == drops  # rows not counted twice
        expected = f"t: {copy} has the same content as {path}" if data_files[1] == str(copy) else (
            f"t: data_files names {path} more than once" if data_files[1] == path
            else f"t: data_files names {path} again as {link}")
        assert note == f"{expected}: read once"


def test_the_mirror_holds_one_file_per_split(tmp_path, monkeypatch):
    (tmp_path / "ultrafeedback").mkdir()
    R.write_jsonl(tmp_path / "ultrafeedback" / "train.jsonl", R.ULTRAFEEDBACK)
    write_parquet(tmp_path / "ultrafeedback" / "train.parquet", R.ULTRAFEEDBACK)
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path))
    with pytest.raises(TaskDataError, match=r"^t: RANKACC_DATA_DIR holds 2 files for split 'train' .*: keep one$"):
        documents(source="ultrafeedback", task="t", split="train")


HH_ROWS = [
    {"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: go away"},
    {"chosen": "\n\nHuman: caf\u00e9?\n\nAssistant: oui", "rejected": "\n\nHuman: caf\u00e9?\n\nAssistant: non"},
]


def hh_jsonl(rows=HH_ROWS):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


BAD_FILES = {  # name -> (file name, bytes, message after "<task>: <file>: ")
    "truncated gz": ("t.jsonl.gz", lambda: gzip.compress(hh_jsonl())[:-12], r"not a readable gzip file \(Compressed file ended"),
    "not gzip": ("t.jsonl.gz", hh_jsonl, r"not a readable gzip file \(Not a gzipped file"),
    "non-UTF-8 jsonl": ("t.jsonl", lambda: hh_jsonl() + b"\n" + hh_jsonl().replace(b"caf\xc3\xa9", b"caf\xe9"),
                        r"line 5: not UTF-8 text \(byte 0xe9 at column \d+\)$"),
    "non-UTF-8 gzipped json": ("t.json.gz", lambda: gzip.compress(b'[\n{"chosen": "\xff"}]'), r"line 2: not UTF-8 text \(byte 0xff at column 13\)$"),
    "corrupt parquet": ("t.parquet", lambda: b"PAR1" + b"\0" * 40, r"not a readable parquet file \("),
    "truncated parquet": ("t.parquet", lambda: parquet_bytes(HH_ROWS)[:-100], r"not a readable parquet file \("),
    "bad json": ("t.json", lambda: b'[{"chosen": 1},\n {"chosen": ]', r"line 2: not valid JSON \(Expecting value, column 13\)$"),
    "json not a list": ("t.json", lambda: b'{"a": 1}', r"expected a JSON list of records"),
    "json nested too deeply": ("t.json", lambda: b"[" * 100_000, r"not valid JSON \(nested too deeply\)$"),
    "bad jsonl line": ("t.jsonl", lambda: hh_jsonl() + b"\n{oops\n", r"line 4: not valid JSON \(Expecting property name"),
    "not a data file": ("t.csv", lambda: b"chosen,rejected\n", r"not a data file: expected \.json, \.jsonl"),
    "empty parquet file": ("t.parquet", lambda: b"", r"not a readable parquet file"),
}
if hasattr(sys, "get_int_max_str_digits"):  # Python >= 3.10.7: json.loads raises a bare ValueError
    BAD_FILES["number too long"] = ("t.jsonl", lambda: b'{"chosen": ' + b"9" * 5000 + b"}\n",
                                    r"line 1: not valid JSON \(Exceeds")


@pytest.mark.parametrize("case", BAD_FILES)
def test_unreadable_files_name_the_task_and_the_file(tmp_path, monkeypatch, case):
    name, data, message = BAD_FILES[case]
    path = tmp_path / name
    path.write_bytes(data())
    with pytest.raises(TaskDataError) as err:
        documents(source="hh_rlhf", task="rankacc_hh_rlhf_test", data_files=str(path))
    assert re.match(rf"rankacc_hh_rlhf_test: {re.escape(str(path))}: {message}", str(err.value)), str(err.value)
    assert err.value.__cause__ is None and (err.value.__context__ is None or err.value.__suppress_context__)
    # a mirror file goes through the same reader
    mirror = tmp_path / "mirror" / "hh_rlhf"
    mirror.mkdir(parents=True)
    (mirror / name.replace("t.", "test.")).write_bytes(data())
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path / "mirror"))
    if name.endswith(".csv"):  # not a data file: the mirror does not offer it (the hub would be read)
        return
    with pytest.raises(TaskDataError, match=rf"^rankacc_hh_rlhf_test: {re.escape(str(mirror))}/test\.\S+: {message}"):
        documents(source="hh_rlhf", task="rankacc_hh_rlhf_test")


@pytest.mark.parametrize("name", ["t.jsonl", "t.json", "t.jsonl.gz", "t.json.gz"])
def test_a_utf8_byte_order_mark_is_accepted(tmp_path, name):
    text = hh_jsonl() if ".jsonl" in name else json.dumps(HH_ROWS).encode("utf-8")
    data = b"\xef\xbb\xbf" + text
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    docs = documents(source="hh_rlhf", task="t", data_files=str(path))
    assert [d["responses"] for d in docs] == [["hello", "go away"], ["oui", "non"]]


BAD_HH = {"chosen": "no turns", "rejected": "\n\nHuman: x\n\nAssistant: y"}


def test_row_errors_name_the_file_and_its_line(tmp_path):
    a = tmp_path / "a.jsonl"
    a.write_text("\n" + hh_jsonl().decode() + "\n\n" + json.dumps(BAD_HH) + "\n")  # blank lines 1, 4 and 5
    with pytest.raises(TaskDataError, match=rf"^t: {re.escape(str(a))}: line 6: field 'chosen': has no "):
        documents(source="hh_rlhf", task="t", data_files=str(a))
    a.write_text("\n" + hh_jsonl().decode() + "\n")
    b = tmp_path / "b.jsonl"
    b.write_text(json.dumps(BAD_HH) + "\n")  # line 1 of the second file, not "row 2"
    with pytest.raises(TaskDataError, match=rf"^t: {re.escape(str(b))}: line 1: field 'chosen': has no "):
        documents(source="hh_rlhf", task="t", data_files=[str(a), str(b)])
    gz = tmp_path / "c.jsonl.gz"
    gz.write_bytes(gzip.compress(b"\n\n" + json.dumps(BAD_HH).encode()))
    with pytest.raises(TaskDataError, match=rf"^t: {re.escape(str(gz))}: line 3: field 'chosen'"):
        documents(source="hh_rlhf", task="t", data_files=[str(a), str(gz)])
    listed = tmp_path / "d.json"
    listed.write_text(json.dumps(HH_ROWS + [BAD_HH], indent=2))
    with pytest.raises(TaskDataError, match=rf"^t: {re.escape(str(listed))}: record 3: field 'chosen'"):
        documents(source="hh_rlhf", task="t", data_files=[str(a), str(listed)])
    table = write_parquet(tmp_path / "e.parquet", HH_ROWS + [BAD_HH])
    with pytest.raises(TaskDataError, match=rf"^t: {re.escape(table)}: row 3: field 'chosen'"):
        documents(source="hh_rlhf", task="t", data_files=[str(b).replace("b.jsonl", "a.jsonl"), table])


def test_hub_row_errors_count_from_one(monkeypatch):
    import datasets

    monkeypatch.delenv(MIRROR_ENV, raising=False)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **kw: HH_ROWS + [BAD_HH])
    with pytest.raises(TaskDataError, match=r"^t: Anthropic/hh-rlhf \(test\): row 3: field 'chosen'"):
        documents(source="hh_rlhf", task="t", split="test")


def test_grouping_converters_name_the_offending_row(tmp_path):
    # Alpaca Farm groups rows by pair: a bad vote is reported at its own row, in its own file
    rows = [alpaca_row("I", "A", "B", 1), alpaca_row("I", "B", "A", 2), alpaca_row("J", "C", "D", 1)]
    a = tmp_path / "a.json"
    a.write_text(json.dumps(rows))
    b = tmp_path / "b.jsonl"
    write_jsonl(b, [alpaca_row("J", "C", "D", 2), alpaca_row("I", "A", "B", 7)])
    with pytest.raises(TaskDataError, match=rf"^t: {re.escape(str(b))}: line 2: field 'preference'"):
        documents(source="alpaca_farm", task="t", split="val", data_files=[str(a), str(b)])
    # SHP multi: a comment that contradicts its first listing names both places
    write_jsonl(a.with_suffix(".jsonl"), R.SHP)
    write_jsonl(b, [R.shp_row("p2", R.D1, R.D2, 1), R.shp_row("p1", ("c1", 11, 1_600_000_200), R.C3, 1)])
    with pytest.raises(TaskDataError) as err:
        documents(source="shp", task="t", form="multi", data_files=[str(a.with_suffix(".jsonl")), str(b)])
    assert str(err.value) == (
        f"t: {b}: line 2: field 'score_A': comment 'c1' has score 11 here but 10 in its first row "
        f"({a.with_suffix('.jsonl')}: line 1)"
    )


@pytest.mark.parametrize(
    "row, field, message",
    [
        (alpaca_row("  ", "A", "B", 1), "instruction", "is empty"),
        (dict(alpaca_row("I", "A", "B", 1), input=3), "input", "expected a string, got int"),
    ],
)
def test_alpaca_reports_its_own_field_names(tmp_path, row, field, message):
    path = tmp_path / "x.json"
    path.write_text(json.dumps([alpaca_row("I", "A", "B", 1), row]))
    with pytest.raises(TaskDataError) as err:
        documents(source="alpaca_farm", task="t", split="val", data_files=str(path))
    assert str(err.value) == f"t: {path}: record 2: field '{field}': {message}"


@pytest.mark.parametrize("field", ["chosen", "rejected"])
def test_an_unpaired_surrogate_escape_is_a_row_error(tmp_path, field):
    bad = dict(HH_ROWS[1])
    bad[field] = bad[field] + "\ud800"  # json.dumps writes the escape "\\ud800"
    path = write_jsonl(tmp_path / "s.jsonl", [HH_ROWS[0], bad])
    with pytest.raises(TaskDataError) as err:
        load_docs(source="hh_rlhf", task="t", data_files=path)
    assert str(err.value).startswith(f"t: {path}: line 2: field '{field}': holds an unpaired surrogate '\\ud800'")


def test_fields_votes_without_a_vote_name_the_votes_field(tmp_path):
    rows = [{"q": "Q", "answers": ["a", "b"], "s": [2, 1], "raters": [0, 0]}]
    with pytest.raises(TaskDataError, match=r"line 1: field 'raters': expected counts >= 0 with at least one vote"):
        documents(source="fields", task="t", data_files=write_jsonl(tmp_path / "f.jsonl", rows), prompt_field="q",
                  responses_field="answers", score_field="s", votes_field="raters")


def test_sample_size_above_the_data_says_all_are_used(tmp_path, caplog):
    path = write_jsonl(tmp_path / "a.jsonl", demo_rows(5))
    with caplog.at_level(logging.INFO, logger="lm-eval"):
        assert len(documents(source="demo", task="t", data_files=path, sample_size=50)) == 5
    assert "t: sample_size 50 is more than the 5 documents: all 5 are used" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="lm-eval"):
        documents(source="demo", task="t", data_files=path, sample_size=0)
        documents(source="demo", task="t", data_files=path, sample_size=5)
    assert "sample_size" not in caplog.text
