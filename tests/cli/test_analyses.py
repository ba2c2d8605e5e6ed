"""``rankacc idealized | flips | hardness``: output formats, files, exit codes,
and an end-to-end run on two lm_eval outputs of different tiny models."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.helpers.rankacc_samples import TS, doc, write_run

from lm_eval_rankacc.cli import main

REF = [
    doc("p1", [-10.0, -9.0], [1, 2], 0.75, n_tokens=[2, 1], prompt="Q1?", responses=["right | one", "wrong\none"]),
    doc("p2", [-5.0, -8.0], [2, 1], 0.2, n_tokens=[1, 4]),
    doc("p3", [-4.0, -4.005], [1, 1], 0.5, n_tokens=[1, 1]),
    doc("p4", [-20.0, -2.0], [1, 2], None, n_tokens=[10, 1]),
]
POL = [doc(e["doc"]["id"], [x + (3.0 if k == 0 else 0.0) for k, x in enumerate(e["loglik"])], e["doc"]["ranks"],
           e["doc"]["alpha"], e["n_tokens"], prompt=e["doc"]["prompt"], responses=e["doc"]["responses"])
       for e in REF]


@pytest.fixture()
def runs(tmp_path):
    return write_run(tmp_path / "ref", {"rankacc_x": REF}, model="ref"), write_run(
        tmp_path / "pol", {"rankacc_x": POL}, model="pol"
    )


def _run(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_idealized_formats(runs, capsys, tmp_path):
    ref, pol = runs
    rc, out, _ = _run(["idealized", ref, "--policy", pol, "--betas", "0.1,1,10"], capsys)
    assert rc == 0
    assert "| rankacc_x \u2020 | excluded | ref | 3 |" in out and "| rankacc_x \u2020 | included | pol | 4 |" in out
    assert "0.0000 / 0.3333 / 1.0000" in out  # R* min / median / max over the betas
    assert "interval of the gap (10000 replicates, seed 0)" in out and " [" in out.split("| ref | 3 |")[1]
    rc, out, _ = _run(["idealized", ref, "--policy", pol, "--betas", "0.1,1,10", "--format", "csv"], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["ties"], r["model"]) for r in rows] == [
        ("excluded", "ref"), ("excluded", "pol"), ("included", "ref"), ("included", "pol")]
    # policy moved p1's y_1 up by 3 nats: right on p1 only (of p1, p2, p4)
    assert float(rows[1]["R"]) == pytest.approx(1 / 3) and float(rows[1]["gap"]) == pytest.approx(0.0)
    rc, out, _ = _run(["idealized", ref, "--format", "json", "--betas", "0.1,1,10"], capsys)
    data = json.loads(out)
    assert data["kind"] == "idealized" and data["meta"]["betas"] == [0.1, 1.0, 10.0]
    assert data["sections"][0]["rows"][0]["R_star@1"] == pytest.approx(1 / 3)
    target = tmp_path / "t.md"
    rc, out, err = _run(["idealized", ref, "-o", target], capsys)
    assert rc == 0 and out == "" and target.read_text().startswith("# Idealized")
    assert "note: \u2020 alpha" in err and "eps alone" in err


def test_flips_and_hardness_outputs(runs, capsys, tmp_path):
    ref, pol = runs
    rc, out, _ = _run(["flips", ref, pol, "--format", "csv", "--csv", tmp_path / "docs.csv"], capsys)
    assert rc == 0
    table = list(csv.DictReader(io.StringIO(out)))  # one CSV of three sections, a leading section column
    assert {r["section"] for r in table} == {"flips", "reward accuracy", "paired statistics"}
    rows = {(r["ties"], r["category"]): int(r["count"]) for r in table if r["section"] == "flips"}
    paired = [r for r in table if r["section"] == "paired statistics"]
    assert [(r["ties"], r["metric"]) for r in paired][:2] == [("excluded", "rank_acc"), ("included", "rank_acc")]
    assert rows[("excluded", "incorrect->correct")] == 1 and rows[("excluded", "incorrect->incorrect")] == 2
    per_doc = list(csv.DictReader((tmp_path / "docs.csv").open()))
    assert {r["id"]: r["category"] for r in per_doc}["p1"] == "incorrect->correct"
    rc, out, _ = _run(["flips", ref, pol, "--metric", "rank_acc_norm", "--format", "json"], capsys)
    assert rc == 0 and json.loads(out)["meta"]["metric"] == "rank_acc_norm"
    rc, out, _ = _run(["hardness", ref, "--beta", "0.5", "--top", "2", "--csv", tmp_path / "h.csv",
                       "--plot", tmp_path / "h.png"], capsys)
    assert rc == 0
    assert "## rankacc_x: hard to learn" in out and "right \\| one" in out and "wrong one" in out
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    h = list(csv.DictReader((tmp_path / "h.csv").open()))
    assert {r["id"]: float(r["c"]) for r in h} == {"p1": 1.0, "p2": 3.0, "p4": 18.0}
    assert [r["rejected"] for r in h if r["id"] == "p1"] == ["wrong\none"]  # full text in the CSV


@pytest.mark.parametrize(
    "setup, message",
    [
        ("missing", "no such file or folder"),
        ("nolog", "--log_samples"),
        ("malformed", "not valid JSON"),
        ("other_task", "is not a rankacc task"),
        ("different_docs", "score different documents"),
        ("bad_betas", "betas must be"),
        ("null_bytes", "line 2: field 'scores.n_bytes[1]': expected a positive integer, got null"),
        ("string_tokens",
         "line 1: field 'scores.n_tokens[0]': expected a positive integer or null (unknown), got \"2\""),
        ("not_utf8", "line 1: field 'doc.prompt': not UTF-8 text (byte 0xff"),
        ("empty", "holds no samples (an empty or interrupted run?)"),
        ("predict_only", "was run with lm_eval --predict_only"),
        ("plot_suffix", "c.jpg: the file name must end in .png or .svg"),
        ("plot_missing_folder", "(outputs go into existing folders: create it)"),
        ("csv_suffix", "docs.txt: the file name must end in .csv"),
        ("output_missing_folder", "(outputs go into existing folders: create it)"),
        ("output_says_other_format", "t.csv: the name says csv but --format is md"),
        ("csv_is_output", "name the same file"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, capsys, setup, message):
    ref = write_run(tmp_path / "ref", {"rankacc_x": REF}, model="ref")
    pol = tmp_path / "pol"
    args = ["flips", ref, pol]
    if setup == "nolog":
        write_run(pol, {"rankacc_x": POL}, samples=False)
    elif setup == "malformed":
        sub = write_run(pol, {"rankacc_x": POL})
        path = sub / f"samples_rankacc_x_{TS}.jsonl"
        path.write_text(path.read_text()[:-40])
    elif setup == "other_task":
        pol.mkdir()
        args = ["hardness", pol / f"samples_hellaswag_{TS}.jsonl"]
        (pol / f"samples_hellaswag_{TS}.jsonl").write_text(json.dumps({"doc": {"ctx": "c"}, "resps": [], "acc": 1}) + "\n")
    elif setup == "different_docs":
        write_run(pol, {"rankacc_x": POL[:3]})
    elif setup == "bad_betas":
        args = ["idealized", ref, "--betas", "0.1,-1"]
    elif setup in ("null_bytes", "string_tokens", "not_utf8", "empty", "predict_only"):
        sub = write_run(pol, {"rankacc_x": POL})
        path = sub / f"samples_rankacc_x_{TS}.jsonl"
        recs = [json.loads(line) for line in path.read_text().splitlines()]
        if setup == "null_bytes":
            recs[1]["scores"]["n_bytes"][1] = None
        elif setup == "string_tokens":
            recs[0]["scores"]["n_tokens"][0] = "2"
        elif setup == "predict_only":
            recs = [{k: v for k, v in r.items() if k not in ("scores", "rank_acc")} | {"metrics": []} for r in recs]
        path.write_text("".join(json.dumps(r) + "\n" for r in recs) if setup != "empty" else "")
        if setup == "not_utf8":
            path.write_bytes(path.read_bytes().replace(b"Q1?", b"Q1\xff", 1))
        args = ["hardness", pol]
    elif setup == "plot_suffix":
        args = ["hardness", ref, "--plot", tmp_path / "c.jpg"]
    elif setup == "plot_missing_folder":
        args = ["hardness", ref, "--plot", tmp_path / "nope" / "c.png"]
    elif setup == "csv_suffix":
        args = ["flips", ref, ref, "--csv", tmp_path / "docs.txt"]
    elif setup == "output_missing_folder":
        args = ["idealized", ref, "-o", tmp_path / "nope" / "t.md"]
    elif setup == "output_says_other_format":
        args = ["idealized", ref, "-o", tmp_path / "t.csv"]
    elif setup == "csv_is_output":
        args = ["hardness", ref, "--format", "csv", "-o", tmp_path / "h.csv", "--csv", tmp_path / "h.csv"]
    rc, out, err = _run(args, capsys)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"rankacc {args[0]}: error: ") and message in err
    assert not (tmp_path / "nope").exists() and not list(tmp_path.glob("*.*"))  # checked before any work


def test_every_csv_writer_neutralises_formulas(tmp_path, capsys):
    """Issue 11, item 10: text cells starting with = + - @ tab CR (or the quote)
    get a leading quote in every CSV; numbers, negative ones too, stay numbers."""
    from lm_eval_rankacc.report.cells import csv_text

    texts = {"prompt": "=HYPERLINK(\"x\")", "chosen": "+1+2", "rejected": "@SUM(A1)"}
    ref_docs = [doc("=1+1", [-10.0, -40.0], [1, 2], 0.75, [2, 1], prompt=texts["prompt"],
                    responses=[texts["chosen"], texts["rejected"]]),
                doc("-5", [-5.0, -8.0], [2, 1], 0.2, [1, 4], prompt="\tTab", responses=["\rCR", "'quoted"]),
                *REF[2:]]
    pol_docs = [doc(e["doc"]["id"], e["loglik"][::-1], e["doc"]["ranks"], e["doc"]["alpha"], e["n_tokens"],
                    prompt=e["doc"]["prompt"], responses=e["doc"]["responses"]) for e in ref_docs]
    ref = write_run(tmp_path / "ref", {"rankacc_x": ref_docs}, model="=ref")
    pol = write_run(tmp_path / "pol", {"rankacc_x": pol_docs}, model="@pol")
    outputs = {}
    for name, argv in {
        "idealized": ["idealized", ref, "--policy", pol],
        "flips": ["flips", ref, pol, "--csv", tmp_path / "flips.csv"],
        "hardness": ["hardness", ref, "--csv", tmp_path / "hardness.csv"],
    }.items():
        rc, out, err = _run([*argv, "--format", "csv"], capsys)
        assert rc == 0, err
        outputs[name] = out
    for name in ("flips.csv", "hardness.csv"):
        with open(tmp_path / name, encoding="utf-8", newline="") as fh:  # the bytes as written
            outputs[name] = fh.read()
    for name, text in outputs.items():
        for row in csv.reader(io.StringIO(text)):
            for cell in row:
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")) or _is_number(cell), (name, cell)
    ideal = list(csv.DictReader(io.StringIO(outputs["idealized"])))
    assert {csv_text(r["model"]) for r in ideal} == {"=ref", "@pol"} and ideal[0]["model"] == "'=ref"
    flips = {csv_text(r["id"]): r for r in csv.DictReader(io.StringIO(outputs["flips.csv"]))}
    assert set(flips) == {"=1+1", "-5", "p3", "p4"} and flips["-5"]["id"] == "'-5"
    hard = {csv_text(r["id"]): r for r in csv.DictReader(io.StringIO(outputs["hardness.csv"]))}
    assert {k: csv_text(hard["=1+1"][k]) for k in texts} == texts  # recoverable, in full
    assert hard["-5"]["prompt"] == "'\tTab" and hard["-5"]["rejected"] == "'\rCR"  # ranks [2, 1]
    assert hard["-5"]["chosen"] == "''quoted" and csv_text(hard["-5"]["chosen"]) == "'quoted"
    assert hard["=1+1"]["c"] == "-30.0" and float(hard["p4"]["c"]) == 18.0  # numbers as numbers
    table = list(csv.DictReader(io.StringIO(outputs["hardness"])))
    assert {r["prompt"] for r in table if r["id"] == "'=1+1"} == {"'" + texts["prompt"]}
    assert [r["c_min"] for r in table if r["section"] == "summary"] == ["-30.0"]


def test_outputs_follow_one_rule(runs, tmp_path, capsys):
    """Every output path: an existing folder, the suffix of its format (--plot
    .png or .svg for both figures); -o takes any other name, e.g. .txt."""
    ref, _ = runs
    rc, out, err = _run(["hardness", ref, "--plot", tmp_path / "c.svg", "-o", tmp_path / "h.txt"], capsys)
    assert rc == 0 and out == "", err
    assert "<svg" in (tmp_path / "c.svg").read_text()[:1000] and (tmp_path / "h.txt").read_text().startswith("# Hard")
    rc, out, err = _run(["idealized", ref, "--format", "json", "-o", tmp_path / "i.json"], capsys)
    assert rc == 0 and json.loads((tmp_path / "i.json").read_text())["kind"] == "idealized"


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_non_finite_scores_are_counted_and_numpy_stays_quiet(tmp_path, capsys):
    """Issue 11, item 13: idealized and flips count documents with NaN / inf
    scores in a note, as hardness does; no numpy RuntimeWarning leaks."""
    import warnings

    docs = [*REF[:2], doc("nan", [float("nan"), -1.0], [1, 2]), doc("inf", [-float("inf"), -float("inf")], [1, 2]),
            doc("big", [-1.0, float("nan")], [2, 1])]  # +inf is no log-probability: refused (test_samples.py)
    ref = write_run(tmp_path / "ref", {"rankacc_x": docs}, model="ref")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for argv in (["idealized", ref], ["flips", ref, ref], ["hardness", ref]):
            rc, out, err = _run(argv, capsys)
            assert rc == 0, err
            if argv[0] == "hardness":
                assert "rankacc_x: left out 3 non-finite scores" in out
            else:
                assert ("rankacc_x: 3 of 5 documents have NaN or infinite log-likelihoods and count as ranked "
                        "wrongly") in out
        for argv in (["idealized", ref], ["flips", ref, ref]):  # the released rules too
            rc, out, err = _run([*argv, "--convention", "released"], capsys)
            assert rc == 0, err
            assert "a NaN leaves the document out of the mean" in out


def test_missing_tasks_are_reported(tmp_path, capsys):
    ref = write_run(tmp_path / "ref", {"rankacc_x": REF, "rankacc_y": REF}, model="ref")
    pol = write_run(tmp_path / "pol", {"rankacc_x": POL}, model="pol")
    rc, out, _ = _run(["idealized", ref, "--policy", pol], capsys)
    assert rc == 0 and "| rankacc_y \u2020 | excluded | pol | 3 | missing |" in out
    assert "pol: task rankacc_y missing from its run" in out
    rc, out, _ = _run(["flips", ref, pol], capsys)
    assert rc == 0 and "pol: missing task(s) rankacc_y: not compared" in out
    rc, out, err = _run(["flips", ref, pol, "--tasks", "rankacc_y"], capsys)
    assert rc == 2 and "share no rankacc task" in err


def test_python_api_matches_cli(runs, capsys):
    from lm_eval_rankacc import analysis
    from lm_eval_rankacc.report.tables import render

    ref, pol = runs
    rc, out, _ = _run(["flips", ref, pol], capsys)
    assert out == render(analysis.flips(ref, pol), "md")


# ----------------------------------------------------------------- --convention released
#: Documents on which the two conventions disagree (summed log-likelihoods, 5 tokens per response unless given).
CONVENTION_DOCS = {
    "rankacc_x": [
        doc("c1", [-5.0, -5.0], [1, 2]),                # equal scores: paper right (>=), released wrong
        doc("c2", [-3.0, -6.0], [1, 2]),                # both right
        doc("c3", [float("nan"), -1.0], [1, 2]),        # NaN: paper wrong, released leaves it out
        doc("c4", [-1.0, -2.0, -2.5], [1, 2, 2]),       # a human tie among 3: paper right, released wrong
    ],
    "rankacc_alpaca_farm_val_ties": [
        doc("t1", [-4.0, -4.005], [1, 2], 0.75),        # margin 0.005: paper right, the ties path says tie: wrong
        doc("t2", [-4.0, -4.005], [1, 1], 0.5),         # a tie within 0.01: both right
        doc("t3", [-2.0, -9.0], [1, 2], 1.0),           # both right
    ],
}


@pytest.fixture()
def convention_runs(tmp_path):
    def moved(e):  # the policy: response 1 up by one nat
        return doc(e["doc"]["id"], [x if k else x + 1.0 for k, x in enumerate(e["loglik"])], e["doc"]["ranks"],
                   e["doc"]["alpha"], e["n_tokens"])

    pol = {task: [moved(e) for e in entries] for task, entries in CONVENTION_DOCS.items()}
    return (write_run(tmp_path / "ref", CONVENTION_DOCS, model="ref"), write_run(tmp_path / "pol", pol, model="pol"))


def _rows_by(out: str, *keys: str) -> dict:
    return {tuple(r[k] for k in keys): r for r in json.loads(out)["sections"][0]["rows"]}


def test_convention_released_end_to_end(convention_runs, capsys):
    ref, pol = convention_runs
    rc, out, err = _run(["idealized", ref, "--format", "json", "--betas", "1"], capsys)
    assert rc == 0, err
    paper = _rows_by(out, "task", "ties", "model")
    rc, out, err = _run(["idealized", ref, "--format", "json", "--betas", "1", "--convention", "released"], capsys)
    assert rc == 0, err
    data = json.loads(out)
    assert data["meta"]["convention"] == "released" and "alpha_eps" not in data["meta"]
    rel = _rows_by(out, "task", "ties", "model")
    assert paper[("rankacc_x", "excluded", "ref")]["R"] == pytest.approx(3 / 4)   # c1, c2, c4
    assert rel[("rankacc_x", "excluded", "ref")]["R"] == pytest.approx(1 / 3)     # c2 of c1, c2, c4 (c3 left out)
    ties = ("rankacc_alpaca_farm_val_ties", "included", "ref")
    assert paper[ties]["R"] == pytest.approx(1.0) and rel[ties]["R"] == pytest.approx(2 / 3)
    # the released upper bound at beta 1, by hand: t1 3 * LL1/LL2 = 3 * 0.99875 -> [1, 2] right; t2 1 * 0.99875
    # inside the band: a tie, right; t3 1000 * 2/9 -> right. rankacc_x: the n = 3 document is left out
    assert rel[ties]["R_star@1"] == pytest.approx(1.0)
    notes = " ".join(data["notes"])
    assert "1 of 4 documents left out (released convention)" in notes
    assert "scores pairs only: R* and R~* leave out the 1 document(s) of n > 2 responses" in notes
    rc, md, _ = _run(["idealized", ref, "--convention", "released"], capsys)
    assert "- convention: released" in md and "Convention released: every number follows" in md

    rc, out, err = _run(["flips", ref, pol, "--format", "json", "--convention", "released"], capsys)
    assert rc == 0, err
    data = json.loads(out)
    assert data["meta"]["convention"] == "released" and "released convention" in data["title"]
    counts = {(r["task"], r["ties"], r["category"]): r["count"] for r in data["sections"][0]["rows"]}
    # the policy adds 1 nat to response 1: c1 becomes right (released), c3 stays left out
    assert counts[("rankacc_x", "excluded", "incorrect->correct")] == 1
    assert sum(v for (t, ties, _), v in counts.items() if t == "rankacc_x" and ties == "excluded") == 3
    assert {d["id"]: d["category"] for d in data["documents"]}["c3"] == "left out"
    assert any("rankacc_x: 1 of 4 documents left out of the flips" in n for n in data["notes"])

    rc, _, err = _run(["idealized", ref, "--convention", "released", "--alpha-eps", "0.01"], capsys)
    assert rc == 2 and "--alpha-eps is the paper convention's" in err
    rc, _, err = _run(["flips", ref, pol, "--convention", "released", "--metric", "rank_acc_bytes"], capsys)
    assert rc == 2 and "rank_acc_bytes: the released code has no counterpart" in err
    with pytest.raises(SystemExit):  # argparse's choices
        _run(["idealized", ref, "--convention", "nonsense"], capsys)


def test_convention_python_api(convention_runs):
    from lm_eval_rankacc import analysis

    ref, _ = convention_runs
    report = analysis.idealized(ref, betas=[1.0], convention="released")
    assert report.meta["convention"] == "released"
    assert analysis.idealized(ref, betas=[1.0]).meta["convention"] == "paper"
    with pytest.raises(analysis.RunError, match="unknown convention"):
        analysis.flips(ref, ref, convention="code")


# ----------------------------------------------------------------- end to end
def _perturbed_copy(src: Path, dst: Path, seed: int = 1, scale: float = 0.5) -> Path:
    """A second tiny model: the same architecture and tokenizer with noisy weights."""
    from safetensors.numpy import load_file, save_file

    shutil.copytree(src, dst)
    weights = load_file(str(src / "model.safetensors"))
    rng = np.random.default_rng(seed)
    noisy = {k: (v + scale * rng.standard_normal(v.shape).astype(v.dtype) * (v.std() + 1e-3)) for k, v in weights.items()}
    save_file(noisy, str(dst / "model.safetensors"), metadata={"format": "pt"})
    return dst


@pytest.mark.slow
def test_end_to_end_two_tiny_models(tiny_model_dir, tmp_path, offline_env, capsys):
    second = _perturbed_copy(tiny_model_dir, tmp_path / "tiny-b")
    procs = []
    for name, model in (("a", tiny_model_dir), ("b", second)):
        cmd = [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={model}",
               "--device", "cpu", "--tasks", "rankacc_demo", "--output_path", str(tmp_path / f"out-{name}"),
               "--log_samples", "--batch_size", "16"]
        procs.append(subprocess.Popen(cmd, env=offline_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for proc in procs:
        log, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0, log[-3000:]
    out_a, out_b = tmp_path / "out-a", tmp_path / "out-b"
    results = {k: json.loads(next((tmp_path / f"out-{k}").glob("*/results_*.json")).read_text())["results"]["rankacc_demo"]
               for k in "ab"}

    rc, text, _ = _run(["idealized", out_a, "--policy", out_b, "--format", "json"], capsys)
    assert rc == 0
    rows = json.loads(text)["sections"][0]["rows"]
    included = {r["role"]: r for r in rows if r["ties"] == "included"}
    # recomputed observed accuracies are lm-eval's own aggregates
    assert included["reference"]["R"] == pytest.approx(results["a"]["rank_acc,none"])
    assert included["reference"]["R_norm"] == pytest.approx(results["a"]["rank_acc_norm,none"])
    assert included["policy"]["R"] == pytest.approx(results["b"]["rank_acc,none"])
    assert included["policy"]["R_norm"] == pytest.approx(results["b"]["rank_acc_norm,none"])
    assert included["reference"]["n"] == 33 and {r["ties"] for r in rows} == {"excluded", "included"}

    rc, text, _ = _run(["flips", out_a, out_b, "--format", "json"], capsys)
    assert rc == 0
    data = json.loads(text)
    assert len(data["documents"]) == 33
    inc = [r for r in data["sections"][0]["rows"] if r["ties"] == "included"]
    assert sum(r["count"] for r in inc) == 33
    after = sum(r["count"] for r in inc if r["category"].endswith("->correct"))
    assert after / 33 == pytest.approx(results["b"]["rank_acc,none"])

    rc, text, _ = _run(["hardness", out_a, "--top", "3", "--plot", tmp_path / "c.png", "--csv", tmp_path / "c.csv"], capsys)
    assert rc == 0 and "## rankacc_demo: hard to learn" in text
    assert (tmp_path / "c.png").stat().st_size > 1000
    assert len(list(csv.DictReader((tmp_path / "c.csv").open()))) == 29  # 33 minus 4 human ties


@pytest.mark.parametrize("command", [["flips"], ["compare"], ["idealized", "--policy"]])
def test_runs_read_in_parallel_processes_give_the_same_report(runs, capsys, parallel_reads, command):
    """Two runs over outputs.parallel.PARALLEL_BYTES are read one per process; the report
    is the same as when both are read here, and a broken run's error too."""
    ref, pol = runs
    argv = [command[0], ref, *command[1:], pol, "--format", "json"]
    rc, serial, _ = _run(argv, capsys)
    assert rc == 0
    forked = parallel_reads()
    rc, parallel, _ = _run(argv, capsys)
    assert rc == 0 and forked == [2] and parallel == serial
    samples = next(Path(pol).rglob("samples_*.jsonl"))
    samples.write_text(samples.read_text() + '{"doc_id": 9, ')
    rc, out, err = _run(argv, capsys)
    assert rc == 2 and out == "" and "not valid JSON" in err and str(samples) in err and len(forked) == 2
