"""Pairwise judge verdicts and the win rate they give (docs/winrate.md). Pure: no I/O.

A judge sees one prompt and two outputs, labelled A and B, and answers with
one verdict (:func:`parse_verdict`). Each prompt is judged twice, the policy
as A and then as B, to cancel the judge's position bias (Zheng et al. 2023,
"Judging LLM-as-a-judge with MT-Bench and Chatbot Arena": a win only when
both orders agree, else a tie). :func:`combine` turns the two verdicts of
one prompt into its score:

* both orders prefer the policy: a win, 1;
* both prefer the baseline: a loss, 0;
* the two disagree, or either says tie: a tie, 1/2 (ties count half);
* either verdict unparsed: the prompt is unparsed, left out of the win rate
  and counted apart.

The win rate is the mean score over the scored prompts; the position
consistency is the share of scored prompts whose two verdicts, read as
"policy / baseline / tie", agree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lm_eval_rankacc.core.stats import LEVEL, bootstrap_means, interval

A, B, TIE, UNPARSED = "A", "B", "tie", "unparsed"
POLICY, BASELINE = "policy", "baseline"
#: The two orders a prompt is judged in: the policy's output shown as A, then as B.
ORDERS = ("policy_a", "policy_b")
#: The judge's whole reply, stripped of surrounding white space, with at most one trailing full stop.
_VERDICT_RE = re.compile(r"^\s*(A|B|tie)\s*\.?\s*$", re.IGNORECASE)


def parse_verdict(text: str | None) -> str:
    """``A``, ``B`` or ``tie`` when the judge's whole reply is that word
    (case-insensitive, surrounding white space and one trailing full stop
    allowed); ``unparsed`` for anything else. Strict on purpose: a reply that
    names both labels, or explains itself, is not guessed at."""
    m = _VERDICT_RE.match(text or "")
    if not m:
        return UNPARSED
    word = m.group(1)
    return TIE if word.lower() == "tie" else word.upper()


def preferred(verdict: str, order: str) -> str | None:
    """What a verdict prefers once the order is undone: ``policy``,
    ``baseline``, ``tie``, or None for an unparsed verdict."""
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r} (one of {ORDERS})")
    if verdict == TIE:
        return TIE
    if verdict not in (A, B):
        return None
    policy_label = A if order == "policy_a" else B
    return POLICY if verdict == policy_label else BASELINE


def combine(first: str | None, second: str | None) -> float | None:
    """The score of one prompt from its two un-swapped preferences
    (:func:`preferred`): 1 when both are ``policy``, 0 when both are
    ``baseline``, 1/2 otherwise; None when either is None (unparsed)."""
    if first is None or second is None:
        return None
    if first == second == POLICY:
        return 1.0
    if first == second == BASELINE:
        return 0.0
    return 0.5


@dataclass(frozen=True)
class WinRate:
    """The win rate of a policy over a baseline on the prompts judged."""

    n_prompts: int  # prompts judged (both orders asked)
    wins: int
    ties: int
    losses: int
    unparsed: int  # prompts with an unparsed verdict, left out of the win rate
    consistent: int  # scored prompts whose two preferences agree
    win_rate: float | None  # (wins + ties / 2) / scored; None without a scored prompt
    ci_low: float | None
    ci_high: float | None
    confidence: float

    @property
    def scored(self) -> int:
        return self.wins + self.ties + self.losses

    @property
    def position_consistency(self) -> float | None:
        return self.consistent / self.scored if self.scored else None


def win_rate(pairs: Sequence[tuple[str | None, str | None]], n_boot: int = 0, seed: int = 0,
             level: float = LEVEL) -> WinRate:
    """:class:`WinRate` of the prompts' (policy-as-A, policy-as-B)
    preferences (:func:`preferred`), with the bootstrap percentile interval of
    the mean score over the scored prompts (``n_boot`` replicates, drawn as
    :func:`lm_eval_rankacc.core.stats.bootstrap_means` draws; 0: no interval)."""
    scores = [combine(p, q) for p, q in pairs]
    kept = np.array([s for s in scores if s is not None], dtype=float)
    consistent = sum(1 for (p, q), s in zip(pairs, scores) if s is not None and p == q)
    low = high = None
    if n_boot and len(kept):
        low, high = interval(bootstrap_means(kept, n_boot, seed)[:, 0], level)
    return WinRate(
        n_prompts=len(scores), wins=int((kept == 1.0).sum()), ties=int((kept == 0.5).sum()),
        losses=int((kept == 0.0).sum()), unparsed=len(scores) - len(kept), consistent=consistent,
        win_rate=float(kept.mean()) if len(kept) else None, ci_low=low, ci_high=high, confidence=level,
    )
