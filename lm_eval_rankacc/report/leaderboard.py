"""The leaderboard's layout (:func:`lm_eval_rankacc.analysis.leaderboard`):
its display cells, shared by Markdown, LaTeX, the HTML page and the figure.

Each cell of a task is a value (``value ± stderr``, tagged ``[B]`` when the
task was scored on several document sets), ``missing`` (the model has no
result for the task), ``n/a`` (the run did not report the value) or, for an
alignment gap, ``other docs`` (the model scored other documents than the
reference). That state is decided once, in :func:`cells`. A published row of
the paper (``--paper``, :func:`published`) shows its values without standard
error and ``n/a`` for n, and belongs to no document set of the runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lm_eval_rankacc.analysis.base import Report
from lm_eval_rankacc.analysis.leaderboard import IDEALIZED, IDENTITY, METRIC_LABELS
from lm_eval_rankacc.analysis.paper import PUBLISHED
from lm_eval_rankacc.report.cells import latex_escape, md_table, md_text, one_line

MISSING, NA, OTHER_DOCS, VALUE = "missing", "n/a", "other docs", "value"


def metric_label(metric: str, latex: bool = False) -> str:
    """The short label of a metric (R, R~, ...; LaTeX: $R$, $\\tilde{R}$, ...)."""
    labels = METRIC_LABELS.get(metric)
    if labels is None:
        return latex_escape(metric) if latex else metric
    return labels[1] if latex else labels[0]


def convention_tag(report: Report) -> str:
    """What the metric headers of a leaderboard carry: `` (released)`` when its
    values follow the released code's rules (``--convention released``)."""
    return " (released)" if report.meta.get("convention") == "released" else ""


def published(row: dict[str, Any]) -> bool:
    """A published row of the paper (``--paper``), not a run."""
    return row.get("backend") == PUBLISHED


def several_sets(report: Report) -> dict[str, bool]:
    """Per task: the runs scored it on more than one document set (their cells carry the set's letter)."""
    rows = report.sections[0].rows
    return {t: len({r.get(f"{t}/docs") for r in rows} - {None, PUBLISHED}) > 1 for t in report.meta["tasks"]}


def other_set(row: dict[str, Any], task: str, several: dict[str, bool]) -> bool:
    """The row's values of ``task`` are on another document set of the runs than the task's set A."""
    return several[task] and row.get(f"{task}/docs") not in (None, "A", PUBLISHED)


@dataclass
class Cell:
    """One display cell: its text, its state (value, missing, n/a, other docs),
    and whether it holds a value on another document set than A."""

    text: str
    state: str = VALUE
    other_set: bool = False


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _headers(report: Report, latex: bool) -> tuple[list[str], list[str]]:
    """Display headers and the column key each one shows."""
    esc = latex_escape if latex else (lambda s: s)
    headers, keys = [esc(c) for c in IDENTITY], list(IDENTITY)
    ideal = [m for m in report.meta["metrics"] if m in IDEALIZED] if "reference" in report.meta else []
    tag = convention_tag(report)
    for task in report.meta["tasks"]:
        for m in report.meta["metrics"]:
            headers.append(f"{esc(task)} {metric_label(m, latex)}{tag}")
            keys.append(f"{task}/{m}")
        headers.append(f"{esc(task)} n")
        keys.append(f"{task}/n")
        for m in ideal:
            _, star, gap, star_label, gap_label = IDEALIZED[m]
            headers += [f"{esc(task)} {esc(star_label)}{tag}", f"{esc(task)} {esc(gap_label)}{tag}"]
            keys += [f"{task}/{star}", f"{task}/{gap}"]
    return headers, keys


def _task_cells(row: dict[str, Any], task: str, report: Report, several: dict[str, bool], latex: bool) -> list[Cell]:
    """The cells of one task in one row: each metric, n, and the reference's columns."""
    esc = latex_escape if latex else (lambda s: s)
    pm = r" $\pm$ " if latex else " \u00b1 "
    present = row.get(f"{task}/n") is not None or row.get(f"{task}/docs") == PUBLISHED
    if not present:
        own = [Cell(MISSING, MISSING) for _ in range(len(report.meta["metrics"]) + 1)]
    else:
        moved = other_set(row, task, several)
        tag = esc(f" [{row.get(f'{task}/docs')}]") if several[task] and not published(row) else ""
        own = []
        for m in report.meta["metrics"]:
            value, err = row.get(f"{task}/{m}"), row.get(f"{task}/{m}_stderr")
            own.append(Cell(NA, NA, moved) if value is None else
                       Cell(_fmt(value) + (pm + _fmt(err) if err is not None else "") + tag, VALUE, moved))
        n = row.get(f"{task}/n")
        own.append(Cell(NA, NA) if n is None else Cell(str(n) + tag, VALUE, moved))
    if "reference" not in report.meta:
        return own
    for m in report.meta["metrics"]:
        if m in IDEALIZED:
            own += _reference_cells(row, task, m, present)
    return own


