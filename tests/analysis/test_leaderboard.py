"""``rankacc leaderboard``: many models' results side by side.

End to end (slow): three real ``lm_eval`` runs into one output folder, run in
parallel once per module: two tiny random models of different seeds (``hf``,
with samples) and the ``dummy`` backend (no samples, no token counts); every
cell is checked against the numbers in the results JSON, the figure and the
HTML page are produced and the page is driven in a headless Chromium.
Edge cases (missing tasks, duplicate runs, mismatched documents, bad input)
use results folders written by hand in lm-eval's format.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.helpers.headless_chromium import Chromium, chromium_binary
from tests.helpers.rankacc_samples import TS, doc, sample_line, write_run
from tests.helpers.tiny_model import make_tiny_model

from lm_eval_rankacc import analysis
from lm_eval_rankacc.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


def _run(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _json(argv, capsys) -> dict:
    rc, out, err = _run([*argv, "--format", "json"], capsys)
    assert rc == 0, err
    return json.loads(out)


def _rows(data: dict) -> dict[str, dict]:
    return {r["model"]: r for r in data["sections"][0]["rows"]}


# ----------------------------------------------------------------- hand-written runs
DOCS = [
    doc("d1", [-10.0, -9.0], [1, 2], n_tokens=[2, 1]),
    doc("d2", [-5.0, -8.0], [1, 2], n_tokens=[1, 4]),
    doc("d3", [-4.0, -4.005], [1, 1], 0.5, n_tokens=[1, 1]),
    doc("d4", [-2.0, -20.0], [1, 2], n_tokens=[1, 10]),
]


def _shift(entries, delta):
    """The same documents scored by another model: response 1 moved by ``delta`` nats."""
    return [doc(e["doc"]["id"], [e["loglik"][0] + delta, e["loglik"][1]], e["doc"]["ranks"], e["doc"]["alpha"],
                e["n_tokens"], prompt=e["doc"]["prompt"], responses=e["doc"]["responses"]) for e in entries]


def lm_run(folder: Path, tasks: dict[str, list], model: str, ts: str = TS, samples: bool = True,
           metadata: dict | None = None, version: float = 1.0, backend: str = "hf",
           dtype: str = "torch.float32") -> Path:
    """An lm-eval output folder written by hand: samples as lm-eval logs
    them and a results JSON with lm-eval's aggregates (mean, stderr of the
    mean) and model identity; returns the results file."""
    sub = write_run(folder, tasks, model=model, ts=ts, samples=samples, version=version, metadata=metadata)
    path = sub / f"results_{ts}.json"
    data = json.loads(path.read_text())
    for task, entries in tasks.items():
        lines = [sample_line(k, e) for k, e in enumerate(entries)]
        entry = {"alias": task, "sample_len": len(entries)}
        for metric in ("rank_acc", "rank_acc_norm", "rank_acc_bytes"):
            values = np.array([line[metric] for line in lines], dtype=float)
            entry[f"{metric},none"] = float(values.mean())
            entry[f"{metric}_stderr,none"] = float(values.std(ddof=1) / np.sqrt(len(values)))
        entry["invalid,none"], entry["invalid_stderr,none"] = 0, "N/A"
        data["results"][task] = entry
    data["config"] = {"model": backend, "model_args": {"pretrained": f"/models/{model}"}, "model_dtype": dtype,
                      "model_revision": "main", "model_sha": ""}
    data["lm_eval_version"] = "0.4.13"
    path.write_text(json.dumps(data, indent=2))
    return path


def test_cells_missing_tasks_and_formats(tmp_path, capsys):
    out = tmp_path / "out"
    a = lm_run(out, {"rankacc_x": DOCS, "rankacc_y": DOCS}, "model-a")
    b = lm_run(out, {"rankacc_x": _shift(DOCS, -3.0)}, "model-b", samples=False)  # results only, like an API run
    data = _json(["leaderboard", out], capsys)
    rows = _rows(data)
    assert set(rows) == {"model-a", "model-b"}
    for path, model in ((a, "model-a"), (b, "model-b")):
        results = json.loads(path.read_text())
        for task, entry in results["results"].items():
            for metric in ("rank_acc", "rank_acc_norm"):
                assert rows[model][f"{task}/{metric}"] == entry[f"{metric},none"]
                assert rows[model][f"{task}/{metric}_stderr"] == entry[f"{metric}_stderr,none"]
            assert rows[model][f"{task}/n"] == results["n-samples"][task]["effective"]
        assert rows[model]["pretrained"] == f"/models/{model}" and rows[model]["dtype"] == "float32"
        assert rows[model]["backend"] == "hf" and rows[model]["revision"] == "main"
    # a task the model did not run: missing, never 0
    assert rows["model-b"]["rankacc_y/rank_acc"] is None and rows["model-b"]["rankacc_y/n"] is None
    assert rows["model-a"]["rankacc_x/docs"] == rows["model-b"]["rankacc_x/docs"] == "A"
    assert any("model-b: no samples logged" in n for n in data["notes"])

    rc, md, _ = _run(["leaderboard", out], capsys)
    assert rc == 0
    header = next(line for line in md.splitlines() if line.startswith("| model |"))
    assert header.split(" | ")[5:] == ["rankacc_x R", "rankacc_x R~", "rankacc_x n", "rankacc_y R", "rankacc_y R~",
                                      "rankacc_y n |"]
    line_b = next(line for line in md.splitlines() if line.startswith("| model-b |"))
    assert line_b.endswith("| missing | missing | missing |") and " 0.0000 " not in line_b
    assert "[A]" not in md  # one document set: no set tags

    rc, text, _ = _run(["leaderboard", out, "--format", "csv", "--metric", "rank_acc"], capsys)
    table = list(csv.DictReader(io.StringIO(text)))
    assert rows["model-a"]["rankacc_x/rank_acc"] == 0.75 and rows["model-b"]["rankacc_x/rank_acc"] == 0.5
    assert [r["model"] for r in table] == ["model-a", "model-b"]  # default: first task's R, descending
    assert table[1]["rankacc_y/rank_acc"] == "" and "rankacc_x/rank_acc_norm" not in table[1]
    rc, text, _ = _run(["leaderboard", out, "--format", "csv", "--sort", "rankacc_x/rank_acc_stderr"], capsys)
    stderrs = {m: rows[m]["rankacc_x/rank_acc_stderr"] for m in rows}
    assert [r["model"] for r in csv.DictReader(io.StringIO(text))] == sorted(stderrs, key=lambda m: -stderrs[m])
    rc, tex, _ = _run(["leaderboard", out, "--format", "latex"], capsys)
    assert rc == 0 and r"\begin{tabular}" in tex and r"rankacc\_x $\tilde{R}$" in tex and r"$\pm$" in tex
    rc, text, _ = _run(["leaderboard", out, "--sort", "model", "--format", "csv"], capsys)
    assert [r["model"] for r in csv.DictReader(io.StringIO(text))] == ["model-a", "model-b"]
    rc, text, _ = _run(["leaderboard", out, "--sort", "rankacc_y R", "--format", "csv"], capsys)
    assert [r["model"] for r in csv.DictReader(io.StringIO(text))] == ["model-a", "model-b"]  # missing last


def test_duplicate_runs_newest_wins(tmp_path, capsys):
    out = tmp_path / "out"
    old = lm_run(out, {"rankacc_x": DOCS, "rankacc_y": DOCS}, "model-a", ts="2026-01-01T00-00-00.000001")
    new = lm_run(out, {"rankacc_x": _shift(DOCS, -3.0)}, "model-a", ts="2026-02-01T00-00-00.000001")
    data = _json(["leaderboard", out], capsys)
    (row,) = data["sections"][0]["rows"]
    newest = json.loads(new.read_text())["results"]["rankacc_x"]
    oldest = json.loads(old.read_text())["results"]
    assert newest["rank_acc,none"] != oldest["rankacc_x"]["rank_acc,none"]
    assert row["rankacc_x/rank_acc"] == newest["rank_acc,none"]
    assert row["rankacc_y/rank_acc"] == oldest["rankacc_y"]["rank_acc,none"]  # only in the older run
    runs = {r["results_file"]: r["status"] for r in data["sections"][1]["rows"]}
    assert runs == {str(new): "used", str(old): "superseded for rankacc_x"}
    assert any(n.startswith(f"superseded: model-a: {old} (rankacc_x); newer: {new.name}") for n in data["notes"])
    # a whole run superseded, given twice (folder and file): read once
    lm_run(out, {"rankacc_y": DOCS}, "model-a", ts="2026-03-01T00-00-00.000001")
    data = _json(["leaderboard", out, old], capsys)
    assert [r["status"] for r in data["sections"][1]["rows"]].count("superseded") == 1


def test_mismatched_documents_are_flagged(tmp_path, capsys):
    out = tmp_path / "out"
    lm_run(out, {"rankacc_x": DOCS}, "model-a")
    lm_run(out, {"rankacc_x": _shift(DOCS, 1.0)}, "model-b")
    lm_run(out, {"rankacc_x": _shift(DOCS[:3], 2.0)}, "model-c", metadata={"sample_size": 3})  # smaller sample
    other = [doc(e["doc"]["id"], e["loglik"], e["doc"]["ranks"], e["doc"]["alpha"], e["n_tokens"],
                 prompt="another prompt") for e in DOCS]  # same ids and count, other content (another seed)
    lm_run(out, {"rankacc_x": other}, "model-d")
    lm_run(out, {"rankacc_x": DOCS}, "model-e", version=2.0)
    data = _json(["leaderboard", out], capsys)
    rows = _rows(data)
    assert {m: r["rankacc_x/docs"] for m, r in rows.items()} == {
        "model-a": "A", "model-b": "A", "model-c": "B", "model-d": "C", "model-e": "D"}
    note = next(n for n in data["notes"] if n.startswith("rankacc_x: scored on 4 different document sets"))
    assert "B vs A: n 3 vs 4; sample_size 3 vs default" in note
    assert "C vs A: different document ids / doc hashes in the samples" in note
    assert "D vs A: version 2.0 vs 1.0" in note
    # values still shown, tagged with their set in every format meant for reading
    rc, md, _ = _run(["leaderboard", out], capsys)
    line_c = next(line for line in md.splitlines() if line.startswith("| model-c |"))
    assert f"{rows['model-c']['rankacc_x/rank_acc']:.4f} \u00b1" in line_c and line_c.count("[B]") == 3
    assert "[A], [B], ...: the task was scored on different document sets" in md

    # the alignment gap needs the reference's documents
    data = _json(["leaderboard", out, "--reference", out / "model-a", "--betas", "0.1,1,10"], capsys)
    rows = _rows(data)
    ideal = analysis.idealized(out / "model-a", betas=[0.1, 1, 10]).sections[0].rows
    ref = next(r for r in ideal if r["ties"] == "included")
    for model in ("model-a", "model-b"):
        assert rows[model]["rankacc_x/R_star"] == ref["R_star_median"]
        assert rows[model]["rankacc_x/gap"] == pytest.approx(ref["R_star_median"] - rows[model]["rankacc_x/rank_acc"])
        assert rows[model]["rankacc_x/gap_norm"] == pytest.approx(
            ref["R_norm_star_median"] - rows[model]["rankacc_x/rank_acc_norm"])
    for model in ("model-c", "model-d", "model-e"):
        assert rows[model]["rankacc_x/gap"] is None and rows[model]["rankacc_x/gap_norm"] is None
        assert any(n.startswith(f"rankacc_x: {model} scored other documents than the reference")
                   for n in data["notes"])
    rc, md, _ = _run(["leaderboard", out, "--reference", out / "model-a"], capsys)
    assert rc == 0 and "other docs" in next(line for line in md.splitlines() if line.startswith("| model-c |"))


def test_convention_released_recomputes_from_the_samples(tmp_path, capsys):
    """--convention released: R and R~ recomputed from each run's samples with
    the released code's rules, said in the meta line, the headers and the legend."""
    out = tmp_path / "out"
    lm_run(out, {"rankacc_x": DOCS}, "model-a")
    lm_run(out, {"rankacc_x": _shift(DOCS, -3.0)}, "model-b", samples=False)  # results only
    rc, _, err = _run(["leaderboard", out, "--convention", "released"], capsys)
    assert rc == 2 and err.count("\n") == 1 and str(out / "model-b") in err
    assert "no samples of rankacc_x from this run beside it: --convention released recomputes" in err
    data = _json(["leaderboard", out, "--convention", "released", "--skip-bad-runs"], capsys)
    assert list(_rows(data)) == ["model-a"] and any("left out, a bad run" in n for n in data["notes"])

    paper = _rows(_json(["leaderboard", out / "model-a"], capsys))["model-a"]
    data = _json(["leaderboard", out / "model-a", "--convention", "released"], capsys)
    row = _rows(data)["model-a"]
    assert data["meta"]["convention"] == "released"
    # d3 is a human tie within 0.01: right under the paper's tie rule, wrong under exact matching
    assert paper["rankacc_x/rank_acc"] == 0.75 and row["rankacc_x/rank_acc"] == 0.5
    # per token, d4 is -2 vs -2: right under Def. 2.3's >=, wrong under exact matching
    assert paper["rankacc_x/rank_acc_norm"] == 0.75 and row["rankacc_x/rank_acc_norm"] == 0.25
    assert row["rankacc_x/rank_acc_stderr"] == pytest.approx(np.std([0, 1, 0, 1], ddof=1) / 2)
    assert row["rankacc_x/n"] == 4
    rc, md, _ = _run(["leaderboard", out / "model-a", "--convention", "released"], capsys)
    assert "- convention: released" in md and "| rankacc_x R (released) | rankacc_x R~ (released) |" in md
    assert "recomputed from each run's samples under the rules of the authors' released code" in md
    rc, md, _ = _run(["leaderboard", out / "model-a"], capsys)
    assert "- convention: paper" in md and "(convention paper)" in md and "(released)" not in md

    data = _json(["leaderboard", out / "model-a", "--convention", "released", "--reference", out / "model-a"],
                 capsys)
    ideal = analysis.idealized(out / "model-a", convention="released").sections[0].rows
    included = next(r for r in ideal if r["ties"] == "included")
    assert _rows(data)["model-a"]["rankacc_x/R_star"] == included["R_star_median"]
    rc, _, err = _run(["leaderboard", out / "model-a", "--convention", "released", "--metric", "rank_acc_bytes"],
                      capsys)
    assert rc == 2 and "rank_acc_bytes: the released code has no counterpart" in err
    report = analysis.leaderboard([out / "model-a"], convention="released")
    assert report.sections[0].rows[0]["rankacc_x/rank_acc"] == 0.5


