"""``rankacc plot-training`` reads a finished run's tracking log alone: it draws
its figures without importing torch or transformers (checked in a fresh
interpreter, on a small log written here). Figure 4 (Sec. 5): the lines
drawn are the runs' distances, ranking accuracies and win rates (read back
from the figure and from ``figure4_points.csv``, against the inputs), one
line per run across runs; a run without the distance still gets figures 2
and 3, and what figure 4 leaves out is reported."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

# (pair id, policy chosen/rejected, reference chosen/rejected) at step 0 and step 2
PAIRS = [("p0", -10.0, -12.0), ("p1", -8.0, -7.5), ("p2", -20.0, -20.0)]


def _row(step: int, set_name: str, pair_id: str, chosen: float, rejected: float, ref_c: float, ref_r: float):
    correct, ref_correct = chosen >= rejected, ref_c >= ref_r
    category = ("correct" if ref_correct else "incorrect") + "->" + ("correct" if correct else "incorrect")
    margin = 0.1 * ((chosen - ref_c) - (rejected - ref_r))
    return {"step": step, "epoch": step / 4, "set": set_name, "pair_id": pair_id, "doc_id": pair_id,
            "logp_chosen": chosen, "logp_rejected": rejected, "ref_logp_chosen": ref_c, "ref_logp_rejected": ref_r,
            "c": ref_r - ref_c, "reward_margin": margin, "dpo_loss": 0.69 - margin, "loss": 0.69 - margin,
            "correct": correct, "ref_correct": ref_correct, "category": category}


def write_run(run_dir: Path, distances: dict[int, float] | None = None, shifts=(0.0, 1.5), gamma=None) -> list:
    """A run folder with a tracking log of evaluation steps 0, 2, 4, ...
    (one per shift) and its options; with ``distances`` (step -> distance),
    also the summary file holding them (ratio: distance / 10). Returns the rows."""
    rows = []
    for k, shift in enumerate(shifts):
        for set_name in ("train", "validation"):
            for pid, c, r in PAIRS:
                rows.append(_row(2 * k, set_name, pid, c + shift, r - shift / 2 - (set_name == "validation"), c, r))
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "tracking.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    if distances is not None:
        summary = []
        for step in sorted({r["step"] for r in rows}):
            for set_name in ("train", "validation"):
                rs = [r for r in rows if (r["step"], r["set"]) == (step, set_name)]
                summary.append({"step": step, "set": set_name, "n": len(rs),
                                "rank_acc": sum(r["correct"] for r in rs) / len(rs),
                                "weight_distance": distances[step], "weight_distance_ratio": distances[step] / 10})
        (run_dir / "tracking_summary.jsonl").write_text("".join(json.dumps(s) + "\n" for s in summary))
    loss = {"loss": "dpo"} if gamma is None else {"loss": "dpo_gamma", "gamma": gamma}
    config = {"command": "dpo", "dpo": {"model_name_or_path": "tiny", "beta": 0.1, **loss}}
    (run_dir / "training_config.json").write_text(json.dumps(config), encoding="utf-8")
    return rows


CHECK = """
import sys
from pathlib import Path

run_dir = Path(sys.argv[2])
if sys.argv[1] == "cli":
    from lm_eval_rankacc import cli

    assert cli.main(["plot-training", str(run_dir)]) == 0
else:
    from lm_eval_rankacc.training import plot_training

    plot_training(run_dir)
names = ["figure2_flips.png", "figure3_loss_vs_c.png"] + ["figure4_distance.png"] * (sys.argv[3] == "distance")
for name in names:
    assert (run_dir / name).read_bytes()[:4] == b"\\x89PNG", name
