"""The leaderboard's columns: the metrics shown by default, their labels,
the idealized columns per metric, the identity and run columns, and the
other names ``--sort`` accepts for a column."""

from __future__ import annotations

from typing import Any

from lm_eval_rankacc.core.theory import DEFAULT_METRICS  # noqa: F401 - the leaderboard's default columns


#: Short labels of the core metrics: plain text (tables, figure, ``--sort``) and LaTeX.
METRIC_LABELS = {
    "rank_acc": ("R", "$R$"),
    "rank_acc_norm": ("R~", r"$\tilde{R}$"),
    "rank_acc_bytes": ("R_bytes", r"$R_\mathrm{bytes}$"),
    "pair_acc": ("pair", "pair"),
    "pair_acc_norm": ("pair~", r"$\widetilde{\mathrm{pair}}$"),
}


#: Idealized columns per observed metric: (key of the idealized report's row,
#: column suffix of the idealized accuracy, of the gap, and their labels).
IDEALIZED = {
    "rank_acc": ("R_star_median", "R_star", "gap", "R*", "gap"),
    "rank_acc_norm": ("R_norm_star_median", "R_norm_star", "gap_norm", "R~*", "gap~"),
}


IDENTITY = ("model", "backend", "pretrained", "revision", "dtype")


RUN_COLUMNS = ["model", "status", "tasks", "date", "results_file", "samples", "backend", "pretrained", "revision",
               "dtype", "num_parameters", "lm_eval_version", "rankacc_version"]


def table_columns(tasks: list[str], metrics: list[str], ideal_metrics: list[str] | None) -> list[str]:
    columns = list(IDENTITY)
    for task in tasks:
        for m in metrics:
            columns += [f"{task}/{m}", f"{task}/{m}_stderr"]
        columns += [f"{task}/n", f"{task}/docs"]
        for m in ideal_metrics or ():
            columns += [f"{task}/{IDEALIZED[m][1]}", f"{task}/{IDEALIZED[m][2]}"]
    return columns


def column_type(rows: list[dict[str, Any]], key: str) -> str:
    """``num`` when every present value of the column is a number, else ``text``."""
    values = [r.get(key) for r in rows if r.get(key) is not None]
    return "num" if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) else "text"


def column_aliases(tasks: list[str], columns: list[str]) -> dict[str, str]:
    """Other names of the columns, lower case: the display headers ("rankacc_demo R~"),
    and with one task the bare metric names and labels ("rank_acc", "R")."""
    out = {c.lower(): c for c in columns}
    suffixes = {m: labels[0] for m, labels in METRIC_LABELS.items()}
    suffixes.update({v[1]: v[3] for v in IDEALIZED.values()})
    suffixes.update({v[2]: v[4] for v in IDEALIZED.values()})
    for column in columns:
        task, sep, name = column.partition("/")
        if not sep:
            continue
        for alias in {name, suffixes.get(name, name)}:
            out.setdefault(f"{task} {alias}".lower(), column)
            if len(tasks) == 1:
                out.setdefault(alias.lower(), column)
    return out