def _predict_only(folder: Path) -> Path:
    """The results file of ``lm_eval --predict_only`` (lm-eval's bypass metric, no rankacc metric)."""
    folder.mkdir(parents=True)
    path = folder / f"results_{TS}.json"
    path.write_text(json.dumps({
        "results": {"rankacc_x": {"name": "rankacc_x", "alias": "rankacc_x", "sample_len": 0}},
        "configs": {"rankacc_x": {"task": "rankacc_x", "metric_list": [{"metric": "bypass"}]}},
        "versions": {"rankacc_x": 1.0}, "n-samples": {"rankacc_x": {"original": 4, "effective": 4}},
    }))
    return path


def _rename(results: Path, pretrained: str) -> None:
    data = json.loads(results.read_text())
    data["config"]["model_args"]["pretrained"] = pretrained
    results.write_text(json.dumps(data))


def test_unreadable_results_are_an_error_unless_skipped_and_listed(tmp_path, capsys):
    """Issue 11, item 1: a model never disappears without a word."""
    out = tmp_path / "out"
    lm_run(out, {"rankacc_x": DOCS}, "model-a")
    bad = lm_run(out, {"rankacc_x": _shift(DOCS, 1.0)}, "model-b")
    bad.write_text(bad.read_text()[:150])  # an interrupted write
    rc, text, err = _run(["leaderboard", out], capsys)
    assert rc == 2 and text == "" and err.count("\n") == 1 and f"error: {bad}: " in err
    data = _json(["leaderboard", out, "--skip-bad-runs"], capsys)
    assert list(_rows(data)) == ["model-a"] and data["meta"]["models"] == 1
    assert any(n.startswith(f"left out, a bad run (--skip-bad-runs): {bad}: ") for n in data["notes"])
    rc, md, _ = _run(["leaderboard", out, "--skip-bad-runs"], capsys)
    assert rc == 0 and f"- left out, a bad run (--skip-bad-runs): {bad}: " in md
    # a samples file beside the results that cannot be read makes its run bad too
    lm_run(out, {"rankacc_x": _shift(DOCS, 1.0)}, "model-b")
    samples = out / "model-b" / f"samples_rankacc_x_{TS}.jsonl"
    samples.write_bytes(samples.read_bytes()[:-30])
    rc, _, err = _run(["leaderboard", out], capsys)
    assert rc == 2 and f"error: {samples}: line 4: not valid JSON" in err
    data = _json(["leaderboard", out, "--skip-bad-runs"], capsys)
    assert list(_rows(data)) == ["model-a"] and any(str(samples) in n for n in data["notes"])
    rc, _, err = _run(["leaderboard", out / "model-b", "--skip-bad-runs"], capsys)  # nothing good left
    assert rc == 2 and "no rankacc results in" in err and str(samples) in err and err.count("\n") == 1


