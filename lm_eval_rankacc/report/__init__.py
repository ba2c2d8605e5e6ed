"""Presentation of the analyses' reports (:mod:`lm_eval_rankacc.analysis`):
text tables (:mod:`.tables`, laid out per kind of report; the leaderboard's
layout is :mod:`.leaderboard`), the HTML page (:mod:`.html`) and figures
(:mod:`.figures`). Imports the analyses' data, never the other way round::

    from lm_eval_rankacc.report import render
    print(render(report, "md"))  # or "csv", "json", "latex"
"""

from lm_eval_rankacc.report.tables import FORMATS, documents_csv, render

__all__ = ["FORMATS", "documents_csv", "render"]
