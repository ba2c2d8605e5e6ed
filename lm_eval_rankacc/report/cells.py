"""One cell of text: JSON-safe values, one-line text, Markdown cells and
tables, CSV cells safe from formula injection, LaTeX escaping. Shared by
every layout of :mod:`lm_eval_rankacc.report`."""

from __future__ import annotations

import math
import re
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


#: Control characters (C0, DEL, C1) and the Unicode line / paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: First characters that make a spreadsheet read a text cell as a formula
#: (OWASP's CSV injection list, and their full-width forms), and the quote
#: that neutralises them (a cell starting with the quote itself gets one too).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
CSV_QUOTE = "'"


#: Invisible characters that reorder or hide text: the bidirectional embeddings,
#: overrides, isolates and marks (U+202A-202E, U+2066-2069, U+200E/F, U+061C)
#: and the zero-width ones (U+200B-200D, U+2060-2064, U+FEFF). Shown as ``\uXXXX``.
_INVISIBLE = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
#: What Markdown renderers would read as raw HTML, an entity or a link, and its
#: inert form: ``&<>`` as entities; a ``]`` that would close a link text
#: (before ``(``, ``[`` or ``:``) escaped, so ``[x](javascript:...)`` stays text.
_MD_ACTIVE = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "]": "\\]", "|": "\\|"}
_MD_ACTIVE_RE = re.compile(r"[&<>|]|\](?=[(\[:])")


def visible(text: str) -> str:
    """``text`` with every invisible reordering or zero-width character shown as ``\\uXXXX``."""
    return _INVISIBLE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def one_line(value: Any) -> str:
    """``str(value)`` on one line: every control character (newline, tab,
    escape, ...) and every run of whitespace becomes one space, and invisible
    bidi and zero-width characters are shown (:func:`visible`)."""
    return visible(" ".join(_CONTROL.sub(" ", str(value)).split()))


def md_text(value: Any) -> str:
    """Text as one Markdown table cell, in full, inert: :func:`one_line`; raw
    HTML, entities and links escaped (``<`` as ``&lt;``, ``](`` as ``\\](``), ``|`` escaped."""
    return _MD_ACTIVE_RE.sub(lambda match: _MD_ACTIVE[match.group()], one_line(value))


def csv_cell(value: Any) -> Any:
    """A value as one CSV cell, the one rule of every CSV the package writes:
    None, NaN and infinities empty; numbers and booleans as they are (-0.25
    stays a number); text starting with a formula character or the quote
    (:data:`FORMULA_START`, :data:`CSV_QUOTE`) prefixed with the quote, so a
    spreadsheet shows it as text. :func:`csv_text` undoes it."""
    value = clean(value)
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith((*FORMULA_START, CSV_QUOTE)):
        return CSV_QUOTE + value
    return value


def csv_text(cell: str) -> str:
    """The text a CSV cell of :func:`csv_cell` holds: one leading quote dropped."""
    return cell[1:] if cell.startswith(CSV_QUOTE) else cell


def md_cell(value: Any) -> str:
    """A value as one Markdown table cell: 4 decimals, yes / no, n/a, one line, at most :data:`MD_TEXT_WIDTH`."""
    value = clean(value)
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}"
    text = one_line(value)  # newlines, control characters and runs of blanks -> one space
    if len(text) > MD_TEXT_WIDTH:
        text = text[: MD_TEXT_WIDTH - 1] + "\u2026"
    return md_text(text)


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
