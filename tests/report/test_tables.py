"""report/ on hand-built reports, without the CLI: every format of
:func:`render`, the cell rules (Markdown, CSV formula injection, LaTeX,
JSON-safe values), the per-document CSV, and the HTML page with hostile
strings left inert."""

from __future__ import annotations

import csv
import io
import json
import math
from html.parser import HTMLParser

import numpy as np
import pytest

from lm_eval_rankacc.analysis.base import LazyRows, Report, Section
from lm_eval_rankacc.report import FORMATS, documents_csv, render
from lm_eval_rankacc.report.cells import csv_text, latex_escape, md_cell
from lm_eval_rankacc.report.html import render_html

HOSTILE = "</script><img src=x onerror=alert(1)> | =SUM(A1) \\ & 50% $x_1$ #~^ {a}"


def _report(kind: str = "custom") -> Report:
    rows = [
        {"task": "rankacc_demo", "value": 0.123456, "n": 33, "ok": True, "text": "two\nlines\tand | a bar"},
        {"task": "=cmd|' /C calc'!A0", "value": float("nan"), "n": np.int64(2), "ok": False, "text": HOSTILE},
        {"task": "rankacc_x", "value": -0.25, "n": None, "ok": None, "text": "x" * 200},
    ]
    return Report(kind, "A title\nwith a newline", {"betas": [0.1, 1.0], "note": "m"},
                  [Section("first", ["task", "value", "n", "ok", "text"], rows),
                   Section("second", ["task", "extra"], [{"task": "t", "extra": math.inf}])],
                  notes=["a note\nover two lines"], documents=[{"id": "d1", "c": 0.5}, {"id": "d2", "c": None}])


def test_every_format_renders_and_an_unknown_one_is_refused():
    report = _report()
    for fmt in FORMATS:
        assert render(report, fmt).endswith("\n")
    with pytest.raises(ValueError, match="unknown format 'html'"):
        render(report, "html")


def test_markdown_cells_stay_in_their_column():
    text = render(_report(), "md")
    assert text.startswith("# A title with a newline\n")
    table = [line for line in text.splitlines() if line.startswith("| rankacc_demo")]
    assert table == ["| rankacc_demo | 0.1235 | 33 | yes | two lines and \\| a bar |"]
    long_row = next(line for line in text.splitlines() if line.startswith("| rankacc_x"))
    assert "| -0.2500 | n/a | n/a | " in long_row and long_row.endswith("\u2026 |")
    assert len(long_row.split(" | ")[-1].rstrip(" |")) == 80  # cut at the text width, ellipsis included
    assert "- a note over two lines" in text and "- betas: 0.1, 1" in text
    # every table line has as many unescaped bars as its header
    for line in text.splitlines():
        if line.startswith("| task | value"):
            bars = line.count("|")
        elif line.startswith("| ") and "extra" not in line and not line.startswith("| t |"):
            assert line.replace("\\|", "").count("|") == bars


def test_csv_neutralises_formulas_and_round_trips_the_text():
    text = render(_report(), "csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "section"  # two sections: one CSV with a section column
    first = {r[1]: r for r in rows[1:] if r[0] == "first"}
    bad = next(r for r in first.values() if r[1].startswith("'"))
    assert bad[1] == "'=cmd|' /C calc'!A0" and csv_text(bad[1]) == "=cmd|' /C calc'!A0"
    assert bad[2] == ""  # NaN: an empty cell
    assert first["rankacc_x"][2] == "-0.25"  # a negative number stays a number, unquoted
    assert first["rankacc_demo"][5] == "two\nlines\tand | a bar"  # full text inside the quoted cell
    second = next(r for r in rows[1:] if r[0] == "second")
    assert second[-1] == ""  # infinity: empty


def test_json_is_json_safe_and_complete():
    data = json.loads(render(_report(), "json"))
    assert data["kind"] == "custom" and data["notes"] == ["a note\nover two lines"]
    first = data["sections"][0]["rows"]
    assert first[1]["value"] is None and first[1]["n"] == 2 and isinstance(first[1]["n"], int)
    assert data["sections"][1]["rows"][0]["extra"] is None
    assert data["documents"] == [{"id": "d1", "c": 0.5}, {"id": "d2", "c": None}]


def test_latex_escapes_every_special_character():
    text = render(_report(), "latex")
    assert r"50\% \$x\_1\$ \#\textasciitilde{}\textasciicircum{} \{a\}" in text
    assert r"\textbackslash{} \&" in text
    assert latex_escape("a_b & c") == r"a\_b \& c"
    assert "% note: a note over two lines" in text


def test_md_cell_rules():
    assert md_cell(None) == md_cell(float("nan")) == "n/a"
    assert (md_cell(True), md_cell(False), md_cell(0.5), md_cell(np.float32(0.25))) == ("yes", "no", "0.5000", "0.2500")


def test_documents_csv_reads_lazy_rows_once_and_in_full():
    calls = []

    def row(k):
        calls.append(k)
        return {"id": f"d{k}", "prompt": "=1+1" if k else "long " * 50}

    text = documents_csv(Report("hardness", "t", {}, [], documents=LazyRows([(3, row)])))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert calls == [0, 1, 2]
    assert rows[0]["prompt"] == "long " * 50 and rows[1]["prompt"] == "'=1+1"
    assert documents_csv(Report("flips", "t", {}, [])) == ""


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data):
        self.text.append(data)


def test_html_page_keeps_hostile_model_names_and_notes_as_text():
    tasks, metrics = ["rankacc_demo"], ["rank_acc"]
    row = {"model": HOSTILE, "backend": "hf", "pretrained": "javascript:alert(1)", "revision": None,
           "dtype": "float32", "rankacc_demo/rank_acc": 0.5, "rankacc_demo/rank_acc_stderr": 0.1,
           "rankacc_demo/n": 4, "rankacc_demo/docs": "A"}
    runs = Section("runs", ["model", "status", "results_file"],
                   [{"model": HOSTILE, "status": "used", "results_file": "/x/<b>y</b>.json"}])
    report = Report("leaderboard", "Ranking-accuracy leaderboard", {"tasks": tasks, "metrics": metrics},
                    [Section("leaderboard", list(row), [row]), runs], notes=[f"note {HOSTILE}"])
    page = render_html(report, b"\x89PNG fake")
    parser = _Collect()
    parser.feed(page)
    assert parser.tags.count("img") == 1  # the embedded figure only: the hostile <img> is text
    assert parser.tags.count("script") == 1  # the page's own script only
    assert not [v for k, v in parser.attrs if k.startswith("on")]
    assert not [v for k, v in parser.attrs if k == "href" and v and v.startswith("javascript:")]
    assert HOSTILE in "".join(parser.text)  # shown, as text
