"""Tables of the analyses (:mod:`lm_eval_rankacc.analysis`, :mod:`lm_eval_rankacc.leaderboard`)
as Markdown, CSV, JSON or LaTeX.

A :class:`Report` is plain data: sections of rows (dicts keyed by column),
notes, metadata and optionally one row per document. :func:`render` turns it
into text; :func:`documents_csv` writes the per-document rows. Renderers for
further text formats belong here too; the one-page HTML report is :mod:`.html`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FORMATS = ("md", "csv", "json", "latex")
#: Longest text cell in Markdown (prompts and responses); CSV and JSON keep all.
MD_TEXT_WIDTH = 80


@dataclass
class Section:
    """One table: a title, the column keys in order, and the rows."""

    title: str
    columns: list[str]
    rows: list[dict[str, Any]]


@dataclass
class Report:
    """The result of one analysis."""

    kind: str
    title: str
    meta: dict[str, Any]
    sections: list[Section]
    notes: list[str] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)


# ----------------------------------------------------------------- cells
def _clean(value: Any) -> Any:
    """JSON-safe value: NaN / infinities become None, numpy scalars Python ones."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _md_cell(value: Any) -> str:
    value = _clean(value)
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}"
    text = " ".join(str(value).split())  # newlines and runs of blanks -> one space
    if len(text) > MD_TEXT_WIDTH:
        text = text[: MD_TEXT_WIDTH - 1] + "\u2026"
    return text.replace("|", "\\|")


def _md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


# ----------------------------------------------------------------- markdown layouts
def _triple(row: dict[str, Any], name: str) -> str:
    return " / ".join(_md_cell(row.get(f"{name}_{k}")) for k in ("min", "median", "max"))


def _md_idealized(report: Report) -> list[str]:
    headers = ["task", "ties", "model", "n", "R~", "R", "R~* min / med / max", "R* min / med / max", "gap~", "gap"]
    lines: list[str] = []
    for section in report.sections:
        body = []
        for row in section.rows:
            task = row["task"] + (" \u2020" if row.get("alpha") != "votes" else "")
            head = [task, row["ties"], _md_cell(row["model"]), str(row["n"])]
            if row.get("missing"):
                body.append(head + ["missing"] * 6)
                continue
            body.append(head + [
                _md_cell(row.get("R_norm")), _md_cell(row.get("R")),
                _triple(row, "R_norm_star"), _triple(row, "R_star"),
                _md_cell(row.get("gap_norm")), _md_cell(row.get("gap")),
            ])
        lines += _md_table(headers, body)
    betas = ", ".join(f"{b:g}" for b in report.meta.get("betas", []))
    lines += [
        "",
        f"R~ / R: observed (per-token / summed log-probabilities); R~* / R*: the reference model's idealized "
        f"accuracy over beta in {{{betas}}}; gap: median idealized minus observed. ties: 'excluded' leaves human "
        f"ties out, 'included' scores them with the tie rule (|difference| < {report.meta.get('tie_eps')}). "
        "\u2020: some documents lack rater proportions (see notes).",
    ]
    return lines


def _md_generic(report: Report) -> list[str]:
    lines: list[str] = []
    for section in report.sections:
        if len(report.sections) > 1:
            lines += [f"## {section.title}", ""]
        if not section.rows:
            lines += ["(none)", ""]
            continue
        lines += _md_table(section.columns, [[_md_cell(r.get(c)) for c in section.columns] for r in section.rows])
        lines.append("")
    return lines


def render_md(report: Report) -> str:
    lines = [f"# {report.title}", ""]
    for key, value in report.meta.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} ({v})" for k, v in value.items()) or "none"
        elif isinstance(value, list):
            value = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
        lines.append(f"- {key}: {value}")
    lines.append("")
    if report.kind == "leaderboard":
        from lm_eval_rankacc import leaderboard

        lines += leaderboard.markdown(report)
    else:
        lines += _md_idealized(report) if report.kind == "idealized" else _md_generic(report)
    if report.notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in report.notes]
    return "\n".join(lines).rstrip() + "\n"


# ----------------------------------------------------------------- csv / json
def _csv(columns: list[str], rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: ("" if _clean(row.get(c)) is None else _clean(row.get(c))) for c in columns})
    return buf.getvalue()


def render_csv(report: Report) -> str:
    """All sections in one CSV; with several sections a leading ``section`` column
    (a leaderboard: its table only, one row per model)."""
    if len(report.sections) == 1 or report.kind == "leaderboard":
        s = report.sections[0]
        return _csv(s.columns, s.rows)
    columns = ["section"]
    for s in report.sections:
        columns += [c for c in s.columns if c not in columns]
    rows = [{"section": s.title, **r} for s in report.sections for r in s.rows]
    return _csv(columns, rows)


def render_json(report: Report) -> str:
    data = {
        "kind": report.kind,
        "title": report.title,
        "meta": report.meta,
        "sections": [{"title": s.title, "columns": s.columns, "rows": s.rows} for s in report.sections],
        "notes": report.notes,
        "documents": report.documents,
    }
    return json.dumps(_clean(data), indent=2, ensure_ascii=False) + "\n"


# ----------------------------------------------------------------- latex
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "\u00b1": r"$\pm$", "\u2020": r"\dag{}", "\u2026": r"\dots{}",
}


def latex_escape(text: str) -> str:
    """``text`` safe inside a LaTeX table cell."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _latex_cell(value: Any) -> str:
    return latex_escape(_md_cell(value).replace("\\|", "|"))


def render_latex(report: Report) -> str:
    """Each section as a booktabs ``tabular`` (a leaderboard: value $\\pm$
    standard error per task and metric); notes as LaTeX comments."""
    lines = [f"% {report.title}"]
    if report.kind == "leaderboard":
        from lm_eval_rankacc import leaderboard

        lines += leaderboard.latex(report)
    else:
        for section in report.sections:
            lines += [f"% {section.title}", r"\begin{tabular}{" + "l" * len(section.columns) + "}", r"\toprule",
                      " & ".join(latex_escape(c) for c in section.columns) + r" \\", r"\midrule"]
            lines += [" & ".join(_latex_cell(r.get(c)) for c in section.columns) + r" \\" for r in section.rows]
            lines += [r"\bottomrule", r"\end{tabular}", ""]
    lines += [f"% note: {' '.join(n.split())}" for n in report.notes]
    return "\n".join(lines).rstrip() + "\n"


def render(report: Report, fmt: str = "md") -> str:
    """The report as text in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "md":
        return render_md(report)
    if fmt == "csv":
        return render_csv(report)
    if fmt == "json":
        return render_json(report)
    if fmt == "latex":
        return render_latex(report)
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")


def documents_csv(report: Report) -> str:
    """One CSV row per document (flips, hardness); full text, no truncation."""
    if not report.documents:
        return ""
    columns: list[str] = []
    for row in report.documents:
        columns += [c for c in row if c not in columns]
    return _csv(columns, report.documents)
