"""Figure 4 of one or several training runs (paper Sec. 5, Fig. 4; App. E,
Figs 9-12), and the win-rate summaries it reads.

``figure4_distance.png``: against the distance travelled by the weights
||theta_t - theta_ref||_2 (``weight_distance`` of ``tracking_summary.jsonl``),
(a) the ranking accuracy of the tracked training subset (solid) and
validation set (dashed) and (b) the win rate (with its interval) of the
checkpoints that ``rankacc winrate`` judged (``RUN_DIR/winrate/*.json``, or
files given; their format: :mod:`lm_eval_rankacc.core.winrate_file`): one
line per run (:func:`plot_section5` across runs, e.g. a DPO^gamma sweep);
``figure4_points.csv`` holds every plotted point. Drawn only for runs that
recorded the distance; steps without a win rate are plotted for ranking
accuracy only. Like :mod:`.figures`, no torch or transformers.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_eval_rankacc.core import winrate_file
from lm_eval_rankacc.core.errors import RunError, TrainingDataError, UsageError
from lm_eval_rankacc.training.plotting import SET_LABELS, pyplot, save
from lm_eval_rankacc.training.run_folder.files import read_config
from lm_eval_rankacc.training.tracking_log import SETS, SUMMARY_FILE, TRACKING_FILE, read_rows, step_fields, summarize

FIGURE4, FIGURE4_POINTS = "figure4_distance.png", "figure4_points.csv"
#: Where a run's win-rate summaries (``rankacc winrate``) are found by default.
WINRATE_DIR = "winrate"


def read_winrate(path: str | Path) -> dict[str, Any]:
    """One ``rankacc winrate`` summary, checked
    (:func:`lm_eval_rankacc.core.winrate_file.check_summary`: a null ``step``
    is read from a ``checkpoint-<step>`` in ``policy_model`` or ``policy`` if
    there is one), with the ``file`` it was read from."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunError(f"{path}: not a readable win-rate JSON file ({err})") from None
    return {**winrate_file.check_summary(data, str(path)), "file": str(path)}


@dataclass
class Section5Run:
    """What Figure 4 shows of one run: its evaluation steps that recorded a
    distance, with their distance and ranking accuracies, and its win rates."""

    label: str
    run_dir: Path
    steps: list[int] = field(default_factory=list)
    distance: list[float] = field(default_factory=list)
    ratio: list[float | None] = field(default_factory=list)
    rank_acc: dict[str, list[float | None]] = field(default_factory=dict)
    #: the win-rate summaries placed at a step with a distance (``weight_distance`` added)
    win_rates: list[dict[str, Any]] = field(default_factory=list)
    #: the win-rate summaries not placed (no step, or a step without a distance)
    unplaced: list[dict[str, Any]] = field(default_factory=list)


def _run_summaries(run_dir: Path) -> list[dict[str, Any]]:
    """The summary rows of a run (``tracking_summary.jsonl``, else computed from ``tracking.jsonl``)."""
    rows = read_rows(run_dir / SUMMARY_FILE)
    if not rows:
        rows = summarize(read_rows(run_dir / TRACKING_FILE))
    if not rows:
        raise TrainingDataError(f"{run_dir}: no tracked evaluation step yet")
    return rows


def section5_run(run_dir: str | Path, winrates: list[dict[str, Any]], label: str) -> Section5Run:
    """The Figure 4 points of one run from its summaries and its win rates (:func:`read_winrate`)."""
    run_dir = Path(run_dir)
    summaries = _run_summaries(run_dir)
    extra = step_fields(summaries)
    run = Section5Run(label, run_dir)
    run.steps = sorted(k for k in {s["step"] for s in summaries} if "weight_distance" in extra.get(k, {}))
    run.distance = [float(extra[k]["weight_distance"]) for k in run.steps]
    run.ratio = [extra[k].get("weight_distance_ratio") for k in run.steps]
    acc = {(s["step"], s["set"]): s["rank_acc"] for s in summaries}
    run.rank_acc = {name: [acc.get((k, name)) for k in run.steps] for name in SETS}
    for w in winrates:
        d = extra.get(w["step"], {}).get("weight_distance") if w["win_rate"] is not None else None
        (run.unplaced if d is None else run.win_rates).append(w if d is None else {**w, "weight_distance": d})
    return run


