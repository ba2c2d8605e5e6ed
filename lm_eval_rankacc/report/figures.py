"""Figures of the analyses. matplotlib is imported only when a figure is drawn
(with the non-interactive Agg backend), so the rest of the package never
needs it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lm_eval_rankacc.report.tables import Report


def c_histogram(report: Report, path: str | Path, bins: int = 40) -> Path:
    """Histogram of Thm. 4.1's reference log-ratio c per task of a hardness
    report, written as PNG to ``path``. c > 0 (right of the dashed line):
    the reference ranks the pair wrongly, and the larger c, the smaller the
    DPO loss must get before the policy ranks it correctly."""
    if report.kind != "hardness":
        raise ValueError(f"c_histogram needs a hardness report, got {report.kind!r}")
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
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
            ax.hist(vs, bins=edges, histtype="step", linewidth=1.5, label=f"{task} (n={len(vs)})")
        ax.legend(fontsize=8)
    ax.axvline(0.0, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("c = log pRef(y_l|x) - log pRef(y_w|x)")
    ax.set_ylabel("documents")
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_title(f"Reference log-ratio ({report.meta.get('reference', '')}); c > 0: ranked wrongly")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
