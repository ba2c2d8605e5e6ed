"""The leaderboard as one self-contained HTML page: inline CSS and JavaScript,
the figure embedded as a base64 ``data:`` URI, no network access needed to
view it. The table sorts by clicking a column header (again: the other
direction; missing values always last); the page also lists the runs behind
the rows (model identity, results file, date, superseded runs) and the notes.
"""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from lm_eval_rankacc.report.tables import Report, _clean

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
    value = _clean(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _is_num(rows: list[dict[str, Any]], key: str) -> bool:
    values = [_clean(r.get(key)) for r in rows if _clean(r.get(key)) is not None]
    return bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def render_html(report: Report, figure_png: bytes | None = None) -> str:
    """The leaderboard ``report`` as one HTML page (``figure_png``: the figure, embedded)."""
    if report.kind != "leaderboard":
        raise ValueError(f"render_html needs a leaderboard report, got {report.kind!r}")
    from lm_eval_rankacc.leaderboard import display, legend

    section = report.sections[0]
    headers, body, keys = display(report, "html")
    sort_key = str(report.meta.get("sort", "")).split(" ")[0]
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{escape(report.title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
           f"<h1>{escape(report.title)}</h1>", '<ul class="meta">']
    for key, value in report.meta.items():
        if isinstance(value, list):
            value = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
        out.append(f"<li><b>{escape(str(key))}</b>: {escape(str(value))}</li>")
    out += ["</ul>", '<table id="leaderboard" class="sortable">', "<thead><tr>"]
    numeric = {k: _is_num(section.rows, k) for k in keys}
    for header, key in zip(headers, keys):
        direction = "none"
        if key == sort_key:
            direction = "descending" if numeric[key] else "ascending"
        out.append(f'<th data-key="{escape(key)}" data-type="{"num" if numeric[key] else "text"}" '
                   f'aria-sort="{direction}" tabindex="0" title="sort by {escape(key)}">{escape(header)}</th>')
    out += ["</tr></thead>", "<tbody>"]
    for row, cells in zip(section.rows, body):
        tds = []
        for key, cell in zip(keys, cells):
            classes = []
            if numeric[key]:
                classes.append("num")
            if cell == "missing":
                classes.append("missing")
            elif cell == "n/a":
                classes.append("na")
            task = key.split("/")[0]
            tag = row.get(f"{task}/docs")
            several = "/" in key and len({r.get(f"{task}/docs") for r in section.rows} - {None}) > 1
            title = ""
            own = not key.endswith(("_star", "/gap", "/gap_norm"))  # R* / gap: the reference's documents
            if cell == "other docs" or (several and own and tag not in (None, "A")):
                classes.append("otherdocs")
                title = f' title="{escape(task)}: scored on other documents (see the notes)"'
            cls = f' class="{" ".join(classes)}"' if classes else ""
            tds.append(f'<td data-v="{escape(_value(row.get(key)))}"{cls}{title}>{escape(cell)}</td>')
        out.append("<tr>" + "".join(tds) + "</tr>")
    out += ["</tbody>", "</table>", f'<p class="legend">{escape(legend(report))}</p>']
    if figure_png:
        data = base64.b64encode(figure_png).decode("ascii")
        out += ['<figure>', f'<img id="figure" alt="ranking accuracy per task and model" '
                f'src="data:image/png;base64,{data}">', "</figure>"]
    runs = report.sections[1] if len(report.sections) > 1 else None
    if runs is not None:
        out += ["<h2>Runs</h2>", '<table id="runs">', "<thead><tr>"]
        out += [f"<th>{escape(c)}</th>" for c in runs.columns]
        out += ["</tr></thead>", "<tbody>"]
        for row in runs.rows:
            out.append("<tr>" + "".join(f"<td>{escape(_value(row.get(c)))}</td>" for c in runs.columns) + "</tr>")
        out += ["</tbody>", "</table>"]
    if report.notes:
        out += ["<h2>Notes</h2>", '<ul class="notes">'] + [f"<li>{escape(n)}</li>" for n in report.notes] + ["</ul>"]
    out += [f"<script>{_JS}</script>", "</body>", "</html>"]
    return "\n".join(out) + "\n"
