"""One cell of text: JSON-safe values, Markdown cells and tables, LaTeX
escaping. Shared by every layout of :mod:`lm_eval_rankacc.report`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: Longest text cell in Markdown (prompts and responses); CSV and JSON keep all.
MD_TEXT_WIDTH = 80

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "\u00b1": r"$\pm$", "\u2020": r"\dag{}", "\u2026": r"\dots{}",
}


def clean(value: Any) -> Any:
    """JSON-safe value: NaN / infinities become None, numpy scalars Python ones."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def md_cell(value: Any) -> str:
    """A value as one Markdown table cell: 4 decimals, yes / no, n/a, one line, at most :data:`MD_TEXT_WIDTH`."""
    value = clean(value)
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


def md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table of cells already escaped."""
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def latex_escape(text: str) -> str:
    """``text`` safe inside a LaTeX table cell."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def latex_cell(value: Any) -> str:
    return latex_escape(md_cell(value).replace("\\|", "|"))
