"""matplotlib for the figures of a run (:mod:`.figures`, :mod:`.figure4`):
its Agg backend, imported only when a figure is drawn, saving a PNG, and
the names of the tracked sets in legends and titles."""

from __future__ import annotations

from pathlib import Path

#: How the tracked sets (:data:`.tracking_log.SETS`) are named in the figures.
SET_LABELS = {"train": "training subset", "validation": "validation"}


def pyplot():  # noqa: ANN201 - matplotlib.pyplot, imported here only
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save(fig, plt, path: str | Path) -> Path:  # noqa: ANN001
    """Write ``fig`` as a PNG at ``path`` (its folder made) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