def _reference_cells(row: dict[str, Any], task: str, metric: str, present: bool) -> list[Cell]:
    """The reference's idealized accuracy and the row's gap to it."""
    _, star, gap, _, _ = IDEALIZED[metric]
    star_v, gap_v = row.get(f"{task}/{star}"), row.get(f"{task}/{gap}")
    cells = [Cell(NA, NA) if star_v is None else Cell(_fmt(star_v))]
    if gap_v is not None:
        cells.append(Cell(_fmt(gap_v)))
    elif present and star_v is not None and row.get(f"{task}/{metric}") is not None:
        cells.append(Cell(OTHER_DOCS, OTHER_DOCS))
    else:
        cells.append(Cell(MISSING, MISSING) if not present else Cell(NA, NA))
    return cells


def cells(report: Report, fmt: str = "md") -> tuple[list[str], list[str], list[list[Cell]]]:
    """The leaderboard as display cells: headers, the column key each display
    column shows (and sorts by), and per row its cells. ``fmt`` "latex"
    escapes the text and uses LaTeX labels; "md" and "html" give plain text."""
    latex = fmt == "latex"
    esc = latex_escape if latex else (lambda s: s)
    headers, keys = _headers(report, latex)
    several = several_sets(report)
    body = []
    for row in report.sections[0].rows:
        line = [Cell(esc(one_line(row.get(c)))) if row.get(c) is not None else Cell(NA, NA) for c in IDENTITY]
        for task in report.meta["tasks"]:
            line += _task_cells(row, task, report, several, latex)
        body.append(line)
    return headers, keys, body


def display(report: Report, fmt: str = "md") -> tuple[list[str], list[list[str]], list[str]]:
    """The leaderboard as display text: headers, rows of cells, and the
    column key each display column sorts by (see :func:`cells`)."""
    headers, keys, body = cells(report, fmt)
    return headers, [[c.text for c in line] for line in body], keys


def legend(report: Report) -> str:
    """One paragraph explaining the cells (Markdown / HTML)."""
    if report.meta.get("convention") == "released":
        text = ("R (released) / R~ (released): recomputed from each run's samples under the rules of the authors' "
                "released code (--convention released; docs/conventions.md): the model's ranking of a document "
                "must equal the human ranking exactly (equal scores are wrong), by the summed log-probability (R) "
                "or the geometric-mean token probability (R~); rankacc_alpaca_farm_val_ties ranks a pair by a "
                "margin above 0.01; a document with a NaN score is left out; value \u00b1 the standard error of "
                "that mean; n: documents lm-eval scored. ")
    else:
        text = ("R: share of documents ranked correctly on the summed log-probability (rank_acc); R~: the same "
                "per token (rank_acc_norm), under the paper's definitions (convention paper); value \u00b1 "
                "lm-eval's standard error; n: documents scored. ")
    text += "'missing': the model has no result for the task; 'n/a': the run did not report the value."
    if any(several_sets(report).values()):
        text += " [A], [B], ...: the task was scored on different document sets; compare only within one set."
    if "reference" in report.meta:
        betas = ", ".join(f"{b:g}" for b in report.meta["betas"])
        text += (f" R* / R~*: idealized accuracy of the reference {report.meta['reference']}, median over beta in "
                 f"{{{betas}}}, over all documents; gap: that median minus the model's R / R~ ('other docs': the "
                 "model scored other documents than the reference).")
        if report.meta.get("convention") == "released":
            text += (" Under the released convention R* / R~* follow the released upper-bound script (pairs only; "
                     "a ratio band of 0.05; rater shares 0.75 / 0.25 where the data has none).")
    if "paper" in report.meta:
        text += (" Rows '<model> (paper, Table N)', backend 'paper': the values published in that table of Chen et "
                 "al. (2024), as printed and not rescored here (no standard error; n unknown); see the notes for "
                 "which of them the released scripts can produce and what differs from the task.")
        if "reference" in report.meta:
            text += " Their R* / R~* and gap are the paper's own (Tables 1 and 6: the median over its beta grid)."
    return text


def markdown(report: Report) -> list[str]:
    """The table, its legend and the runs behind the rows."""
    headers, body, _ = display(report, "md")
    lines = md_table([md_text(h) for h in headers], [[md_text(c) for c in row] for row in body])
    lines += ["", one_line(legend(report)), "", "Runs:", ""]
    for r in report.sections[1].rows:
        version = f", rankacc {r['rankacc_version']}" if r.get("rankacc_version") else ""
        lines.append("- " + md_text(f"{r['model']}: {r['status']}, {r['date']}{version}, {r['results_file']}"
                                    f"{'' if r['samples'] == 'yes' or r['status'] == 'published' else ' (no samples)'}"))
    return lines


def latex(report: Report) -> list[str]:
    """The table as a booktabs ``tabular``: value $\\pm$ standard error per task and metric."""
    headers, body, _ = display(report, "latex")
    lines = [r"\begin{tabular}{" + "l" * len(IDENTITY) + "r" * (len(headers) - len(IDENTITY)) + "}",
             r"\toprule", " & ".join(headers) + r" \\", r"\midrule"]
    lines += [" & ".join(r) + r" \\" for r in body]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return lines
