"""``rankacc plot-training`` reads a finished run's tracking log alone: it draws
its figures without importing torch or transformers (checked in a fresh
interpreter, on a small log written here). What each figure plots is read
back from the figure and checked against numbers computed here from the log:
Figure 2's shares, losses and margins per category and step, and the step of
the lowest validation loss; Figure 3's points (c, DPO loss) of that step and
Theorem 4.1's curve; Figure 4 (Sec. 5): the runs' distances, ranking
accuracies and win rates (and ``figure4_points.csv``), one line per run
across runs. A run without the distance still gets figures 2 and 3, and
what figure 4 leaves out is reported."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

CATEGORIES = ("correct->correct", "correct->incorrect", "incorrect->correct", "incorrect->incorrect")

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


# ----------------------------------------------------------------- figures 2 and 3
@pytest.fixture
def drawn(monkeypatch):
    """The matplotlib figures :mod:`lm_eval_rankacc.training.figures` saves, by file name (read before closing)."""
    from lm_eval_rankacc.training import figures

    figs = {}
    save = figures.save

    def keep(fig, plt, path):
        figs[Path(path).name] = fig
        return save(fig, plt, path)

    monkeypatch.setattr(figures, "save", keep)
    return figs


def _mean(values):
    return sum(values) / len(values) if values else math.nan


def _best_step(rows) -> int:
    """The step after the start with the lowest mean validation loss (the first, on a tie)."""
    steps = sorted({r["step"] for r in rows})
    val_loss = {k: _mean([r["loss"] for r in rows if r["step"] == k and r["set"] == "validation"]) for k in steps}
    return min((k for k in steps if k > 0), key=lambda k: (val_loss[k], k))


def test_figure2_plots_each_categorys_share_loss_and_margin(tmp_path, drawn):
    from lm_eval_rankacc.training import plot_training

    rows = write_run(tmp_path / "run", shifts=(0.0, 1.5, 0.5))  # step 2 has the lowest validation loss
    plot_training(tmp_path / "run")
    fig = drawn["figure2_flips.png"]
    steps = sorted({r["step"] for r in rows})
    best = _best_step(rows)
    assert best == 2 and best != steps[-1]
    axes = np.array(fig.axes).reshape(2, 3)
    for row, set_name in enumerate(("train", "validation")):
        at = {k: [r for r in rows if r["step"] == k and r["set"] == set_name] for k in steps}
        for col, key in enumerate(("share", "dpo_loss", "reward_margin")):
            ax = axes[row][col]
            lines = {line.get_label(): line for line in ax.get_lines()}
            assert set(CATEGORIES) <= lines.keys()
            for cat in CATEGORIES:
                x, y = lines[cat].get_data()
                mine = {k: [r for r in at[k] if r["category"] == cat] for k in steps}
                expected = [len(mine[k]) / len(at[k]) if key == "share" else _mean([r[key] for r in mine[k]])
                            for k in steps]
                assert list(x) == steps
                np.testing.assert_allclose(np.asarray(y, dtype=float), expected, rtol=1e-12, err_msg=(set_name, key, cat))
            dashed = [line for label, line in lines.items() if label not in CATEGORIES]
            assert len(dashed) == 1 and list(dashed[0].get_xdata()) == [best, best]


def test_figure3_plots_the_pairs_of_the_best_step_and_theorem_4_1s_curve(tmp_path, drawn):
    from lm_eval_rankacc.training import plot_training

    rows = write_run(tmp_path / "run", shifts=(0.0, 0.3, 0.1))  # at step 2, p1 is still ranked wrongly
    plot_training(tmp_path / "run")
    (ax,) = drawn["figure3_loss_vs_c.png"].axes
    best = _best_step(rows)
    assert best == 2
    at = [r for r in rows if r["step"] == best and r["set"] == "train"]
    correct = sorted((r["c"], r["dpo_loss"]) for r in at if r["logp_chosen"] >= r["logp_rejected"])  # Def. 2.3
    wrong = sorted((r["c"], r["dpo_loss"]) for r in at if r["logp_chosen"] < r["logp_rejected"])
    assert correct and wrong
    points = [sorted(map(tuple, c.get_offsets().tolist())) for c in ax.collections]
    assert points == [correct, wrong]
    ((curve_x, curve_y),) = [line.get_data() for line in ax.get_lines() if "Thm. 4.1" in line.get_label()]
    beta = 0.1  # write_run's training_config.json
    np.testing.assert_allclose(curve_y, np.logaddexp(0.0, -beta * np.asarray(curve_x)), rtol=1e-12)
    assert min(curve_x) < min(c for c, _ in correct + wrong) and max(curve_x) > max(c for c, _ in correct + wrong)


def test_plot_runs_lays_out_one_run_or_several(tmp_path):
    """One run: its figures in its folder (or --out-dir). Several: each run's
    figures 2 and 3 in OUT_DIR/<run name>/, figure 4 across them in OUT_DIR."""
    from lm_eval_rankacc.core.errors import UsageError
    from lm_eval_rankacc.training.figures import plot_runs

    a, b = tmp_path / "x" / "run", tmp_path / "y" / "run"  # the same folder name: named by their parents
    write_run(a, {0: 0.0, 2: 1.0})
    write_run(b, {0: 0.0, 2: 0.5})
    paths, notes = plot_runs([a])
    assert paths == [a / "figure2_flips.png", a / "figure3_loss_vs_c.png", a / "figure4_distance.png",
                     a / "figure4_points.csv"] and notes == []
    out = tmp_path / "out"
    paths, notes = plot_runs([a, b], out)
    assert paths == [out / "x_run" / "figure2_flips.png", out / "x_run" / "figure3_loss_vs_c.png",
                     out / "y_run" / "figure2_flips.png", out / "y_run" / "figure3_loss_vs_c.png",
                     out / "figure4_distance.png", out / "figure4_points.csv"]
    assert all(p.is_file() for p in paths) and not (out / "x_run" / "figure4_distance.png").exists()
    with pytest.raises(UsageError, match="several RUN_DIRs: give --out-dir"):
        plot_runs([a, b])


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
    from lm_eval_rankacc.training.figure4 import figure4, plot_section5

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
