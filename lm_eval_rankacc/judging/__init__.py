"""Judging generations pairwise: ``rankacc winrate`` (docs/winrate.md).

:func:`winrate` reads two lm-eval runs of the same ``generate_until`` task,
asks a judge (an OpenAI-compatible chat endpoint or a local transformers
model) both orders of every prompt, and reports the win rate with ties
counted half, a bootstrap interval and the judge's position consistency.
"""

from lm_eval_rankacc.judging.winrate import (
    JUDGEMENTS_FILE,
    SUMMARY_FILE,
    make_judge,
    markdown_table,
    summary_notes,
    winrate,
)

__all__ = ["JUDGEMENTS_FILE", "SUMMARY_FILE", "make_judge", "markdown_table", "summary_notes", "winrate"]
