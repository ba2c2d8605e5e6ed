"""Reports of the analyses (:mod:`lm_eval_rankacc.analysis`) as Markdown,
CSV, JSON or LaTeX.

A :class:`~lm_eval_rankacc.analysis.base.Report` is plain data: sections of
rows (dicts keyed by column), notes, metadata and optionally one row per
document. :func:`render` turns it into text in the :class:`Layout` registered
for its ``kind`` in :data:`LAYOUTS` (a generic one otherwise);
:func:`documents_csv` writes the per-document rows. The one-page HTML report
is :mod:`.html`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lm_eval_rankacc.analysis.base import Report, Section
from lm_eval_rankacc.report import leaderboard
from lm_eval_rankacc.report.cells import (
    MD_TEXT_WIDTH,
    clean,
    csv_cell,
    latex_cell,
    latex_escape,
    md_cell,
    md_text,
    md_table,
    one_line,
)

__all__ = ["FORMATS", "LAYOUTS", "Layout", "MD_TEXT_WIDTH", "Report", "Section", "documents_csv", "latex_escape",
           "render", "render_csv", "render_json", "render_latex", "render_md"]

FORMATS = ("md", "csv", "json", "latex")


# ----------------------------------------------------------------- generic layouts
def _md_generic(report: Report) -> list[str]:
    """Each section as a table, titled when there are several."""
    lines: list[str] = []
    for section in report.sections:
        if len(report.sections) > 1:
            lines += [f"## {md_text(section.title)}", ""]
        if not section.rows:
            lines += ["(none)", ""]
            continue
        lines += md_table(section.columns, [[md_cell(r.get(c)) for c in section.columns] for r in section.rows])
        lines.append("")
    return lines


def _latex_generic(report: Report) -> list[str]:
    """Each section as a booktabs ``tabular``."""
    lines: list[str] = []
    for section in report.sections:
        lines += [f"% {one_line(section.title)}", r"\begin{tabular}{" + "l" * len(section.columns) + "}", r"\toprule",
                  " & ".join(latex_escape(c) for c in section.columns) + r" \\", r"\midrule"]
        lines += [" & ".join(latex_cell(r.get(c)) for c in section.columns) + r" \\" for r in section.rows]
        lines += [r"\bottomrule", r"\end{tabular}", ""]
    return lines


def _all_sections(report: Report) -> list[Section]:
    return report.sections


# ----------------------------------------------------------------- the idealized layout
def _triple(row: dict[str, Any], name: str) -> str:
    return " / ".join(md_cell(row.get(f"{name}_{k}")) for k in ("min", "median", "max"))


def _with_interval(row: dict[str, Any], gap: str) -> str:
    """A gap and, where computed, its bootstrap interval: ``0.0345 [0.0000, 0.1034]``."""
    cell = md_cell(row.get(gap))
    if row.get(f"{gap}_low") is None:
        return cell
    return f"{cell} [{md_cell(row[f'{gap}_low'])}, {md_cell(row[f'{gap}_high'])}]"


def _md_idealized(report: Report) -> list[str]:
    """One row per task, ties setting and model: R~, R, min / median / max of R~* and R*, the gaps."""
    headers = ["task", "ties", "model", "n", "R~", "R", "R~* min / med / max", "R* min / med / max", "gap~", "gap"]
    lines: list[str] = []
    for section in report.sections:
        body = []
        for row in section.rows:
            task = md_cell(row["task"]) + (" \u2020" if row.get("alpha") != "votes" else "")
            head = [task, row["ties"], md_cell(row["model"]), str(row["n"])]
            if row.get("missing"):
                body.append(head + ["missing"] * 6)
                continue
            body.append(head + [
                md_cell(row.get("R_norm")), md_cell(row.get("R")),
                _triple(row, "R_norm_star"), _triple(row, "R_star"),
                _with_interval(row, "gap_norm"), _with_interval(row, "gap"),
            ])
        lines += md_table(headers, body)
    betas = ", ".join(f"{b:g}" for b in report.meta.get("betas", []))
    lines += [
        "",
        f"R~ / R: observed (per-token / summed log-probabilities); R~* / R*: the reference model's idealized "
        f"accuracy over beta in {{{betas}}}; gap: median idealized minus observed. ties: 'excluded' leaves human "
        f"ties out, 'included' scores them with the tie rule (|difference| < {report.meta.get('tie_eps')}), "
        "in R* and R~* the reference's own tie outcome at every beta (not the paper's Table 6). "
        "\u2020: some documents lack rater proportions (see notes).",
    ]
    if report.meta.get("convention") == "released":
        lines[-1] = _RELEASED_IDEALIZED_LEGEND.format(betas=betas)
    if report.meta.get("bootstrap"):
        lines[-1] += (f" [low, high]: 95% paired-bootstrap interval of the gap ({report.meta['bootstrap']} "
                      f"replicates, seed {report.meta.get('seed')}).")
    return lines


_RELEASED_IDEALIZED_LEGEND = (
    "Convention released: every number follows the rules of the authors' released code (docs/conventions.md), "
    "not the paper's definitions. R~ / R: the model's ranking must equal the human ranking exactly (by the "
    "geometric-mean token probability / the summed log-probability; equal scores are wrong; "
    "rankacc_alpaca_farm_val_ties ranks a pair by a margin above 0.01); documents with a NaN score are left out. "
    "R~* / R*: the released upper-bound script over beta in {{{betas}}}: (a1/a2)^(1/beta) times the reference's "
    "ratio (ppl2/ppl1, or LL1/LL2 for R*), a tie within 5% of 1, compared with the ranking of a1/a2; pairs only; "
    "a NaN or infinite posterior leaves the pair out at that beta. gap: median idealized minus observed. "
    "\u2020: pairs without rater proportions taken as 0.75 / 0.25 (see notes)."
)


# ----------------------------------------------------------------- the registry
@dataclass(frozen=True)
class Layout:
    """How one kind of report is laid out: the Markdown body (after the title
    and metadata), the LaTeX body (before the notes), and the sections CSV holds."""

    markdown: Callable[[Report], list[str]] = _md_generic
    latex: Callable[[Report], list[str]] = _latex_generic
    csv_sections: Callable[[Report], list[Section]] = _all_sections


#: Layouts by :attr:`Report.kind`; a kind not listed gets the generic :class:`Layout`.
LAYOUTS: dict[str, Layout] = {
    "idealized": Layout(markdown=_md_idealized),
    "leaderboard": Layout(markdown=leaderboard.markdown, latex=leaderboard.latex,
                          csv_sections=lambda report: report.sections[:1]),  # the table, one row per model
}
_GENERIC = Layout()


def _layout(report: Report) -> Layout:
    return LAYOUTS.get(report.kind, _GENERIC)


# ----------------------------------------------------------------- formats
def render_md(report: Report) -> str:
    lines = [f"# {one_line(report.title)}", ""]
    for key, value in report.meta.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} ({v})" for k, v in value.items()) or "none"
        elif isinstance(value, list):
            value = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
        lines.append(f"- {key}: {one_line(value)}")
    lines.append("")
    lines += _layout(report).markdown(report)
    if report.notes:
        lines += ["", "Notes:", ""] + [f"- {one_line(n)}" for n in report.notes]
    return "\n".join(lines).rstrip() + "\n"


def _csv(columns: list[str], rows: list[dict[str, Any]]) -> str:
    """Every CSV of the package: a header and one line per row, each cell
    through :func:`csv_cell`; text is always quoted (a bare CR inside a cell
    would otherwise end the row for a reader), numbers never."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow([csv_cell(c) for c in columns])
    writer.writerows([csv_cell(row.get(c)) for c in columns] for row in rows)
    return buf.getvalue()


