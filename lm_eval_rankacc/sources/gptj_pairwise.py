"""Synthetic Instruct GPT-J pairwise (Dahoas), hub dataset
``Dahoas/synthetic-instruct-gptj-pairwise`` at the hub's ``main`` (``HUB``: no
public code pins a commit of it): one ``train`` split of rows
``{"prompt": str, "chosen": str, "rejected": str}``.

prompt = ``prompt``; responses = [chosen, rejected]; ranks = [1, 2]; document
id = ``<split>/<row>``. A pair listed again (same prompt, same two responses
in either order) is dropped and counted; if the copies disagree on which
response is chosen, every copy is dropped and counted
(:class:`~lm_eval_rankacc.sources.common.PairLedger`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lm_eval_rankacc.sources import Conversion, HubDataset, fields

#: No commit of this dataset is pinned in public code we could find: "main" (unpinned).
HUB = HubDataset(path="Dahoas/synthetic-instruct-gptj-pairwise", revision="main")
#: The loader may convert big splits in two passes (see :mod:`lm_eval_rankacc.sources`).
TWO_PASS = True


def convert(rows: Iterable[Any], split: str, **_: Any) -> Conversion:
    return fields.pairwise(rows, split, prompt_field="prompt", chosen_field="chosen", rejected_field="rejected")