assert (run_dir / "figure4_distance.png").exists() == (sys.argv[3] == "distance")
heavy = sorted(m for m in ("torch", "transformers") if m in sys.modules)
assert not heavy, f"imported {heavy}"
"""


@pytest.mark.parametrize("entry,log", [("plot_training", "plain"), ("cli", "plain"), ("cli", "distance")])
def test_plot_training_imports_no_torch_or_transformers(tmp_path, entry, log):
    write_run(tmp_path / "run", {0: 0.0, 2: 1.0} if log == "distance" else None)
    proc = subprocess.run([sys.executable, "-c", CHECK, entry, str(tmp_path / "run"), log],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


# ----------------------------------------------------------------- figure 4
def _winrate(path: Path, win_rate, step, policy, baseline="gens/reference", ci=0.05, **extra) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lo, hi = (None, None) if win_rate is None else (win_rate - ci, win_rate + ci)
    path.write_text(json.dumps({"win_rate": win_rate, "ci_low": lo, "ci_high": hi, "step": step,
                                "policy": str(policy), "baseline": baseline, **extra}))
    return path


def _sweep(tmp_path: Path):
    """Two runs of a gamma sweep with distances, their win rates (own and
    given), and the expected points: {run: {step: (distance, acc_train, acc_val)}}."""
    runs = {"a": ({0: 0.0, 2: 0.8, 4: 1.7}, (0.0, 1.5, 3.0), 0.5),
            "b": ({0: 0.0, 2: 0.4, 4: 0.9}, (0.0, 0.5, 1.0), 0.9)}
    expected = {}
    for name, (dist, shifts, gamma) in runs.items():
        rows = write_run(tmp_path / name, dist, shifts, gamma)
        acc = {(r["step"], r["set"]): [] for r in rows}
        for r in rows:
            acc[(r["step"], r["set"])].append(r["logp_chosen"] >= r["logp_rejected"])  # Def. 2.3, ties correct
        expected[name] = {k: (d, sum(acc[(k, "train")]) / 3, sum(acc[(k, "validation")]) / 3) for k, d in dist.items()}
    a, b = tmp_path / "a", tmp_path / "b"
    _winrate(a / "winrate" / "step2" / "winrate.json", 0.55, 2, "gens/a2")
    _winrate(a / "winrate" / "last.json", 0.62, None, "gens/a4", policy_model=str(a / "checkpoint-4"))
    _winrate(a / "winrate" / "odd.json", 0.7, 3, "gens/a3")  # no evaluation at step 3: reported, not plotted
    given = [_winrate(tmp_path / "given" / "b4.json", 0.51, 4, b / "gens4"),
             _winrate(tmp_path / "given" / "lost.json", 0.4, 2, tmp_path / "elsewhere")]  # in no run: reported
    return a, b, given, expected


def test_figure4_draws_each_runs_points(tmp_path):
    from lm_eval_rankacc.training.figures import figure4, plot_section5

    a, b, given, expected = _sweep(tmp_path)
    paths, runs, notes = plot_section5([a, b], given, tmp_path / "out")
    assert [p.name for p in paths] == ["figure4_distance.png", "figure4_points.csv"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG"
    assert len(notes) == 2 and any("odd.json" in n and "step 3" in n for n in notes)
    assert any("lost.json" in n and "none of the runs" in n for n in notes)

    series = figure4(runs, tmp_path / "again.png")
    labels = {"a": "a (dpo_gamma, gamma=0.5)", "b": "b (dpo_gamma, gamma=0.9)"}
    for name, points in expected.items():
        steps = sorted(points)
        xs = [points[k][0] for k in steps]
        assert series["rank_acc"][f"{labels[name]} (training subset)"] == (xs, [points[k][1] for k in steps])
        assert series["rank_acc"][f"{labels[name]} (validation)"] == (xs, [points[k][2] for k in steps])
    assert series["win_rate"][labels["a"]] == ([0.8, 1.7], [0.55, 0.62])  # by distance; step 4 from checkpoint-4
    assert series["win_rate"][labels["b"]] == ([0.9], [0.51])

    with paths[1].open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == 6  # one row per run and step (one win rate per step here)
    for row in table:
        name = "a" if row["run"] == labels["a"] else "b"
        d, acc_train, acc_val = expected[name][int(row["step"])]
        assert float(row["weight_distance"]) == d and float(row["weight_distance_ratio"]) == pytest.approx(d / 10)
        assert float(row["rank_acc_train"]) == acc_train and float(row["rank_acc_validation"]) == acc_val
    wins = {(r["run"], int(r["step"])): r["win_rate"] for r in table if r["win_rate"]}
    assert wins == {(labels["a"], 2): "0.55", (labels["a"], 4): "0.62", (labels["b"], 4): "0.51"}


def test_cli_plot_training_across_runs_and_old_runs(tmp_path, capsys):
    from lm_eval_rankacc import cli

    a, b, given, _ = _sweep(tmp_path)
    old = tmp_path / "old"
    write_run(old)  # a run from before the distance was recorded
    out = tmp_path / "out"
    argv = ["plot-training", str(a), str(b), str(old), "--out-dir", str(out), "--winrate", *map(str, given)]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    printed = captured.out.split()
    for name in ("a", "b", "old"):
        for fig in ("figure2_flips.png", "figure3_loss_vs_c.png"):
            assert (out / name / fig).read_bytes()[:4] == b"\x89PNG" and str(out / name / fig) in printed
    assert str(out / "figure4_distance.png") in printed and (out / "figure4_points.csv").is_file()
    assert "old: no distance travelled" in captured.err and "lost.json" in captured.err
    # an old run alone: figures 2 and 3 as before, no figure 4
    assert cli.main(["plot-training", str(old)]) == 0
    assert (old / "figure2_flips.png").is_file() and not (old / "figure4_distance.png").exists()
    # several runs need --out-dir; a malformed win-rate file is one line, exit 2
    assert cli.main(["plot-training", str(a), str(b)]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"win_rate": 1.5}))
    capsys.readouterr()
    assert cli.main(["plot-training", str(a), "--winrate", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "bad.json" in err and "not a `rankacc winrate` summary" in err and "\n" not in err