def _by_baseline(win_rates: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for w in sorted(win_rates, key=lambda w: (w["weight_distance"], w["step"])):
        groups.setdefault(str(w["baseline"]), []).append(w)
    return groups


def _win_rate_panel(ax, runs: list[Section5Run]) -> dict[str, tuple[list, list]]:  # noqa: ANN001
    """Panel (b): win rate (with its interval) against distance, one line per run (and baseline)."""
    series = {}
    for i, run in enumerate(runs):
        groups = _by_baseline(run.win_rates)
        for baseline, ws in groups.items():
            label = run.label if len(groups) == 1 else f"{run.label} vs {baseline}"
            x = [w["weight_distance"] for w in ws]
            y = [w["win_rate"] for w in ws]
            err = [[max(0.0, w["win_rate"] - w["ci_low"]) if w["ci_low"] is not None else 0.0 for w in ws],
                   [max(0.0, w["ci_high"] - w["win_rate"]) if w["ci_high"] is not None else 0.0 for w in ws]]
            bars = ax.errorbar(x, y, yerr=err, marker="o", markersize=4, capsize=3, color=f"C{i % 10}", label=label)
            xs, ys = bars.lines[0].get_data()
            series[label] = (list(map(float, xs)), list(map(float, ys)))
    if series:
        ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
        ax.legend(fontsize=7, loc="best")
    else:
        ax.text(0.5, 0.5, "no win rates yet\n(rankacc winrate; RUN_DIR/winrate/*.json)", ha="center", va="center",
                transform=ax.transAxes, fontsize=9, color="grey")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(r"distance travelled $\|\theta - \theta_{ref}\|_2$")
    ax.set_ylabel("win rate (ties count half)")
    ax.set_title("(b) win rate against the distance travelled", fontsize=10)
    return series


def figure4(runs: list[Section5Run], path: str | Path, title: str = "") -> dict[str, dict[str, tuple[list, list]]]:
    """Draw Figure 4 (see the module docstring); return the plotted lines,
    read back from the figure: ``{"rank_acc": {label: (x, y)}, "win_rate": {label: (x, y)}}``."""
    plt = pyplot()
    fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(12.5, 4.6), dpi=80, sharex=True)
    for i, run in enumerate(runs):
        for set_name, style in (("train", "-"), ("validation", "--")):
            pts = [(d, a) for d, a in zip(run.distance, run.rank_acc.get(set_name, [])) if a is not None]
            if pts:
                ax_a.plot(*zip(*pts), linestyle=style, marker="o", markersize=3, color=f"C{i % 10}",
                          label=f"{run.label} ({SET_LABELS[set_name]})")
    rank_acc = {line.get_label(): tuple(list(map(float, v)) for v in line.get_data()) for line in ax_a.get_lines()}
    ax_a.set_ylim(-0.02, 1.02)
    ax_a.set_xlabel(r"distance travelled $\|\theta - \theta_{ref}\|_2$")
    ax_a.set_ylabel("ranking accuracy")
    ax_a.set_title("(a) ranking accuracy against the distance travelled", fontsize=10)
    if rank_acc:
        ax_a.legend(fontsize=7, loc="best")
    win_rate = _win_rate_panel(ax_b, runs)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save(fig, plt, path)
    return {"rank_acc": rank_acc, "win_rate": win_rate}


POINT_COLUMNS = ("run", "step", "weight_distance", "weight_distance_ratio", "rank_acc_train", "rank_acc_validation",
                 "baseline", "win_rate", "ci_low", "ci_high", "winrate_file")


def write_points(runs: list[Section5Run], path: str | Path) -> Path:
    """``figure4_points.csv``: one row per run and step (and per win rate at that step)."""
    lines = []
    for run in runs:
        wins: dict[int, list[dict[str, Any]]] = {}
        for w in run.win_rates:
            wins.setdefault(w["step"], []).append(w)
        for k, step in enumerate(run.steps):
            base = {"run": run.label, "step": step, "weight_distance": run.distance[k],
                    "weight_distance_ratio": run.ratio[k], "rank_acc_train": run.rank_acc["train"][k],
                    "rank_acc_validation": run.rank_acc["validation"][k]}
            for w in wins.get(step) or [{}]:
                lines.append({**base, "baseline": w.get("baseline"), "win_rate": w.get("win_rate"),
                              "ci_low": w.get("ci_low"), "ci_high": w.get("ci_high"), "winrate_file": w.get("file")})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=POINT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows([{k: "" if v is None else v for k, v in row.items()} for row in lines])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def _inside(path: Any, folder: Path) -> bool:
    if not path:
        return False
    try:
        return Path(str(path)).resolve().is_relative_to(folder.resolve())
    except (OSError, ValueError):
        return False