def render_csv(report: Report) -> str:
    """The layout's sections in one CSV; with several sections a leading ``section`` column."""
    sections = _layout(report).csv_sections(report)
    if len(sections) == 1:
        return _csv(sections[0].columns, sections[0].rows)
    columns = ["section"]
    for s in sections:
        columns += [c for c in s.columns if c not in columns]
    rows = [{"section": s.title, **r} for s in sections for r in s.rows]
    return _csv(columns, rows)


def render_json(report: Report) -> str:
    data = {
        "kind": report.kind,
        "title": report.title,
        "meta": report.meta,
        "sections": [{"title": s.title, "columns": s.columns, "rows": s.rows} for s in report.sections],
        "notes": report.notes,
        "documents": list(report.documents),  # a lazy sequence (hardness reads texts per row)
    }
    return json.dumps(clean(data), indent=2, ensure_ascii=False) + "\n"


def render_latex(report: Report) -> str:
    """The layout's LaTeX body; notes as LaTeX comments."""
    lines = [f"% {one_line(report.title)}"]
    lines += _layout(report).latex(report)
    lines += [f"% note: {one_line(n)}" for n in report.notes]
    return "\n".join(lines).rstrip() + "\n"


_RENDERERS: dict[str, Callable[[Report], str]] = {
    "md": render_md, "csv": render_csv, "json": render_json, "latex": render_latex,
}


def render(report: Report, fmt: str = "md") -> str:
    """The report as text in ``fmt`` (one of :data:`FORMATS`)."""
    renderer = _RENDERERS.get(fmt)
    if renderer is None:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    return renderer(report)


def documents_csv(report: Report) -> str:
    """One CSV row per document (flips, hardness); full text, no truncation."""
    rows = list(report.documents)  # once: a lazy sequence (hardness) reads texts per row
    if not rows:
        return ""
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    return _csv(columns, rows)
