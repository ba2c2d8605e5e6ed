"""Every results file records what produced its numbers (issue 13, item 5):
the rankacc version, the metric convention and the loader options actually
used, in each task's ``metadata`` (``results["configs"][task]["metadata"]
["rankacc"]``); the leaderboard shows the version of each run."""

from __future__ import annotations

import json
import subprocess

import pytest

from lm_eval_rankacc import PROVENANCE_KEY, __version__

from lm_eval_rankacc.lmeval import dataset
from lm_eval_rankacc.loading import documents as loader
from lm_eval_rankacc.analysis import leaderboard
from lm_eval_rankacc.report import render
from lm_eval_rankacc.outputs.results import read_results, task_provenance
from tests.helpers.commands import command


def test_load_docs_fills_the_record_lm_eval_passes_by_reference():
    record: dict = {}
    docs = dataset.load_docs(source="demo", split="demo", seed=3, sample_size=5, pretrained="m",
                             **{PROVENANCE_KEY: record})
    assert len(docs["test"]) == 5
    assert record == {"rankacc_version": __version__, "convention": "paper", "source": "demo", "split": "demo",
                      "sample_size": 5, "seed": 3, "data_files": None, "documents": 5}


def test_defaults_are_recorded_and_no_record_is_no_error():
    record: dict = {}
    dataset.load_docs(source="demo", split="demo", **{PROVENANCE_KEY: record})
    assert (record["sample_size"], record["seed"]) == (loader.DEFAULT_SAMPLE_SIZE, loader.DEFAULT_SEED)
    dataset.load_docs(source="demo", split="demo")  # a task YAML without the record (an older copy)


def test_task_provenance_of_older_or_odd_configs():
    assert task_provenance({"metadata": {"version": 1.0}}) == {}
    assert task_provenance({"metadata": {PROVENANCE_KEY: "x"}}) == {}
    assert task_provenance(None) == {}


@pytest.mark.slow
def test_real_run_records_version_and_options(tiny_model_dir, offline_env, tmp_path):
    out = tmp_path / "out"
    run = subprocess.run(
        [command("lm_eval"), "--model", "hf", "--model_args", f"pretrained={tiny_model_dir}", "--tasks", "rankacc_demo",
         "--metadata", '{"seed": 3, "sample_size": 12}', "--output_path", str(out), "--log_samples"],
        capture_output=True, text=True, env=offline_env, cwd=tmp_path, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (results_file,) = out.rglob("results_*.json")
    meta = json.loads(results_file.read_text())["configs"]["rankacc_demo"]["metadata"]
    assert meta[PROVENANCE_KEY] == {"rankacc_version": __version__, "convention": "paper", "source": "demo",
                                    "split": "demo", "sample_size": 12, "seed": 3, "data_files": None,
                                    "documents": 12}
    rf = read_results(results_file)
    assert rf.tasks["rankacc_demo"].provenance["seed"] == 3 and rf.info["rankacc_version"] == __version__
    report = leaderboard(out)
    (row,) = report.sections[1].rows
    assert row["rankacc_version"] == __version__
    assert "rankacc_version" in report.sections[1].columns
    assert f", rankacc {__version__}, " in render(report, "md")
