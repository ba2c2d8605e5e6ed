"""The figures of report/, checked for what they plot (numbers recomputed here
from the report), not for the image file: the hardness histogram of c and
the leaderboard's Figure 1 view."""

from __future__ import annotations

import numpy as np
import pytest

from lm_eval_rankacc import analysis
from lm_eval_rankacc.analysis.base import Report, Section
from lm_eval_rankacc.report import figures
from tests.helpers.rankacc_samples import doc, write_run

matplotlib = pytest.importorskip("matplotlib")


def _close(fig):
    import matplotlib.pyplot as plt

    plt.close(fig)


@pytest.fixture
def hardness_report(tmp_path):
    logliks = [(-1.0, -2.0), (-3.0, -1.5), (-2.0, -2.0), (-0.5, -4.5), (-6.0, -1.0), (-2.5, -2.25)]
    entries = [doc(f"d{k}", list(ll), [1, 2]) for k, ll in enumerate(logliks)]
    other = [doc(f"e{k}", [-1.0, -1.0 - k], [2, 1]) for k in range(3)]
    ref = write_run(tmp_path / "out", {"rankacc_x": entries, "rankacc_y": other})
    # c = log pRef(y_l|x) - log pRef(y_w|x): computed here from the logliks and ranks written above
    expected = {"rankacc_x": [ll[1] - ll[0] for ll in logliks],
                "rankacc_y": [-1.0 - (-1.0 - k) for k in range(3)]}
    return analysis.hardness(ref, beta=0.1), expected


def test_histogram_plots_every_tasks_counts_of_c_over_shared_bins(hardness_report):
    report, expected = hardness_report
    fig = figures.c_histogram_figure(report, bins=5)
    try:
        (ax,) = fig.axes
        steps = {p.get_label(): p.get_data() for p in ax.patches}
        all_c = [c for cs in expected.values() for c in cs]
        edges = np.linspace(min(all_c), max(all_c), 6)
        assert set(steps) == {f"{t} (n={len(cs)})" for t, cs in expected.items()}
        for task, cs in expected.items():
            values, drawn_edges, _ = steps[f"{task} (n={len(cs)})"]
            np.testing.assert_allclose(drawn_edges, edges)  # one set of bins for every task
            counts = [sum(lo <= c < hi or (k == 4 and c == hi) for c in cs)
                      for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:]))]
            assert list(values) == counts and sum(values) == len(cs)
        zero = [line for line in ax.lines if list(line.get_xdata()) == [0.0, 0.0]]
        assert len(zero) == 1 and zero[0].get_linestyle() == "--"  # c = 0: right of it, ranked wrongly
    finally:
        _close(fig)


def test_histogram_refuses_another_report():
    with pytest.raises(ValueError, match="needs a hardness report"):
        figures.c_histogram_figure(Report("flips", "t", {}, []))


def _leaderboard_report(reference: bool = True) -> Report:
    tasks, metrics = ["rankacc_a", "rankacc_b"], ["rank_acc", "rank_acc_norm"]
    rows = []
    values = {"m1": (0.6, 0.7, 0.55, None), "m2": (0.4, 0.45, 0.5, 0.52), "m3": (0.8, 0.75, None, None)}
    docs = {"m1": ("A", "A"), "m2": ("A", "B"), "m3": ("A", None)}
    for model, (a_r, a_n, b_r, b_n) in values.items():
        row = {"model": model, "backend": "hf", "pretrained": f"org/{model}", "revision": "main", "dtype": "float32"}
        for task, (r, n), letter in zip(tasks, ((a_r, a_n), (b_r, b_n)), docs[model]):
            row.update({f"{task}/rank_acc": r, f"{task}/rank_acc_stderr": None if r is None else 0.05,
                        f"{task}/rank_acc_norm": n, f"{task}/rank_acc_norm_stderr": None if n is None else 0.04,
                        f"{task}/n": 10, f"{task}/docs": letter})
            if reference:
                row.update({f"{task}/R_star": 0.9, f"{task}/R_norm_star": 0.95})
        rows.append(row)
    meta = {"tasks": tasks, "metrics": metrics, "convention": "paper"}
    if reference:
        meta["reference"] = "ref (folder)"
    return Report("leaderboard", "Ranking-accuracy leaderboard", meta, [Section("leaderboard", [], rows)])


def test_leaderboard_figure_plots_each_value_once_hollow_on_other_sets_and_the_reference_dashed():
    report = _leaderboard_report()
    fig = figures.leaderboard_figure(report)
    try:
        panels = {ax.get_title().split(" (")[0]: ax for ax in fig.axes if ax.get_visible()}
        assert set(panels) == {"rankacc_a", "rankacc_b"}
        for task, ax in panels.items():
            drawn = []
            for container in ax.containers:
                line = container.lines[0]
                drawn.append((round(float(line.get_ydata()[0]), 6), line.get_markerfacecolor() == "white"))
            want = []
            for row in report.sections[0].rows:
                for metric in ("rank_acc", "rank_acc_norm"):
                    value = row[f"{task}/{metric}"]
                    if value is not None:  # a missing value is left out, never drawn as 0
                        hollow = task == "rankacc_b" and row[f"{task}/docs"] == "B"
                        want.append((round(value, 6), hollow))
            assert sorted(drawn) == sorted(want)
            dashed = sorted(round(float(seg[0][1]), 6) for coll in ax.collections
                            if coll.get_linestyle()[0][1] for seg in coll.get_segments())
            assert dashed == [0.9, 0.95]  # one dashed line per metric: the reference's R* and R~*
    finally:
        _close(fig)


def test_leaderboard_figure_without_reference_draws_no_dashed_line():
    fig = figures.leaderboard_figure(_leaderboard_report(reference=False))
    try:
        assert not [c for ax in fig.axes for c in ax.collections if c.get_linestyle()[0][1]]  # nothing dashed
        assert len([c for ax in fig.axes for c in ax.containers]) == 3 * 2 + 2 + 1  # the 9 values present
    finally:
        _close(fig)


def test_the_file_writers_write_the_same_figures(hardness_report, tmp_path):
    report, _ = hardness_report
    assert figures.c_histogram(report, tmp_path / "c.svg").read_text().lstrip().startswith("<?xml")
    data = figures.leaderboard_plot(_leaderboard_report(), tmp_path / "lb.png")
    assert (tmp_path / "lb.png").read_bytes() == data
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        figures.leaderboard_plot(_leaderboard_report(), tmp_path / "lb.jpg")
