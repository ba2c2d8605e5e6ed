"""UltraFeedback (Cui et al., 2023), hub dataset ``openbmb/UltraFeedback`` at
the revision pinned in ``HUB`` (the revision other public code pins; one
script that builds a binarized version from it notes that it carries the fixes
to ``overall_score``): one ``train`` split of rows ``{"instruction": str,
"completions": [{"response": str, "overall_score": float, ...}] (4 per row),
...}``.

prompt = ``instruction``; responses = the completions' ``response`` (n = 4);
ranks = dense ranks of ``overall_score`` (GPT-4's rating, higher is better,
equal scores tied). Identical responses, rows left with fewer than two
distinct responses, and rows whose responses are all tied follow
:func:`~lm_eval_rankacc.sources.common.scored_document`.
Document id = ``<split>/<row>``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lm_eval_rankacc.sources import Conversion, HubDataset, fields

HUB = HubDataset(path="openbmb/UltraFeedback", revision="40b436560ca83a8dba36114c22ab3c66e43f6d5e")
#: The loader may convert big splits in two passes (see :mod:`lm_eval_rankacc.sources`).
TWO_PASS = True


def convert(rows: Iterable[Any], split: str, **_: Any) -> Conversion:
    return fields.scored(
        rows, split, prompt_field="instruction", responses_field="completions",
        score_field="overall_score", text_field="response",
    )
