"""Markdown outputs are inert and show what is invisible (issue 20, item 9):
raw HTML, entities and links from model names and texts are escaped, and
bidi controls and zero-width characters appear as \\uXXXX, in one place
(report/cells.py), for tables, titles and the leaderboard's list of runs."""

from __future__ import annotations

import re

import pytest

from lm_eval_rankacc.report.cells import md_cell, md_text, one_line
from lm_eval_rankacc.report.tables import Report, Section, render

HOSTILE = ("<script>alert(1)</script> <img src=x onerror=alert(1)> [click](javascript:alert(1)) "
           "[ref]: javascript:x &lt;b&gt; \u202eevil\u2066x\u2069\u200b\u200d\ufeff end")


def test_a_truncated_cell_is_inert_too():
    cell = md_cell("<img src=x onerror=alert(1)> [a](javascript:1) \u202e" + "x" * 200)
    assert cell.startswith("&lt;img src=x onerror=alert(1)&gt; [a\\](javascript:1) \\u202e") and len(cell) < 120


def test_no_html_entity_link_or_invisible_character_survives():
    cell = md_text(HOSTILE)
    assert not re.search(r"<[A-Za-z/!]", cell)  # no tag can open
    assert not re.search(r"(?<!\\)\][(:]", cell)  # no inline link or reference definition: the ] escaped
    assert "[click\\](javascript" in cell
    assert "&lt;b&gt;" not in cell and "&amp;lt;b&amp;gt;" in cell  # an entity in the text stays text
    assert not re.search("[\u202a-\u202e\u2066-\u2069\u200b-\u200f\ufeff]", cell)
    assert "\\u202e" in cell and "\\u2066" in cell and "\\u200b" in cell and "\\ufeff" in cell


def test_visible_controls_everywhere_text_is_one_line():
    assert one_line("a\u202eb") == "a\\u202eb"  # notes on stderr and LaTeX cells too


def test_a_rendered_markdown_report_is_inert():
    report = Report(kind="t", title="t", meta={}, sections=[
        Section(HOSTILE, ["model", "x"], [{"model": HOSTILE, "x": 0.5}]),
        Section("second", ["model"], [{"model": "<b>bold</b>"}]),
    ])
    text = render(report, "md")
    assert "<script" not in text and "<img" not in text and "<b>" not in text and not re.search(r"(?<!\\)\]\(javascript", text)
    assert "\u202e" not in text and "\\u202e" in text