def test_results_read_in_parallel_processes_give_the_same_leaderboard(tmp_path, capsys, parallel_reads):
    """Results files whose samples hold outputs.parallel.PARALLEL_BYTES are read one per
    process: the same table and notes, a bad run's error and its
    --skip-bad-runs note (written in the child) too."""
    out = tmp_path / "out"
    lm_run(out, {"rankacc_x": DOCS}, "model-a")
    lm_run(out, {"rankacc_x": _shift(DOCS, 1.0)}, "model-b")
    lm_run(out, {"rankacc_x": _shift(DOCS, -3.0)}, "model-c")
    serial = _json(["leaderboard", out], capsys)
    forked = parallel_reads()
    assert _json(["leaderboard", out], capsys) == serial and forked == [2]
    samples = out / "model-b" / f"samples_rankacc_x_{TS}.jsonl"
    samples.write_bytes(samples.read_bytes()[:-30])
    rc, _, err = _run(["leaderboard", out], capsys)
    assert rc == 2 and f"error: {samples}: line 4: not valid JSON" in err
    data = _json(["leaderboard", out, "--skip-bad-runs"], capsys)
    assert sorted(_rows(data)) == ["model-a", "model-c"]
    assert any(n.startswith("left out, a bad run (--skip-bad-runs): ") and str(samples) in n for n in data["notes"])
    assert len(forked) == 3


