"""Figures 2 and 3 of a training run's tracking log (after the paper's), and
the figures of one or several runs together (:func:`plot_runs`, ``rankacc
plot-training``).

- ``figure2_flips.png``: per tracked set (rows: the training subset, the
  validation set), over training steps: the share of each category relative
  to the reference (correct->correct, correct->incorrect, incorrect->correct,
  incorrect->incorrect), the mean DPO loss per category and the mean reward
  margin per category; a dashed line marks the step of the lowest
  validation loss.
- ``figure3_loss_vs_c.png``: at that step, each tracked training pair's
  reference log-ratio c = log pRef(y_l|x) - log pRef(y_w|x) against its DPO
  loss, coloured by whether the policy ranks it correctly, with Theorem 4.1's
  curve -log sigmoid(beta c): a pair is ranked correctly exactly when its
  point lies on or below the curve.
- ``figure4_distance.png``: Sec. 5's, :mod:`.figure4`.

matplotlib (Agg) is imported only when a figure is drawn (:mod:`.plotting`),
and neither torch nor transformers is: :func:`plot_training` redraws them
from a run folder (``rankacc plot-training RUN_DIR``) with the log alone
(:mod:`.tracking_log`).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from lm_eval_rankacc.core import theory
from lm_eval_rankacc.core.checkpoint_names import CHECKPOINT_PREFIX
from lm_eval_rankacc.core.errors import TrainingDataError, UsageError
from lm_eval_rankacc.training.figure4 import plot_section5, run_names
from lm_eval_rankacc.training.plotting import SET_LABELS, pyplot, save
from lm_eval_rankacc.training.run_folder.files import read_config
from lm_eval_rankacc.training.tracking_log import SETS, TRACKING_FILE, best_step, read_rows, summarize

log = logging.getLogger("lm_eval_rankacc.training")

FIGURE2, FIGURE3 = "figure2_flips.png", "figure3_loss_vs_c.png"
COLORS = dict(zip(theory.CATEGORIES, ("#1b9e77", "#d95f02", "#7570b3", "#e7298a")))


def figure2(summaries: list[dict[str, Any]], path: str | Path, best: int | None = None, title: str = "") -> Path:
    """Figure 2 of the summaries (:func:`.tracking_log.summarize`) at ``path``;
    ``best``: the step the dashed line marks."""
    plt = pyplot()
    sets = [s for s in SETS if any(x["set"] == s for x in summaries)]
    fig, axes = plt.subplots(len(sets), 3, figsize=(13, 3.3 * len(sets)), dpi=80, squeeze=False)
    panels = (("share", "share of pairs"), ("dpo_loss", "mean DPO loss"), ("reward_margin", "mean reward margin"))
    for row, set_name in enumerate(sets):
        ss = [s for s in summaries if s["set"] == set_name]
        steps = [s["step"] for s in ss]
        for col, (key, label) in enumerate(panels):
            ax = axes[row][col]
            for cat in theory.CATEGORIES:
                ys = [s["categories"][cat][key] for s in ss]
                ys = [np.nan if y is None else y for y in ys]
                ax.plot(steps, ys, marker="o", markersize=3, linewidth=1.5, color=COLORS[cat], label=cat)
            if best is not None:
                ax.axvline(best, color="black", linestyle="--", linewidth=1)
            ax.set_xlabel("training step")
            ax.set_ylabel(label)
            n = ss[-1]["n"] if ss else 0
            ax.set_title(f"{SET_LABELS.get(set_name, set_name)} (n={n}): {label}", fontsize=9)
            if key == "share":
                ax.set_ylim(-0.02, 1.02)
        axes[row][0].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save(fig, plt, path)


def figure3(rows: list[dict[str, Any]], beta: float, path: str | Path, step: int | None = None, title: str = "") -> Path:
    """Figure 3 of the tracking rows of one step at ``path``, with Thm. 4.1's curve at ``beta``."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5), dpi=80)
    pts = [(r["c"], r["dpo_loss"], r["correct"]) for r in rows if r["c"] is not None and r["dpo_loss"] is not None]
    if pts:
        c = np.array([p[0] for p in pts])
        loss = np.array([p[1] for p in pts])
        ok = np.array([p[2] for p in pts], dtype=bool)
        ax.scatter(c[ok], loss[ok], s=12, color="#1b9e77", alpha=0.75, label=f"ranked correctly ({ok.sum()})")
        ax.scatter(c[~ok], loss[~ok], s=12, color="#d95f02", alpha=0.75, label=f"ranked incorrectly ({(~ok).sum()})")
        lo, hi = float(c.min()), float(c.max())
        pad = max(1.0, 0.05 * (hi - lo))
        grid = np.linspace(lo - pad, hi + pad, 800)
        ax.plot(grid, theory.dpo_loss_threshold(grid, beta), color="black", linewidth=1.5,
                label=r"$-\log\sigma(\beta c)$ (Thm. 4.1)")
        ax.axvline(0.0, color="grey", linestyle=":", linewidth=1)
        # log scale: for c > 0 the threshold decays like exp(-beta c), and the pairs
        # ranked wrongly are the points above it
        positive = loss[loss > 0]
        ax.set_yscale("log")
        if len(positive):
            ax.set_ylim(max(float(positive.min()) * 0.3, 1e-8), max(float(positive.max()), 1.0) * 3)
        ax.set_xlim(lo - pad, hi + pad)
        ax.legend(fontsize=8, loc="lower left")
    ax.set_xlabel("c = log pRef(y_l|x) - log pRef(y_w|x)")
    ax.set_ylabel("DPO loss (log scale)")
    where = f" at step {step}" if step is not None else ""
    ax.set_title(title or f"Training pairs{where} (beta = {beta:g})", fontsize=10)
    fig.tight_layout()
    return save(fig, plt, path)


