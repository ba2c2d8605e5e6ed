"""Stack Exchange preferences (HuggingFace H4), hub dataset
``HuggingFaceH4/stack-exchange-preferences``: one row per question,
``{"qid", "question": str, "answers": [{"text": str, "pm_score": int, ...}], ...}``
(question and answers are the site's HTML).

The dataset holds about 10M questions in one parquet folder per site; only
one file is read, ``data/cs.stackexchange.com/train-00000-of-00001.parquet``
(Computer Science Stack Exchange), at the revision pinned in ``HUB`` (a commit
that other public code pins for the dataset); all its rows are converted and
the default sample of 1,000 documents is drawn from them.

prompt = ``question``; responses = the answers' ``text``; ranks = dense ranks
of ``pm_score`` (higher is better, equal scores tied). Identical answer texts,
questions left with fewer than two distinct answers, and questions whose
answers are all tied follow :func:`~lm_eval_rankacc.sources.common.scored_document`.
Document id = ``<split>/<row>`` in the pinned file.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lm_eval_rankacc.sources import Conversion, HubDataset, fields

#: Revision and file layout as pinned in public code (see tasks/stack_exchange/README.md).
HUB = HubDataset(
    path="HuggingFaceH4/stack-exchange-preferences",
    revision="c7bda74048748f55749cd663c3d8d1025a841fd9",
    data_files="data/cs.stackexchange.com/train-00000-of-00001.parquet",
)
#: The loader may convert big splits in two passes (see :mod:`lm_eval_rankacc.sources`).
TWO_PASS = True


def convert(rows: Iterable[Any], split: str, **_: Any) -> Conversion:
    return fields.scored(
        rows, split, prompt_field="question", responses_field="answers",
        score_field="pm_score", text_field="text",
    )