def winrate_files_of(run_dir: Path) -> list[Path]:
    """A run's own win-rate summaries: ``winrate/*.json`` and ``winrate/*/winrate.json``
    (``rankacc winrate --output RUN_DIR/winrate/NAME``)."""
    folder = run_dir / WINRATE_DIR
    return sorted({*folder.glob("*.json"), *folder.glob(f"*/{winrate_file.SUMMARY_FILE}")})


def assign_winrates(run_dirs: list[Path], files: list[str | Path] = ()) -> tuple[list[list[dict]], list[dict]]:
    """(each run's win rates, those of no run): a run's own ``winrate/*.json``,
    and each file given: to the only run, else to the run folder its ``policy`` lies in."""
    own = [[read_winrate(f) for f in winrate_files_of(d)] for d in run_dirs]
    unmatched = []
    for f in files:
        w = read_winrate(f)
        where = [i for i, d in enumerate(run_dirs) if _inside(w.get("policy_model"), d) or _inside(w["policy"], d)]
        if len(run_dirs) == 1 or len(where) == 1:
            i = 0 if len(run_dirs) == 1 else where[0]
            if all(Path(x["file"]).resolve() != Path(w["file"]).resolve() for x in own[i]):
                own[i].append(w)
        else:
            unmatched.append(w)
    return own, unmatched


def run_names(run_dirs: list[Path]) -> list[str]:
    """A distinct name per run: its folder's (``parent_folder`` where two share one)."""
    names = [d.resolve().name for d in run_dirs]
    return [f"{d.resolve().parent.name}_{n}" if names.count(n) > 1 else n for d, n in zip(run_dirs, names)]


def run_labels(run_dirs: list[Path]) -> list[str]:
    """A run's name (:func:`run_names`) and its objective, for legends."""
    out = []
    for d, name in zip(run_dirs, run_names(run_dirs)):
        dpo = read_config(d).get("dpo", {})
        loss = dpo.get("loss")
        gamma = f", gamma={float(dpo['gamma']):g}" if loss == "dpo_gamma" and dpo.get("gamma") is not None else ""
        objective = f"{loss}{gamma}" if loss else ""
        out.append(f"{name} ({objective})" if objective and objective != name else name)
    return out


def _notes(runs: list[Section5Run], unmatched: list[dict[str, Any]]) -> list[str]:
    """What Figure 4 leaves out, one line each (nothing is dropped silently)."""
    notes = [f"{r.run_dir}: no distance travelled in its {SUMMARY_FILE} (a run from before it was recorded): "
             "not in figure 4" for r in runs if not r.steps]
    for r in runs:
        for w in r.unplaced:
            why = ("is null (nothing was scored)" if w["win_rate"] is None else "has no step" if w["step"] is None
                   else f"is for step {w['step']}, which has no recorded distance")
            notes.append(f"{w['file']}: the win rate {why} in {r.run_dir}: not plotted")
    notes += [f"{w['file']}: its policy {w['policy']} is in none of the runs given: not plotted" for w in unmatched]
    return notes


def plot_section5(run_dirs: list[str | Path], winrate_files: list[str | Path] = (), out: str | Path | None = None
                  ) -> tuple[list[Path], list[Section5Run], list[str]]:
    """Figure 4 of one or several runs (e.g. a DPO^gamma sweep), into ``out``
    (default: the run's folder; needed for several runs): (the files written,
    the runs' points, what was left out). Nothing is drawn when no run recorded the distance."""
    dirs = [Path(d) for d in run_dirs]
    if not dirs:
        raise UsageError("figure 4 needs at least one run folder")
    if out is None and len(dirs) > 1:
        raise UsageError("figure 4 across several runs needs an output folder (--out-dir)")
    for d in dirs:
        if not (d / TRACKING_FILE).is_file() and not (d / SUMMARY_FILE).is_file():
            raise FileNotFoundError(f"{d}: no {TRACKING_FILE} (is it the --output_dir of a `rankacc dpo` run?)")
    assigned, unmatched = assign_winrates(dirs, list(winrate_files))
    runs = [section5_run(d, w, label) for d, w, label in zip(dirs, assigned, run_labels(dirs))]
    notes = _notes(runs, unmatched)
    drawn = [r for r in runs if r.steps]
    if not drawn:
        return [], runs, notes
    folder = Path(out) if out is not None else dirs[0]
    figure4(drawn, folder / FIGURE4, "Ranking accuracy and win rate against the distance travelled (Sec. 5)")
    return [folder / FIGURE4, write_points(drawn, folder / FIGURE4_POINTS)], runs, notes
