"""Figures of the analyses and the leaderboard. matplotlib is imported only
when a figure is drawn (with the non-interactive Agg backend), so the rest of
the package never needs it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from lm_eval_rankacc.analysis.base import Report
from lm_eval_rankacc.report.cells import one_line
from lm_eval_rankacc.report.leaderboard import convention_tag, metric_label, other_set, published, several_sets

#: The marker of the published rows of the paper (``--paper``): grey, hollow, one column of points per metric.
PUBLISHED_STYLE = {"fmt": "D", "markersize": 5, "color": "grey", "markerfacecolor": "white", "alpha": 0.8}
PUBLISHED_LABEL = "published (Chen et al. 2024)"


def _pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _write(data: bytes, path: str | Path) -> Path:
    """Write a figure into an existing folder (like every output: none is created)."""
    path = Path(path)
    path.write_bytes(data)
    return path


def _save(fig: Any, fmt: str) -> bytes:
    """The figure's image bytes; the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    _pyplot().close(fig)
    return buf.getvalue()


def _figure_format(path: str | Path | None, fmt: str | None) -> str:
    """A figure's format: ``fmt``, else the suffix of ``path`` (png or svg)."""
    fmt = (fmt or (Path(path).suffix.lstrip(".") if path else "png")).lower()
    if fmt not in ("png", "svg"):
        raise ValueError(f"the figure is written as .png or .svg, not {fmt!r}")
    return fmt