def test_every_file_found_is_used_or_named(tmp_path, capsys):
    out = tmp_path / "out"
    lm_run(out, {"rankacc_x": DOCS}, "model-a")
    other = out / "model-a" / "summary_2026-01-05T00-00-00.000001.json"  # named like results, valid JSON
    other.write_text(json.dumps({"accuracy": 1}))
    orphan = write_run(out, {"rankacc_x": DOCS}, model="model-c", results=False)  # samples, no results JSON
    predict_only = _predict_only(out / "model-p")
    data = _json(["leaderboard", out], capsys)
    assert list(_rows(data)) == ["model-a"]
    notes = "\n".join(data["notes"])
    assert f"left out: {other}: named like a results file but not lm-eval's" in notes
    assert f"left out: {orphan}: 1 samples file(s) without the results JSON of their run" in notes
    assert f"left out: {predict_only}: a --predict_only run of rankacc_x" in notes


def test_hostile_model_names_keep_every_table_whole(tmp_path, capsys):
    """A newline, CR, escape or pipe in a model name: one row per model in md
    and LaTeX; the CSV keeps the full text, formula characters neutralised."""
    out = tmp_path / "out"
    a = lm_run(out, {"rankacc_x": DOCS}, "model-a")
    b = lm_run(out, {"rankacc_x": _shift(DOCS, -3.0)}, "model-b")
    evil = "=SUM(1;2)\nsecond | line\r\x1b[31m\x00\u2028end"
    _rename(a, f"org/{evil}")
    _rename(b, "org/-2+3")
    rc, md, _ = _run(["leaderboard", out], capsys)
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert len(table) == 4  # header, rule, two models
    assert any(line.startswith("| =SUM(1;2) second \\| line [31m end | hf | org/=SUM(1;2) second") for line in table)
    assert not any(ch in md for ch in "\r\x1b\x00\u2028")
    assert len({line.replace("\\|", "").count("|") for line in table}) == 1
    runs = [line for line in md[md.index("Runs:"):].splitlines()[1:] if line]
    assert len(runs) == 2 and all(line.startswith("- ") and line.endswith(".json") for line in runs)
    rc, tex, _ = _run(["leaderboard", out, "--format", "latex"], capsys)
    assert sum(line.endswith(r" \\") for line in tex.splitlines()) == 3 and "\x1b" not in tex

    from lm_eval_rankacc.report.cells import csv_text

    rc, text, _ = _run(["leaderboard", out, "--format", "csv", "--reference", a.parent], capsys)
    rows = {csv_text(r["model"]): r for r in csv.DictReader(io.StringIO(text))}
    assert set(rows) == {evil, "-2+3"}  # recoverable, in full
    assert rows[evil]["model"] == "'" + evil and rows["-2+3"]["model"] == "'-2+3"
    assert rows[evil]["pretrained"] == f"org/{evil}"  # starts with 'o': left as it is
    for column in ("rankacc_x/rank_acc", "rankacc_x/rank_acc_stderr", "rankacc_x/gap", "rankacc_x/n"):
        assert all(float(r[column]) >= 0 for r in rows.values())  # numbers stay numbers


