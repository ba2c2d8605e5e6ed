"""Big splits in bounded memory (docs/tasks.md, "Loading big splits").

A sample of a big split is loaded in two passes: every row streams through
the converter, which keeps only document ids and drop counts, then only the
sampled documents' rows are read again and converted. Checked here:

* the sample equals the one drawn from a full conversion of the same rows
  (the rows parsed by ``json`` and converted in one go, as before), with the
  same drop counts, for SHP pairs, SHP multi, HH (gzipped) and UltraFeedback;
  the HH drop count also against the split rule worked out independently;
* a converter asked for a light pass keeps nothing but ids;
* the Python memory the loader holds stays below half the file's size
  (SHP multi: 1.5 times, the comments' texts), for a
  local file and for a hub split (a ``datasets.Dataset``, never made a list);
* errors still name the file, the line and the field, and a broken file
  further on is still reported before a bad row (as when files were read whole).
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import tempfile
import tracemalloc
from pathlib import Path

import pytest

from tests.helpers import preference_rows as R
from lm_eval_rankacc.loading.hub import MIRROR_ENV
from lm_eval_rankacc.loading.documents import TaskDataError, documents, sample_indices
from lm_eval_rankacc.sources import get_source


# ------------------------------------------------------------------ generated rows
def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(["sky", "blue", "why", "naïve", "light", "😀", "scatter", "red"]) for _ in range(n))


def shp_rows(n_posts: int, seed: int = 0) -> list[dict]:
    """Posts of 2-6 comments paired up; some pairs listed again (some swapped
    with the other label), some posts whose comments all tie."""
    rng, rows = random.Random(seed), []
    for p in range(n_posts):
        tied = rng.random() < 0.05
        comments = [(f"c{p}_{j}", 3 if tied else rng.randrange(1, 9), 100 if tied else rng.randrange(1, 4))
                    for j in range(rng.randrange(2, 7))]
        texts = {c[0]: words(rng, rng.randrange(1, 60)) for c in comments}
        history = words(rng, rng.randrange(20, 160))
        for i, a in enumerate(comments):
            for b in comments[i + 1:]:
                if rng.random() < 0.6:
                    continue
                label = int(a[1:] > b[1:])
                rows.append(R.shp_row(f"p{p}", a, b, label, history=history, text_a=texts[a[0]], text_b=texts[b[0]]))
                if rng.random() < 0.08:
                    again = label if rng.random() < 0.5 else 1 - label
                    rows.append(R.shp_row(f"p{p}", b, a, 1 - again, history=history,
                                          text_a=texts[b[0]], text_b=texts[a[0]]))
    return rows


def hh_rows(n: int, seed: int = 0) -> list[dict]:
    """Transcripts; about one in ten differs before the last assistant turn."""
    rng, rows = random.Random(seed), []
    for i in range(n):
        prompt = f"\n\nHuman: {words(rng, 8)} {i}\n\nAssistant:"
        other = prompt if rng.random() > 0.1 else f"\n\nHuman: {words(rng, 3)}\n\nAssistant:"
        rows.append({"chosen": f"{prompt} {words(rng, 6)}", "rejected": f"{other} {words(rng, 6)}"})
    return rows


def uf_rows(n: int, seed: int = 0) -> list[dict]:
    """Rows of 4 completions; some all tied, some with one text under two scores."""
    rng, rows = random.Random(seed), []
    for i in range(n):
        texts = [words(rng, rng.randrange(1, 6)) for _ in range(4)]
        scores = [rng.choice([2.0, 5.0, 7.5, 9.0]) for _ in range(4)]
        if i % 17 == 0:
            scores = [5.0] * 4
        if i % 23 == 0:
            texts[2], scores[2] = texts[0], scores[0] + 1
        rows.append(R.uf_row(f"{words(rng, 5)} {i}", list(zip(texts, scores))))
    return rows


def write(path, rows):
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def full_sample(source, rows, split, sample_size, seed, **options):
    """The sample drawn from one full conversion of the rows read whole by json."""
    conversion = get_source(source).convert(json.loads(json.dumps(rows)), split, **options)
    return [conversion.docs[i] for i in sample_indices(len(conversion.docs), sample_size, seed)], conversion.dropped


CASES = {  # name -> (source, file name, rows, options)
    "shp pairs": ("shp", "shp.jsonl", lambda: shp_rows(300), {"form": "pairs"}),
    "shp multi": ("shp", "shp.jsonl", lambda: shp_rows(300), {"form": "multi"}),
    "hh gz": ("hh_rlhf", "hh.jsonl.gz", lambda: hh_rows(1500), {}),
    "ultrafeedback": ("ultrafeedback", "uf.jsonl", lambda: uf_rows(800), {}),
}


def drop_notes(caplog):
    return sorted(r.getMessage() for r in caplog.records if "dropped" in r.getMessage())


@pytest.mark.parametrize("case", list(CASES))
def test_sample_equals_the_full_conversion(tmp_path, caplog, case):
    source, name, make, options = CASES[case]
    rows = make()
    path = write(tmp_path / name, rows)
    expected, dropped = full_sample(source, rows, "train", 97, 5, **options)
    assert dropped, "the generated rows exercise the drop rules"
    with caplog.at_level(logging.INFO, logger="lm-eval"):
        docs = documents(source=source, task="t", split="train", data_files=str(path), sample_size=97, seed=5,
                         **options)
    assert docs == expected
    n_rows = len(rows)
    assert drop_notes(caplog) == sorted(f"t: dropped {c} of {n_rows} rows: {why}" for why, c in dropped.items())


def test_hh_drop_count_against_the_rule(tmp_path, caplog):
    rows = hh_rows(1500, seed=1)
    path = write(tmp_path / "hh.jsonl.gz", rows)
    def prompt(text):  # the rule, independently: everything before the last assistant turn
        return text.rsplit("\n\nAssistant:", 1)[0]

    differ = sum(prompt(r["chosen"]) != prompt(r["rejected"]) for r in rows)
    with caplog.at_level(logging.INFO, logger="lm-eval"):
        docs = documents(source="hh_rlhf", task="t", split="train", data_files=str(path), sample_size=50, seed=2)
    why = "transcripts differ before the last assistant turn"
    assert drop_notes(caplog) == [f"t: dropped {differ} of 1500 rows: {why}"]
    kept = [i for i, r in enumerate(rows) if prompt(r["chosen"]) == prompt(r["rejected"])]
    assert [d["id"] for d in docs] == [f"train/{kept[k]}" for k in sample_indices(len(kept), 50, 2)]


class LightRows(list):
    light = True


@pytest.mark.parametrize("case", list(CASES))
def test_a_light_pass_keeps_only_ids(case):
    source, _, make, options = CASES[case]
    rows = make()
    full = get_source(source).convert(rows, "train", **options)
    light = get_source(source).convert(LightRows(rows), "train", **options)
    assert light.docs == [d["id"] for d in full.docs] == light.ids()
    assert light.rows == full.rows and light.dropped == full.dropped


def peak_python_bytes(call):
    """Peak Python allocation of ``call()``, modules it imports aside (loaded first by a small run)."""
    sample = R.write_jsonl(Path(tempfile.mkdtemp()) / "warm.jsonl", R.ULTRAFEEDBACK)
    documents(source="ultrafeedback", task="warm", split="train", data_files=str(sample), sample_size=1)
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_loading_a_sample_holds_less_than_the_rows_read_whole(tmp_path):
    rows = shp_rows(2500, seed=3)
    path = write(tmp_path / "shp.jsonl", rows)
    size = path.stat().st_size
    del rows
    for form in ("pairs", "multi"):
        peak = peak_python_bytes(lambda: documents(source="shp", task="t", split="train", data_files=str(path),
                                                   sample_size=100, form=form))
        # read whole, the rows took several times the file; multi holds each comment's text once (its rule needs them)
        assert peak < size * (0.5 if form == "pairs" else 1.5), (form, peak, size)


def test_a_hub_split_is_read_in_batches(monkeypatch, tmp_path):
    import datasets

    rows = uf_rows(3000, seed=4)
    ds = datasets.Dataset.from_list(rows)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **kw: ds)
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    expected, _ = full_sample("ultrafeedback", list(ds), "train", 40, 0)
    size = sum(len(json.dumps(r)) for r in rows)
    docs = []
    peak = peak_python_bytes(lambda: docs.extend(documents(source="ultrafeedback", task="t", split="train",
                                                           sample_size=40)))
    assert docs == expected
    assert peak < size / 3, (peak, size)


# ------------------------------------------------------------------ errors still name the row
def test_a_bad_row_deep_in_a_big_file_names_its_line(tmp_path):
    rows = shp_rows(300)
    rows[700]["labels"] = 2
    lines = [json.dumps(r) for r in rows]
    lines.insert(10, "")  # a blank line: physical line numbers count it
    (tmp_path / "shp.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(TaskDataError, match=r"^t: .*shp.jsonl: line 702: field 'labels': unknown label 2"):
        documents(source="shp", task="t", split="train", data_files=str(tmp_path / "shp.jsonl"))


def test_a_conflict_names_both_lines(tmp_path):
    rows = shp_rows(300)
    first = rows[0]
    clash = dict(rows[500], post_id=first["post_id"], history=first["history"] + " (edited)")
    rows[500] = clash
    path = write(tmp_path / "shp.jsonl.gz", rows)
    with pytest.raises(TaskDataError, match=r"shp.jsonl.gz: line 501: field 'history': differs from the first row "
                                            r"of the same post 'p0' \(line 1\)"):
        documents(source="shp", task="t", split="train", data_files=str(path), form="multi")


def test_a_bad_option_is_a_task_error(tmp_path):
    path = write(tmp_path / "shp.jsonl", shp_rows(3))
    with pytest.raises(TaskDataError, match=r"^t: form must be one of pairs, multi, got 'bogus'$"):
        documents(source="shp", task="t", split="train", data_files=str(path), form="bogus")


def test_a_broken_file_further_on_comes_before_a_bad_row(tmp_path):
    rows = hh_rows(400)
    rows[3] = {"chosen": "no turn", "rejected": "\n\nAssistant: x"}
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (tmp_path / "a.jsonl").write_text(text + "{not json\n")
    with pytest.raises(TaskDataError, match=r"a.jsonl: line 401: not valid JSON"):
        documents(source="hh_rlhf", task="t", split="train", data_files=str(tmp_path / "a.jsonl"))
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(text.encode())[:-12])  # truncated
    with pytest.raises(TaskDataError, match=r"b.jsonl.gz: not a readable gzip file"):
        documents(source="hh_rlhf", task="t", split="train", data_files=str(tmp_path / "b.jsonl.gz"))
    (tmp_path / "c.jsonl").write_bytes(b'{"chosen": 1}\n' + text.encode() + b'{"x": "\xff"}\n')
    with pytest.raises(TaskDataError, match=r"c.jsonl: line 402: not UTF-8 text"):
        documents(source="hh_rlhf", task="t", split="train", data_files=str(tmp_path / "c.jsonl"))
    (tmp_path / "d.jsonl").write_text(text)
    with pytest.raises(TaskDataError, match=r"t: .*d.jsonl: line 4: field 'chosen': has no"):
        documents(source="hh_rlhf", task="t", split="train", data_files=[str(tmp_path / "d.jsonl")])
