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

The log-probability verdict (``--judge-verdict logprob``, ours) reads, in
each order, the judge's probabilities of the answer words A, B and tie at
the answer position instead of its text (each word's :data:`ANSWER_FORMS`
summed; :func:`answer_shares`: normalised over the three), and
:func:`combine_logprob` scores the prompt from the mean over the two orders
(:func:`mean_preference`) of the policy's preference (:func:`policy_preference`:
the share of the policy's label plus half the tie's): a win above
1/2 + :data:`LOGPROB_MARGIN`, a loss below 1/2 - :data:`LOGPROB_MARGIN`, a tie
between, the bounds included. A judge that says "A" with the same confidence whatever it is shown
has a mean of exactly 1/2: a tie, as in the text rule.
"""

from __future__ import annotations

import re
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lm_eval_rankacc.core.stats import LEVEL, bootstrap_means, interval

A, B, TIE, UNPARSED = "A", "B", "tie", "unparsed"
POLICY, BASELINE = "policy", "baseline"
#: The two orders a prompt is judged in: the policy's output shown as A, then as B.
ORDERS = ("policy_a", "policy_b")
#: Half the width of the band around 1/2 where the log-probability verdict is a tie.
LOGPROB_MARGIN = 0.1
#: How each answer word is spelt when ``--judge-verdict logprob`` reads its probability; every
#: spelling counts with and without one leading space (:data:`ANSWER_FORMS`).
ANSWER_SPELLINGS = {A: ("A",), B: ("B",), TIE: ("tie", "Tie", "TIE")}
#: The answer strings whose probabilities are summed per word: each spelling, bare and after one space.
ANSWER_FORMS = {label: tuple(p + s for s in spellings for p in ("", " "))
                for label, spellings in ANSWER_SPELLINGS.items()}
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


def answer_label(text: str) -> str | None:
    """The answer word (``A``, ``B`` or ``tie``) that the string ``text`` (an
    API's top-logprob token) spells, one of :data:`ANSWER_FORMS` exactly;
    None for any other string.

    >>> answer_label(" A"), answer_label("Tie"), answer_label("a"), answer_label("The")
    ('A', 'tie', None, None)
    """
    return next((label for label, forms in ANSWER_FORMS.items() if text in forms), None)


def answer_shares(probs: Mapping[str, float] | None) -> dict[str, float] | None:
    """The probabilities of ``A``, ``B`` and ``tie`` normalised to sum to 1;
    None when any is missing, negative or not finite, or all are 0.

    >>> answer_shares({"A": 0.2, "B": 0.6, "tie": 0.2})
    {'A': 0.2, 'B': 0.6, 'tie': 0.2}
    >>> answer_shares({"A": 0.0, "B": 0.0, "tie": 0.0}) is None
    True
    """
    if not isinstance(probs, Mapping):
        return None
    values = [probs.get(k) for k in (A, B, TIE)]
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 for v in values):
        return None
    total = sum(values)
    if total <= 0:
        return None
    return {k: v / total for k, v in zip((A, B, TIE), values)}


def policy_preference(shares: Mapping[str, float] | None, order: str) -> float | None:
    """The policy's preference in one order, in [0, 1]: the share of the
    policy's label (A in ``policy_a``, B in ``policy_b``) plus half the share
    of ``tie``; None for None shares.

    >>> policy_preference({"A": 0.5, "B": 0.3, "tie": 0.2}, "policy_b")
    0.4
    """
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r} (one of {ORDERS})")
    if shares is None:
        return None
    return shares[A if order == "policy_a" else B] + shares[TIE] / 2


def side(preference: float | None) -> str | None:
    """What one order's preference prefers: ``policy`` above 1/2, ``baseline`` below, ``tie`` at 1/2."""
    if preference is None:
        return None
    return POLICY if preference > 0.5 else BASELINE if preference < 0.5 else TIE


def mean_preference(first: float | None, second: float | None) -> float | None:
    """The prompt's combined preference: the mean of its two orders'
    :func:`policy_preference` values; None when either is None."""
    if first is None or second is None:
        return None
    return (first + second) / 2


def combine_logprob(first: float | None, second: float | None, margin: float = LOGPROB_MARGIN) -> float | None:
    """The score of one prompt from its two orders' :func:`policy_preference`:
    with m their :func:`mean_preference`, 1 when m > 1/2 + ``margin``, 0 when
    m < 1/2 - ``margin``, 1/2 otherwise (the bounds are ties); None when either is None.

    >>> combine_logprob(0.9, 0.1), combine_logprob(0.8, 0.7), combine_logprob(0.3, 0.2)
    (0.5, 1.0, 0.0)
    """
    if not 0 <= margin < 0.5:
        raise ValueError(f"margin must be in [0, 1/2), got {margin!r}")
    mean = mean_preference(first, second)
    if mean is None:
        return None
    return 1.0 if mean > 0.5 + margin else 0.0 if mean < 0.5 - margin else 0.5


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
    return scores_win_rate(scores, [p == q for p, q in pairs], n_boot, seed, level)


def logprob_win_rate(pairs: Sequence[tuple[float | None, float | None]], margin: float = LOGPROB_MARGIN,
                     n_boot: int = 0, seed: int = 0, level: float = LEVEL) -> WinRate:
    """:class:`WinRate` of the prompts' (policy-as-A, policy-as-B)
    :func:`policy_preference` values by :func:`combine_logprob`; two orders
    are consistent when they prefer the same :func:`side`."""
    scores = [combine_logprob(p, q, margin) for p, q in pairs]
    return scores_win_rate(scores, [side(p) == side(q) for p, q in pairs], n_boot, seed, level)


def scores_win_rate(scores: Sequence[float | None], consistent: Sequence[bool], n_boot: int = 0, seed: int = 0,
                    level: float = LEVEL) -> WinRate:
    """:class:`WinRate` of the prompts' scores (1, 1/2, 0, or None: unparsed)
    and whether each prompt's two orders agree."""
    kept = np.array([s for s in scores if s is not None], dtype=float)
    agree = sum(1 for c, s in zip(consistent, scores) if s is not None and c)
    low = high = None
    if n_boot and len(kept):
        low, high = interval(bootstrap_means(kept, n_boot, seed)[:, 0], level)
    return WinRate(
        n_prompts=len(scores), wins=int((kept == 1.0).sum()), ties=int((kept == 0.5).sum()),
        losses=int((kept == 0.0).sum()), unparsed=len(scores) - len(kept), consistent=agree,
        win_rate=float(kept.mean()) if len(kept) else None, ci_low=low, ci_high=high, confidence=level,
    )