def _label(model: str) -> str:
    """A short name for a model path (a checkpoint is named with its run folder)."""
    path = Path(str(model))
    if path.exists():
        path = path.resolve()
    return f"{path.parent.name}/{path.name}" if path.name.startswith(CHECKPOINT_PREFIX) else path.name


def plot_training(run_dir: str | Path, out_dir: str | Path | None = None,
                  winrate_files: list[str | Path] = (), figure_4: bool = True) -> list[Path]:
    """Draw figures 2 and 3 from ``run_dir``'s tracking log, and (``figure_4``)
    figure 4 when the run recorded the distance travelled (:func:`plot_section5`,
    with the run's own win rates and ``winrate_files``; what it leaves out is
    logged); return their paths."""
    run_dir = Path(run_dir)
    tracking = run_dir / TRACKING_FILE
    if not tracking.is_file():
        raise FileNotFoundError(f"{run_dir}: no {TRACKING_FILE} (is it the --output_dir of a `rankacc dpo` run?)")
    rows = read_rows(tracking)
    if not rows:
        raise TrainingDataError(f"{tracking}: no rows yet (no evaluation step has finished)")
    config = read_config(run_dir)
    beta = float(config.get("dpo", {}).get("beta", 0.1))
    loss_name = config.get("dpo", {}).get("loss", "dpo")
    summaries = summarize(rows)
    best = best_step(summaries)
    out = Path(out_dir) if out_dir else run_dir
    model = _label(config.get("dpo", {}).get("model_name_or_path", ""))
    title = f"{model}: {loss_name}, beta = {beta:g}; categories relative to the reference" + (
        f"; dashed: lowest validation loss (step {best})" if best is not None else "")
    paths = [figure2(summaries, out / FIGURE2, best, title)]
    step = best if best is not None else max(r["step"] for r in rows)
    at = [r for r in rows if r["step"] == step and r["set"] == "train"] or [
        r for r in rows if r["step"] == step and r["set"] == "validation"]
    which = "training subset" if at and at[0]["set"] == "train" else "validation pairs"
    label = "lowest validation loss" if best is not None else "last evaluation"
    paths.append(figure3(at, beta, out / FIGURE3, step,
                         f"{which} at step {step} ({label}), beta = {beta:g}"))
    if figure_4:
        drawn, _, notes = plot_section5([run_dir], winrate_files, out)
        for note in notes:
            log.warning("%s", note)
        paths += drawn
    return paths


def draw_figures(run_dir: str | Path) -> tuple[list[Path], str | None]:
    """The figures of a finished run (:func:`plot_training`): (their paths,
    None), or, when they cannot be drawn or written (a full disk), ([], why),
    logged as a warning: the run's checkpoints and log are kept, and the
    command line exits non-zero (its outputs are incomplete)."""
    try:
        return plot_training(run_dir), None
    except Exception as err:  # noqa: BLE001 - whatever matplotlib raises
        problem = (f"could not draw the figures of {run_dir} ({err}); the checkpoints and the tracking log are "
                   f"complete: draw them with `rankacc plot-training {run_dir}`")
        log.warning("%s", problem)
        return [], problem


def plot_runs(run_dirs: list[str | Path], out_dir: str | Path | None = None,
              winrate_files: list[str | Path] = ()) -> tuple[list[Path], list[str]]:
    """The figures of ``rankacc plot-training``: (the files written, what
    figure 4 left out). One run: its figures 2, 3 and 4 in ``out_dir``
    (default: the run's folder). Several runs need ``out_dir``: each run's
    figures 2 and 3 in ``OUT_DIR/<run name>/`` (:func:`.figure4.run_names`)
    and figure 4 across the runs in ``OUT_DIR``."""
    runs = [Path(d) for d in run_dirs]
    if len(runs) > 1 and not out_dir:
        raise UsageError("several RUN_DIRs: give --out-dir for the figure across runs")
    out = Path(out_dir) if out_dir else None
    paths = []
    for run, name in zip(runs, run_names(runs)):
        paths += plot_training(run, out / name if out and len(runs) > 1 else out, figure_4=False)
    found, _, notes = plot_section5(runs, winrate_files, out)
    return paths + found, notes


#: Names of Figure 4 that this module held in release 0.1 -> where they are now.
_MOVED_NAMES = {name: "lm_eval_rankacc.training.figure4" for name in (
    "FIGURE4", "FIGURE4_POINTS", "WINRATE_DIR", "read_winrate", "Section5Run", "section5_run", "figure4",
    "POINT_COLUMNS", "write_points", "winrate_files_of", "assign_winrates", "run_labels")}
_MOVED_NAMES["WINRATE_KEYS"] = "lm_eval_rankacc.core.winrate_file:REQUIRED_KEYS"


def __getattr__(name: str) -> Any:
    """Figure 4's names, read from here in release 0.1: still found, with a DeprecationWarning."""
    if name not in _MOVED_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    module, _, attr = _MOVED_NAMES[name].partition(":")
    warnings.warn(f"{__name__}.{name} is deprecated and will be removed in the next release: use "
                  f"{module}.{attr or name}", DeprecationWarning, stacklevel=2)
    return getattr(import_module(module), attr or name)