def c_histogram_figure(report: Report, bins: int = 40) -> Any:
    """The matplotlib figure of :func:`c_histogram`: per task one step line of
    document counts (``Axes.stairs``) over bins shared by every task."""
    if report.kind != "hardness":
        raise ValueError(f"c_histogram needs a hardness report, got {report.kind!r}")
    plt = _pyplot()
    import matplotlib.ticker

    by_task: dict[str, list[float]] = {}
    for doc in report.documents:
        if doc["c"] is not None and np.isfinite(doc["c"]):
            by_task.setdefault(doc["task"], []).append(doc["c"])
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    values = [v for vs in by_task.values() for v in vs]
    if values:
        edges = np.histogram_bin_edges(values, bins=bins)
        for task, vs in by_task.items():
            counts, _ = np.histogram(vs, bins=edges)
            ax.stairs(counts, edges, linewidth=1.5, label=f"{task} (n={len(vs)})")
        ax.legend(fontsize=8)
    ax.axvline(0.0, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("c = log pRef(y_l|x) - log pRef(y_w|x)")
    ax.set_ylabel("documents")
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_title(f"Reference log-ratio ({one_line(report.meta.get('reference', ''))}); c > 0: ranked wrongly")
    fig.tight_layout()
    return fig


def c_histogram(report: Report, path: str | Path, bins: int = 40) -> Path:
    """Histogram of Thm. 4.1's reference log-ratio c per task of a hardness
    report, written to ``path`` (PNG or SVG, by its suffix). c > 0 (right of the dashed line):
    the reference ranks the pair wrongly, and the larger c, the smaller the
    DPO loss must get before the policy ranks it correctly."""
    fmt = _figure_format(path, None)
    return _write(_save(c_histogram_figure(report, bins), fmt), path)


def _panel(ax: Any, task: str, report: Report, colours: dict, stars: dict[str, str], several: dict[str, bool]) -> None:
    """One task: each model's value of every metric with its standard error,
    hollow on another document set than A; the reference's idealized accuracy
    dashed; the published rows of the paper as grey hollow diamonds in one
    column at the right of each metric."""
    rows, metrics = report.sections[0].rows, report.meta["metrics"]
    runs = [r for r in rows if not published(r)]
    slots = len(runs) + (len(runs) < len(rows))  # the published rows share the last slot
    spread = 0.7 / max(slots, 1)
    for j, metric in enumerate(metrics):  # the reference's idealized accuracy: one dashed line
        star = next((r.get(f"{task}/{stars[metric]}") for r in runs if metric in stars), None)
        if star is not None:
            ax.hlines(star, j - 0.45, j + 0.45, colors="grey", linestyles="dashed", linewidth=1)
    slot = {id(r): k for k, r in enumerate(runs)}
    for row in rows:
        k = slot.get(id(row), slots - 1)
        for j, metric in enumerate(metrics):
            value = row.get(f"{task}/{metric}")
            if value is None:
                continue
            x = j + (k - (slots - 1) / 2) * spread
            if published(row):
                ax.errorbar(x, value, **PUBLISHED_STYLE)
                continue
            colour = colours[row["model"]]
            ax.errorbar(x, value, yerr=row.get(f"{task}/{metric}_stderr"), fmt="o", markersize=6, capsize=2,
                        color=colour, markerfacecolor="white" if other_set(row, task, several) else colour)
    ax.set_xticks(range(len(metrics)), [metric_label(m) + convention_tag(report) for m in metrics])
    ax.set_xlim(-0.6, len(metrics) - 0.4)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(task + (" (hollow: other documents)" if several[task] else ""), fontsize=9)


def leaderboard_figure(report: Report) -> Any:
    """The matplotlib figure of :func:`leaderboard_plot`: one panel per task
    (titled by the task), each model's points drawn with ``Axes.errorbar``."""
    if report.kind != "leaderboard":
        raise ValueError(f"leaderboard_plot needs a leaderboard report, got {report.kind!r}")
    plt = _pyplot()
    from matplotlib.lines import Line2D

    rows = [r for r in report.sections[0].rows if not published(r)]
    with_paper = len(rows) < len(report.sections[0].rows)
    tasks, metrics = report.meta["tasks"], report.meta["metrics"]
    cmap = plt.get_cmap("tab10" if len(rows) <= 10 else "tab20")
    colours = {r["model"]: cmap(k % cmap.N) for k, r in enumerate(rows)}
    ncols = min(len(tasks), 3)
    nrows = -(-len(tasks) // ncols)
    width = max(1.6 + 0.9 * len(metrics) * max(1.0, (len(rows) + with_paper) / 4), 3.2)
    stars = {"rank_acc": "R_star", "rank_acc_norm": "R_norm_star"} if "reference" in report.meta else {}
    names = ([one_line(r["model"]) for r in rows] + (["idealized (reference)"] if stars else [])
             + ([PUBLISHED_LABEL] if with_paper else []))
    side = 0.6 + 0.07 * max(len(n) for n in names)  # inches for the legend
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols + side, 3.4 * nrows), dpi=100, squeeze=False)
    several = several_sets(report)
    for ax, task in zip(axes.flat, tasks):
        _panel(ax, task, report, colours, stars, several)
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    axes[0][0].set_ylabel("ranking accuracy")
    handles = [Line2D([], [], marker="o", linestyle="", color=c, label=one_line(m))
               for m, c in colours.items()]
    if stars:
        handles.append(Line2D([], [], color="grey", linestyle="dashed", label="idealized (reference)"))
    if with_paper:
        handles.append(Line2D([], [], marker="D", linestyle="", color="grey", markerfacecolor="white",
                              label=PUBLISHED_LABEL))
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0 - side / fig.get_figwidth(), 0.5),
               fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1.0 - side / fig.get_figwidth(), 1))
    return fig


def leaderboard_plot(report: Report, path: str | Path | None = None, fmt: str | None = None) -> bytes:
    """The paper's Figure 1 view of a leaderboard report: one panel per task,
    each model's value of every metric (R and R~ by default) as a point with
    its standard error, each model in the same colour in every panel. Points
    on another document set than the task's set A are drawn hollow; missing
    values are left out, never drawn as 0. The published rows of the paper
    (``--paper``) are grey hollow diamonds, one column per metric, one legend entry. Written to ``path`` (PNG or SVG,
    by suffix or ``fmt``) when given; the image bytes are returned."""
    if report.kind != "leaderboard":
        raise ValueError(f"leaderboard_plot needs a leaderboard report, got {report.kind!r}")
    fmt = _figure_format(path, fmt)
    data = _save(leaderboard_figure(report), fmt)
    if path is not None:
        _write(data, path)
    return data
