"""lm-eval's file names, and the one rule for the newest samples file of each
task: the analyses (``load_run``) and ``rankacc winrate`` (``newest_samples``)
pick the same file, noted the same way, even where the timestamps' order is
not the names' order."""

from __future__ import annotations

import pytest
from tests.helpers.rankacc_samples import TS, doc, write_samples

from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.outputs.names import (
    newest_per_task,
    newest_samples,
    results_stamp,
    samples_name,
    samples_of_results_file,
    stamp_date,
)
from lm_eval_rankacc.outputs.runs import load_run

#: lm-eval stamps with ``datetime.isoformat()``, which leaves out a zero microsecond: this run
#: started one second before ``TS`` (``...T03-04-05.000006``) and its file name sorts after TS's.
ON_THE_SECOND = TS.split(".")[0]
DOCS = [doc(f"d{k}", [-1.0 - k, -2.0], [1, 2]) for k in range(3)]


def _folder(tmp_path):
    """A model folder holding two runs of ``rankacc_a`` (3 documents at TS, 1 a microsecond-less stamp
    earlier) and one of ``rankacc_b``; the names of ``rankacc_a``'s files sort against their timestamps."""
    folder = tmp_path / "model"
    write_samples(folder / f"samples_rankacc_a_{TS}.jsonl", DOCS)
    write_samples(folder / f"samples_rankacc_a_{ON_THE_SECOND}.jsonl", DOCS[:1])
    write_samples(folder / f"samples_rankacc_b_{ON_THE_SECOND}.jsonl", DOCS[:2])
    names = sorted(p.name for p in folder.iterdir())
    assert names.index(f"samples_rankacc_a_{ON_THE_SECOND}.jsonl") > names.index(f"samples_rankacc_a_{TS}.jsonl")
    assert ON_THE_SECOND < TS
    return folder


def test_the_newest_file_is_the_latest_timestamp_not_the_last_name(tmp_path):
    folder = _folder(tmp_path)
    notes: list[str] = []
    newest = newest_per_task(folder, notes)
    assert newest == {"rankacc_a": folder / f"samples_rankacc_a_{TS}.jsonl",
                      "rankacc_b": folder / f"samples_rankacc_b_{ON_THE_SECOND}.jsonl"}
    assert notes == [f"rankacc_a: older samples file samples_rankacc_a_{ON_THE_SECOND}.jsonl ignored"]


def test_load_run_and_newest_samples_pick_the_same_file_with_the_same_note(tmp_path):
    folder = _folder(tmp_path)
    run = load_run(folder)
    notes: list[str] = []
    files = newest_samples(folder, notes)
    assert {task: ts.path for task, ts in run.tasks.items()} == files
    assert len(run.tasks["rankacc_a"]) == 3  # TS's file, not the one whose name sorts last
    older = f"rankacc_a: older samples file samples_rankacc_a_{ON_THE_SECOND}.jsonl ignored"
    assert notes == [older] and [n for n in run.notes if "older samples file" in n] == [older]
    # an --output_path folder (one model sub-folder) the same way
    assert newest_samples(tmp_path) == files and load_run(tmp_path).notes == run.notes


def test_no_samples_files(tmp_path):
    (tmp_path / f"results_{TS}.json").write_text("{}")
    with pytest.raises(RunError, match="holds lm-eval results but no samples files: rerun lm_eval with --log_samples"):
        newest_per_task(tmp_path, [])


def test_the_samples_files_of_a_results_file(tmp_path):
    folder = _folder(tmp_path)
    results = folder / f"results_{ON_THE_SECOND}.json"
    results.write_text("{}")
    assert [p.name for p in samples_of_results_file(results)] == [
        f"samples_rankacc_a_{ON_THE_SECOND}.jsonl", f"samples_rankacc_b_{ON_THE_SECOND}.jsonl"]
    assert newest_samples(results) == {"rankacc_a": folder / f"samples_rankacc_a_{ON_THE_SECOND}.jsonl",
                                       "rankacc_b": folder / f"samples_rankacc_b_{ON_THE_SECOND}.jsonl"}
    assert len(load_run(results).tasks["rankacc_a"]) == 1  # that run's file, not the newest
    for stray in (folder / "notes.json", folder / "results_2027-01-01T00-00-00.json"):
        stray.write_text("{}")
    with pytest.raises(RunError, match=r"notes.json: not an lm-eval output file"):
        newest_samples(folder / "notes.json")
    with pytest.raises(RunError, match="no samples files from this run beside it: rerun lm_eval with --log_samples"):
        load_run(folder / "results_2027-01-01T00-00-00.json")


def test_the_grammar_of_the_names():
    assert samples_name(f"samples_rankacc_a_b_{TS}.jsonl") == ("rankacc_a_b", TS)
    assert samples_name(f"results_{TS}.json") is None
    assert results_stamp(f"results_{TS}.json") == TS and results_stamp(f"out_{ON_THE_SECOND}.json") == ON_THE_SECOND
    assert results_stamp("results.json") is None
    assert stamp_date(TS) == "2026-01-02 03:04:05" and stamp_date("x") == "x"