@pytest.mark.parametrize(
    "setup, message",
    [
        ("missing", "no such file or folder"),
        ("empty_folder", "no lm-eval results here"),
        ("not_lm_eval", "not an lm-eval results file"),
        ("not_json", "not an lm-eval results file (not readable JSON"),
        ("other_tasks", "without a rankacc task (tasks: hellaswag)"),
        ("bad_metric", "--metric: acc reported by no run (available:"),
        ("bad_sort", "--sort: no column 'nope'"),
        ("bad_plot", "--plot"),
        ("reference_without_samples", "--log_samples"),
        ("betas_without_reference", "--betas is the grid of the reference's idealized accuracy: it needs --reference"),
        ("unreadable_in_folder", "(--skip-bad-runs leaves a bad run out, with a note)"),
        ("predict_only", "a --predict_only run of rankacc_x (lm-eval computed no metrics)"),
        ("plot_missing_folder", "(outputs go into existing folders: create it)"),
        ("html_is_a_folder", "a folder; name a file in it"),
        ("same_file_twice", "name the same file"),
        ("output_says_other_format", "-o table.json: the name says json but --format is md"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, capsys, setup, message):
    good = lm_run(tmp_path / "good", {"rankacc_x": DOCS}, "model-a").parent
    args = ["leaderboard", good]
    if setup == "missing":
        args = ["leaderboard", tmp_path / "nope"]
    elif setup == "empty_folder":
        (tmp_path / "empty" / "sub").mkdir(parents=True)
        (tmp_path / "empty" / "sub" / "notes_2026-01-02T03-04-05.json").write_text("{}")
        args = ["leaderboard", tmp_path / "empty"]
    elif setup == "not_lm_eval":
        (tmp_path / "x.json").write_text(json.dumps({"accuracy": 0.5}))
        args = ["leaderboard", tmp_path / "x.json"]
    elif setup == "not_json":
        (tmp_path / "x.json").write_text("model,acc\na,0.5\n")
        args = ["leaderboard", good, tmp_path / "x.json"]
    elif setup == "other_tasks":
        path = tmp_path / f"results_{TS}.json"
        path.write_text(json.dumps({"results": {"hellaswag": {"acc,none": 0.3}}, "versions": {"hellaswag": 1}}))
        args = ["leaderboard", path]
    elif setup == "bad_metric":
        args += ["--metric", "acc"]
    elif setup == "bad_sort":
        args += ["--sort", "nope"]
    elif setup == "bad_plot":
        args += ["--plot", tmp_path / "figure.jpg"]
    elif setup == "reference_without_samples":
        ref = lm_run(tmp_path / "ref", {"rankacc_x": DOCS}, "model-r", samples=False).parent
        args += ["--reference", ref]
    elif setup == "betas_without_reference":
        args += ["--betas", "0.1,1"]
    elif setup == "unreadable_in_folder":
        bad = lm_run(tmp_path / "good", {"rankacc_x": DOCS}, "model-b")
        bad.write_text(bad.read_text()[:150])
        args = ["leaderboard", tmp_path / "good"]
    elif setup == "predict_only":
        args = ["leaderboard", _predict_only(tmp_path / "po")]
    elif setup == "plot_missing_folder":
        args += ["--plot", tmp_path / "nope" / "figure.png", "-o", tmp_path / "table.md"]
    elif setup == "html_is_a_folder":
        (tmp_path / "page.html").mkdir()
        args += ["--html", tmp_path / "page.html"]
    elif setup == "same_file_twice":
        args += ["--format", "csv", "-o", tmp_path / "x.html", "--html", tmp_path / "x.html"]
    elif setup == "output_says_other_format":
        args += ["-o", "table.json"]
    rc, out, err = _run(args, capsys)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("rankacc leaderboard: error: ") and message in err
    assert not (tmp_path / "table.md").exists() and not (tmp_path / "nope").exists()  # checked before any work


# ----------------------------------------------------------------- published rows (--paper)
def test_paper_rows_beside_the_runs_in_every_format(tmp_path, capsys):
    out = tmp_path / "out"
    lm_run(out, {"rankacc_hh_rlhf_test": DOCS, "rankacc_demo": DOCS}, "model-a")
    lm_run(out, {"rankacc_hh_rlhf_test": _shift(DOCS, -3.0)}, "model-b")
    sort = ["--sort", "rankacc_hh_rlhf_test R~"]
    plain = _json(["leaderboard", out, *sort], capsys)
    data = _json(["leaderboard", out, *sort, "--paper"], capsys)
    rows = _rows(data)
    assert {m: r for m, r in rows.items() if r["backend"] != "paper"} == _rows(plain)  # the runs' rows untouched
    published = [r for r in data["sections"][0]["rows"] if r["backend"] == "paper"]
    assert len(published) == 14 and all(r["model"].endswith(" (paper, Table 2)") for r in published)
    gemma = rows["Gemma-7b-it (paper, Table 2)"]
    assert gemma["rankacc_hh_rlhf_test/rank_acc"] == 0.467 and gemma["rankacc_hh_rlhf_test/rank_acc_norm"] == 0.525
    assert gemma["rankacc_hh_rlhf_test/rank_acc_stderr"] is None and gemma["rankacc_hh_rlhf_test/n"] is None
    assert gemma["rankacc_hh_rlhf_test/docs"] == "paper" and gemma["convention"] == "paper (published)"
    assert gemma["rankacc_demo/rank_acc"] is None and gemma["rankacc_demo/docs"] is None  # not in the paper
    # sorted with the runs: model-a's R~ (0.75) above every published R~ (0.495 to 0.529), model-b's (0.25) below
    order = [r["model"] for r in data["sections"][0]["rows"]]
    assert order[0] == "model-a" and order[-1] == "model-b"
    assert [r["rankacc_hh_rlhf_test/rank_acc_norm"] for r in published] == sorted(
        (r["rankacc_hh_rlhf_test/rank_acc_norm"] for r in published), reverse=True)
    runs = data["sections"][1]["rows"]
    assert [r["model"] for r in runs] == order and sum(r["status"] == "published" for r in runs) == 14
    assert data["meta"]["paper"].startswith("14 published rows of Chen et al. (2024), Table 2: ")
    assert data["meta"]["models"] == 2
    assert any(n.startswith("rankacc_hh_rlhf_test: published rows of Chen et al. (2024), Table 2 (Anthropic "
                            "HH-RLHF, Test)") and "helpful set" in n for n in data["notes"])
    assert any("publish no rank_acc, rank_acc_norm for rankacc_demo" in n for n in data["notes"])

    rc, md, _ = _run(["leaderboard", out, *sort, "--paper"], capsys)
    line = next(x for x in md.splitlines() if x.startswith("| Gemma-7b-it (paper, Table 2) | paper |"))
    assert line.endswith("| missing | missing | missing | 0.4670 | 0.5250 | n/a |")  # no stderr, n unknown
    assert "[A]" not in md and "Rows '<model> (paper, Table N)', backend 'paper'" in md
    assert ("- Gemma-7b-it (paper, Table 2): published, 2024, Chen et al. (2024), arXiv:2405.19534: Table 2, "
            "p. 21\n") in md
    rc, text, _ = _run(["leaderboard", out, "--paper", "--format", "csv"], capsys)
    table = {r["model"]: r for r in csv.DictReader(io.StringIO(text))}
    assert table["Gemma-7b-it (paper, Table 2)"]["backend"] == "paper"
    assert table["Gemma-7b-it (paper, Table 2)"]["rankacc_hh_rlhf_test/docs"] == "paper"
    assert table["Gemma-7b-it (paper, Table 2)"]["rankacc_hh_rlhf_test/rank_acc_stderr"] == ""
    rc, tex, _ = _run(["leaderboard", out, "--paper", "--format", "latex"], capsys)
    assert r"Gemma-7b-it (paper, Table 2) & paper & n/a & n/a & n/a & missing & missing & missing & 0.4670 & " \
           r"0.5250 & n/a \\" in tex
    page, svg = tmp_path / "page.html", tmp_path / "figure.svg"
    rc, _, err = _run(["leaderboard", out, "--paper", "--html", page, "--plot", svg], capsys)
    assert rc == 0, err
    assert page.read_text().count('<tr class="published"') == 14 * 2  # the table and the runs
    assert "<!-- published (Chen et al. 2024) -->" in svg.read_text()
    rc, _, err = _run(["leaderboard", out, "--plot", svg], capsys)
    assert rc == 2 and f"--plot {svg}: exists already (pass --force to replace it)" in err
    rc, _, _ = _run(["leaderboard", out, "--plot", svg, "--force"], capsys)
    assert rc == 0 and "published (Chen et al. 2024)" not in svg.read_text()


class _Axes:
    """Records what a figure panel draws."""

    def __init__(self):
        self.lines, self.points = [], []

    def hlines(self, y, *args, **kwargs):
        self.lines.append(y)

    def errorbar(self, x, y, **kwargs):
        self.points.append((x, y, kwargs))

    def __getattr__(self, name):  # ticks, limits, grid, title
        return lambda *args, **kwargs: None


def test_paper_rows_with_a_reference(tmp_path, capsys):
    from lm_eval_rankacc.report.figures import PUBLISHED_STYLE, _panel
    from lm_eval_rankacc.report.leaderboard import several_sets

    out = tmp_path / "out"
    ref = lm_run(out, {"rankacc_alpaca_farm_val": DOCS}, "model-a").parent
    lm_run(out, {"rankacc_alpaca_farm_val": _shift(DOCS, -3.0)}, "model-b")
    args = ["leaderboard", out, "--reference", ref, "--sort", "rankacc_alpaca_farm_val gap"]
    plain, data = _json(args, capsys), _json([*args, "--paper"], capsys)
    rows = _rows(data)
    assert {m: r for m, r in rows.items() if r["backend"] != "paper"} == _rows(plain)
    own_star = rows["model-a"]["rankacc_alpaca_farm_val/R_star"]
    t1 = rows["LLaMA-2-7B-Chat-HF (paper, Table 1)"]  # the paper's own R* (median) and gap
    assert t1["rankacc_alpaca_farm_val/R_star"] == 0.99 and t1["rankacc_alpaca_farm_val/gap"] == 0.59
    assert t1["rankacc_alpaca_farm_val/R_norm_star"] == 0.97 and t1["rankacc_alpaca_farm_val/gap_norm"] == 0.44
    t4 = rows["Llama-2-7b-chat-hf (paper, Table 4)"]
    assert t4["rankacc_alpaca_farm_val/R_star"] is None and t4["rankacc_alpaca_farm_val/gap"] is None
    assert data["sections"][0]["rows"][0]["model"] == t1["model"]  # the paper's largest gap (0.59) sorts first
    rc, md, _ = _run([*args, "--paper"], capsys)
    line = next(x for x in md.splitlines() if x.startswith("| Llama-2-7b-chat-hf (paper, Table 4) |"))
    assert line.endswith("| 0.4020 | 0.5340 | n/a | n/a | n/a | n/a | n/a |")
    assert "Their R* / R~* and gap are the paper's own" in md
    # the figure: the dashed line is the reference's idealized accuracy, the published rows grey and hollow
    report = analysis.leaderboard([out], reference=ref, sort="rankacc_alpaca_farm_val gap", paper=True)
    ax = _Axes()
    colours = {r["model"]: "red" for r in report.sections[0].rows if r["backend"] != "paper"}
    _panel(ax, "rankacc_alpaca_farm_val", report, colours, {"rank_acc": "R_star", "rank_acc_norm": "R_norm_star"},
           several_sets(report))
    assert ax.lines == [own_star, rows["model-a"]["rankacc_alpaca_farm_val/R_norm_star"]]
    grey = [p for p in ax.points if p[2] == PUBLISHED_STYLE]
    assert len(grey) == 2 * 18 and len({round(p[0], 6) for p in grey}) == 2  # one column per metric
    assert len(ax.points) == len(grey) + 2 * 2


def test_paper_without_published_tasks(tmp_path, capsys):
    out = tmp_path / "out"
    lm_run(out, {"rankacc_x": DOCS}, "model-a")
    data = _json(["leaderboard", out, "--paper"], capsys)
    assert [r["model"] for r in data["sections"][0]["rows"]] == ["model-a"]
    assert data["meta"]["paper"].startswith("0 published rows of Chen et al. (2024): ")
    assert any("publish no rank_acc, rank_acc_norm for rankacc_x" in n for n in data["notes"])


# ----------------------------------------------------------------- end to end
#: Runs lm_eval's own command line once per argument list, in one process
#: (each lm_eval start costs ~8 s of imports; the three runs then take ~2 s each).
_LM_EVAL_SEVERAL = """
import json, sys
from lm_eval.__main__ import cli_evaluate
for argv in json.loads(sys.argv[1]):
    sys.argv = ["lm_eval", *argv]
    cli_evaluate()
"""


@pytest.fixture(scope="module")
def lm_runs(tiny_model_dir, tmp_path_factory, offline_env):
    """One lm-eval output folder with three models on rankacc_demo, from
    lm_eval's command line: tiny seed 0 and tiny seed 1 (``hf``,
    --log_samples) and the ``dummy`` backend (no samples)."""
    root = tmp_path_factory.mktemp("leaderboard")
    seed1 = make_tiny_model(root / "tiny-seed1", seed=1)
    out = root / "out"
    common = ["--tasks", "rankacc_demo", "--output_path", str(out)]
    hf = ["--model", "hf", "--device", "cpu", "--batch_size", "16", "--log_samples", "--model_args"]
    commands = [[*hf, f"pretrained={tiny_model_dir}", *common], [*hf, f"pretrained={seed1}", *common],
                ["--model", "dummy", *common]]
    proc = subprocess.run([sys.executable, "-c", _LM_EVAL_SEVERAL, json.dumps(commands)], env=offline_env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    results = {}
    for path in out.glob("*/results_*.json"):
        data = json.loads(path.read_text())
        name = data["config"]["model_args"].get("pretrained")
        results["dummy" if name is None else Path(name).name] = data
    assert set(results) == {tiny_model_dir.name, "tiny-seed1", "dummy"}
    return out, results, tiny_model_dir.name


@pytest.mark.slow
def test_real_runs_cell_by_cell(lm_runs, capsys):
    out, results, seed0 = lm_runs
    data = _json(["leaderboard", out, "--metric", "rank_acc,rank_acc_norm,rank_acc_bytes"], capsys)
    rows = _rows(data)
    assert set(rows) == set(results)
    for model, res in results.items():
        entry, row = res["results"]["rankacc_demo"], rows[model]
        for metric in ("rank_acc", "rank_acc_norm", "rank_acc_bytes"):
            expected = entry.get(f"{metric},none")
            assert row[f"rankacc_demo/{metric}"] == expected, (model, metric)
            assert row[f"rankacc_demo/{metric}_stderr"] == entry.get(f"{metric}_stderr,none")
        assert row["rankacc_demo/n"] == res["n-samples"]["rankacc_demo"]["effective"] == 33
        assert row["backend"] == res["config"]["model"]
        assert row["pretrained"] == res["config"]["model_args"].get("pretrained")
        assert row["rankacc_demo/docs"] == "A"  # the same 33 documents
    assert rows[seed0]["dtype"] == rows["tiny-seed1"]["dtype"] == "float32"
    assert rows[seed0]["revision"] == "main" and rows["dummy"]["pretrained"] is None
    assert rows[seed0]["rankacc_demo/rank_acc"] != rows["tiny-seed1"]["rankacc_demo/rank_acc"]
    # dummy reports no token counts: R~ is missing from its results, shown n/a, never 0
    assert "rank_acc_norm,none" not in results["dummy"]["results"]["rankacc_demo"]
    assert rows["dummy"]["rankacc_demo/rank_acc_norm"] is None
    rc, md, _ = _run(["leaderboard", out], capsys)
    line = next(x for x in md.splitlines() if x.startswith("| dummy |"))
    r = results["dummy"]["results"]["rankacc_demo"]
    assert f"| {r['rank_acc,none']:.4f} \u00b1 {r['rank_acc_stderr,none']:.4f} | n/a | 33 |" in line
    assert any("dummy: no samples logged" in n for n in md.splitlines())

    # the reference adds analysis.idealized's R* and the gap
    ref = next(out.glob(f"*{seed0}"))
    data = _json(["leaderboard", out, "--reference", ref], capsys)
    ideal = next(r for r in analysis.idealized(ref).sections[0].rows if r["ties"] == "included")
    for model, row in _rows(data).items():
        assert row["rankacc_demo/R_star"] == ideal["R_star_median"]
        assert row["rankacc_demo/gap"] == pytest.approx(ideal["R_star_median"] - row["rankacc_demo/rank_acc"])
    assert _rows(data)[seed0]["rankacc_demo/gap"] == pytest.approx(ideal["gap"])
    assert _rows(data)["dummy"]["rankacc_demo/gap_norm"] is None  # no R~ to subtract


@pytest.mark.slow
def test_figure_and_html_page_in_a_browser(lm_runs, tmp_path, capsys):
    out, results, seed0 = lm_runs
    png, svg, page = tmp_path / "lb.png", tmp_path / "lb.svg", tmp_path / "lb.html"
    rc, _, err = _run(["leaderboard", out, "--plot", png, "--html", page], capsys)
    assert rc == 0, err
    assert png.read_bytes()[:8] == PNG and png.stat().st_size > 5000
    rc, _, _ = _run(["leaderboard", out, "--plot", svg, "--sort", "model"], capsys)
    assert rc == 0 and "<svg" in svg.read_text()[:1000]
    text = page.read_text()
    assert 'src="data:image/png;base64,' in text and "<style>" in text and "<script>" in text
    for remote in ("http://", "https://", "<link", "@import", "src=\"//"):  # self-contained
        assert remote not in text

    binary = chromium_binary()
    if binary is None:
        pytest.skip("no chromium on PATH (.ci/run installs Debian's chromium when run as root)")
    rank = [(m, results[m]["results"]["rankacc_demo"]["rank_acc,none"]) for m in results]
    rank_norm = {m: results[m]["results"]["rankacc_demo"].get("rank_acc_norm,none") for m in results}
    rows_js = "Array.from(document.querySelectorAll('#leaderboard tbody tr')).map(r => r.cells[0].textContent)"
    with Chromium.start(binary, tmp_path / "profile") as browser:
        view = browser.open(page.as_uri())
        view.wait_for("document.getElementById('figure').complete")
        assert view.evaluate("document.getElementById('figure').naturalWidth") > 100  # the embedded PNG decodes
        before = view.evaluate(rows_js)
        assert before == [m for m, _ in sorted(rank, key=lambda x: (-x[1], x[0]))]  # default: R, descending
        header = "#leaderboard th[data-key='rankacc_demo/rank_acc']"
        assert view.evaluate(f"document.querySelector(\"{header}\").getAttribute('aria-sort')") == "descending"
        view.click(header)  # the column already sorted descending: now ascending
        after = view.evaluate(rows_js)
        assert after != before and after == [m for m, _ in sorted(rank, key=lambda x: (x[1], x[0]))]
        assert view.evaluate(f"document.querySelector(\"{header}\").getAttribute('aria-sort')") == "ascending"
        view.click("#leaderboard th[data-key='rankacc_demo/rank_acc_norm']")  # dummy has no R~: last
        order = view.evaluate(rows_js)
        assert order[-1] == "dummy" and order[:2] == sorted(
            (m for m in results if m != "dummy"), key=lambda m: -rank_norm[m])
        cells = view.evaluate("Array.from(document.querySelectorAll('#leaderboard tbody tr:last-child td'))"
                              ".map(c => c.textContent)")
        assert "n/a" in cells and "0.0000" not in " ".join(cells)
        shot = view.screenshot()
    (tmp_path / "leaderboard-page.png").write_bytes(shot)
    assert shot[:8] == PNG and len(shot) > 20000
