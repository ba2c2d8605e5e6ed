"""The leaderboard as one self-contained HTML page: inline CSS and JavaScript,
the figure embedded as a base64 ``data:`` URI, no network access needed to
view it. The table sorts by clicking a column header (again: the other
direction; missing values always last); the page also lists the runs behind
the rows (model identity, results file, date, superseded runs) and the notes.
The published rows of the paper (``--paper``) are grey and italic, with a
tooltip, and ``published`` among the runs.
"""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from lm_eval_rankacc.analysis.base import Report, Section
from lm_eval_rankacc.analysis.leaderboard import column_type
from lm_eval_rankacc.report.cells import clean
from lm_eval_rankacc.report.leaderboard import MISSING, NA, OTHER_DOCS, Cell, cells, legend, published

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
h2 { font-size: 1.1em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable th { background: #eef2f7; cursor: pointer; user-select: none; }
table.sortable th:hover { background: #dde6f0; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
tbody tr:nth-child(even) { background: #fafafa; }
td.missing, td.na { color: #999; font-style: italic; }
td.otherdocs { background: #fff1d6; }
tbody tr.published td { color: #666; font-style: italic; background: #f1f1f1; }
ul.meta { list-style: none; padding: 0; margin: 0.3em 0; font-size: 0.9em; }
p.legend, ul.notes { font-size: 0.85em; max-width: 70em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
"""

_JS = """
(function () {
  function sortBy(table, col, th) {
    var heads = table.tHead.rows[0].cells;
    var numeric = th.getAttribute("data-type") === "num";
    var first = numeric ? "descending" : "ascending";
    var now = th.getAttribute("aria-sort");
    var next = now === first ? (first === "descending" ? "ascending" : "descending") : first;
    for (var i = 0; i < heads.length; i++) { heads[i].setAttribute("aria-sort", "none"); }
    th.setAttribute("aria-sort", next);
    var sign = next === "ascending" ? 1 : -1;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].getAttribute("data-v"), y = b.cells[col].getAttribute("data-v");
      if (x === "" || y === "") { return (x === "") - (y === ""); }  /* missing last */
      if (numeric) { return sign * (parseFloat(x) - parseFloat(y)); }
      return sign * x.localeCompare(y);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  var tables = document.querySelectorAll("table.sortable");
  Array.prototype.forEach.call(tables, function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.addEventListener("click", function () { sortBy(table, col, th); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(table, col, th); }
      });
    });
  });
})();
"""


def _value(value: Any) -> str:
    value = clean(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _head(report: Report) -> list[str]:
    """From the doctype to the metadata list."""
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{escape(report.title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
           f"<h1>{escape(report.title)}</h1>", '<ul class="meta">']
    for key, value in report.meta.items():
        if isinstance(value, list):
            value = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
        out.append(f"<li><b>{escape(str(key))}</b>: {escape(str(value))}</li>")
    return out + ["</ul>"]


def _td(key: str, cell: Cell, value: Any, numeric: bool) -> str:
    classes = ["num"] if numeric else []
    if cell.state == MISSING:
        classes.append("missing")
    elif cell.state == NA:
        classes.append("na")
    title = ""
    if cell.state == OTHER_DOCS or cell.other_set:
        classes.append("otherdocs")
        title = f' title="{escape(key.split("/")[0])}: scored on other documents (see the notes)"'
    cls = f' class="{" ".join(classes)}"' if classes else ""
    return f'<td data-v="{escape(_value(value))}"{cls}{title}>{escape(cell.text)}</td>'


def _tr(row: dict[str, Any]) -> str:
    """A row's opening tag: published rows of the paper marked (class and tooltip)."""
    if not published(row):
        return "<tr>"
    return '<tr class="published" title="published in the paper, as printed; not rescored here">'


def _linked(td: str, href: str | None) -> str:
    """A model's cell with a link to its explorer page (``rankacc leaderboard --explore``)."""
    if not href:
        return td
    at = td.index(">") + 1
    return f'{td[:at]}<a class="explore" href="{escape(href)}" title="explore its documents">{td[at:-5]}</a></td>'


def _table(report: Report, links: dict[str, str] | None = None) -> list[str]:
    """The sortable leaderboard table, sorted as the report is; ``links``: model -> its explorer page."""
    section = report.sections[0]
    headers, keys, body = cells(report, "html")
    sort_key = str(report.meta.get("sort", "")).split(" ")[0]
    numeric = {k: column_type(section.rows, k) == "num" for k in keys}
    out = ['<table id="leaderboard" class="sortable">', "<thead><tr>"]
    for header, key in zip(headers, keys):
        direction = "none"
        if key == sort_key:
            direction = "descending" if numeric[key] else "ascending"
        out.append(f'<th data-key="{escape(key)}" data-type="{"num" if numeric[key] else "text"}" '
                   f'aria-sort="{direction}" tabindex="0" title="sort by {escape(key)}">{escape(header)}</th>')
    out += ["</tr></thead>", "<tbody>"]
    for row, line in zip(section.rows, body):
        href = (links or {}).get(str(row.get("model")))
        out.append(_tr(row) + "".join(_linked(_td(k, c, row.get(k), numeric[k]), href if k == "model" else None)
                                      for k, c in zip(keys, line)) + "</tr>")
    return out + ["</tbody>", "</table>"]


def _figure(figure_png: bytes) -> list[str]:
    data = base64.b64encode(figure_png).decode("ascii")
    return ['<figure>', f'<img id="figure" alt="ranking accuracy per task and model" '
            f'src="data:image/png;base64,{data}">', "</figure>"]


def _runs(runs: Section) -> list[str]:
    """The results files behind the rows (and the tables behind the published rows)."""
    out = ["<h2>Runs</h2>", '<table id="runs">', "<thead><tr>"]
    out += [f"<th>{escape(c)}</th>" for c in runs.columns]
    out += ["</tr></thead>", "<tbody>"]
    for row in runs.rows:
        out.append(_tr(row) + "".join(f"<td>{escape(_value(row.get(c)))}</td>" for c in runs.columns) + "</tr>")
    return out + ["</tbody>", "</table>"]


def render_html(report: Report, figure_png: bytes | None = None, links: dict[str, str] | None = None) -> str:
    """The leaderboard ``report`` as one HTML page (``figure_png``: the figure, embedded; ``links``: model ->
    the relative address of its explorer page, linked from its row)."""
    if report.kind != "leaderboard":
        raise ValueError(f"render_html needs a leaderboard report, got {report.kind!r}")
    out = _head(report) + _table(report, links) + [f'<p class="legend">{escape(legend(report))}</p>']
    if figure_png:
        out += _figure(figure_png)
    if len(report.sections) > 1:
        out += _runs(report.sections[1])
    if report.notes:
        out += ["<h2>Notes</h2>", '<ul class="notes">'] + [f"<li>{escape(n)}</li>" for n in report.notes] + ["</ul>"]
    out += [f"<script>{_JS}</script>", "</body>", "</html>"]
    return "\n".join(out) + "\n"
