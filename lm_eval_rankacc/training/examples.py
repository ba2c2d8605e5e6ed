"""What a document gives to train on: its preference pairs (DPO) and its
preferred responses (SFT), with what is skipped counted.

Pairs (:func:`documents_to_pairs`): every strictly ordered pair of a document
(for n = 2 the pair itself; for n > 2 the pairs whose order Def. A.8's exact
match checks, our choice: the paper trains on HH-RLHF pairs only); pairs the
humans tied are skipped and counted. Preferred responses
(:func:`preferred_responses`): the best-ranked responses of each document.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from lm_eval_rankacc.core import theory

log = logging.getLogger("lm_eval_rankacc.training")

SKIP_TIES = "pairs the humans tied (no preference to learn)"
SKIP_ALL_TIED = "documents whose responses are all tied (no preferred response)"


def log_skipped(what: str, counts: Counter) -> None:
    """One warning per reason documents or pairs were skipped."""
    for reason, n in sorted(counts.items()):
        log.warning("%s: skipped %d %s", what, n, reason)


@dataclass(frozen=True)
class Pair:
    """One preference pair of a document: ``chosen`` is ranked strictly above ``rejected``."""

    pair_id: str
    doc_id: str
    prompt: str
    chosen: str
    rejected: str
    #: positions of ``chosen`` and ``rejected`` among the document's responses
    at: tuple[int, int] = (0, 1)


def documents_to_pairs(docs: list[dict[str, Any]]) -> tuple[list[Pair], Counter]:
    """Every human-strictly-ordered pair of every document (ties skipped and counted).

    A two-response document gives one pair whose id is the document id; a
    larger one gives ``<doc id>:<i>><j>`` for response i preferred to j.
    """
    pairs: list[Pair] = []
    skipped: Counter = Counter()
    for doc in docs:
        ranks, responses = list(doc["ranks"]), list(doc["responses"])
        n = len(ranks)
        tied = sum(1 for i in range(n) for j in range(i + 1, n) if ranks[i] == ranks[j])
        if tied:
            skipped[SKIP_TIES] += tied
        for i, j in theory.strictly_ordered_pairs(ranks):
            pid = doc["id"] if n == 2 else f"{doc['id']}:{i}>{j}"
            pairs.append(Pair(pid, doc["id"], doc["prompt"], responses[i], responses[j], (i, j)))
    return pairs, skipped


def preferred_responses(docs: list[dict[str, Any]]) -> tuple[list[tuple[str, str, str]], Counter]:
    """(example id, prompt, response) for the best-ranked responses of each
    document (SFT on the preferred responses); documents whose responses are
    all tied have no preferred response and are skipped and counted."""
    out, skipped = [], Counter()
    for doc in docs:
        ranks = list(doc["ranks"])
        if len(set(ranks)) == 1:
            skipped[SKIP_ALL_TIED] += 1
            continue
        best = min(ranks)
        seen = set()
        for k, (rank, response) in enumerate(zip(ranks, doc["responses"])):
            if rank == best and response not in seen:
                seen.add(response)
                out.append((doc["id"] if ranks.count(best) == 1 else f"{doc['id']}:{k}", doc["prompt"], response))
    return out, skipped
