"""Ranking-accuracy mathematics from Chen et al., "Preference Learning Algorithms
Do Not Learn Preference Rankings" (NeurIPS 2024). Pure functions, no I/O.

Notation: a document has responses y_1..y_n with human ranks r_i (1 = best,
equal ranks = a human tie) and model scores s_i (a log-probability, possibly
length-normalised). Response i is *preferred* to j when r_i < r_j.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Tolerance of the tie rule (Def. C.1): a human tie is ranked correctly when
#: the two tie scores differ by less than this.
TIE_EPS = 0.01


def is_valid(score: float) -> bool:
    """A score is usable when it is a finite number (NaN and -inf are not)."""
    return isinstance(score, (int, float)) and math.isfinite(score)


def strictly_ordered_pairs(ranks: Sequence[int]) -> list[tuple[int, int]]:
    """All index pairs (i, j) with r_i < r_j, i.e. response i preferred to j.

    Human-tied responses (equal ranks) impose no order and form no pair.
    """
    n = len(ranks)
    return [(i, j) for i in range(n) for j in range(n) if ranks[i] < ranks[j]]


def pair_ranked_correctly(score_preferred: float, score_dispreferred: float) -> bool:
    """Def. 2.3: the model ranks y_w above y_l when s(y_w) >= s(y_l).

    Equal scores count as correct (so identical responses are never penalised,
    whatever their order). An invalid score makes the pair wrong.
    """
    return (
        is_valid(score_preferred)
        and is_valid(score_dispreferred)
        and score_preferred >= score_dispreferred
    )


def tie_ranked_correctly(tie_score_1: float, tie_score_2: float, eps: float = TIE_EPS) -> bool:
    """Def. C.1: a human tie (alpha = 0.5) is ranked correctly when the model's
    two tie scores are within ``eps`` of each other (strictly less than eps)."""
    return is_valid(tie_score_1) and is_valid(tie_score_2) and abs(tie_score_1 - tie_score_2) < eps


def ranking_correct(
    scores: Sequence[float],
    ranks: Sequence[int],
    tie_scores: Sequence[float] | None = None,
    eps: float = TIE_EPS,
) -> bool:
    """Whether one document is ranked correctly.

    - n = 2, strict human order: Def. 2.3 on ``scores``.
    - n = 2, human tie: Def. C.1 on ``tie_scores`` (defaults to ``scores``).
    - n > 2: Def. A.8 generalised to partial orders: correct only if every
      human-strictly-ordered pair is ordered correctly; human-tied responses
      impose no order between themselves.

    Any invalid score in the document makes it wrong. A document of n > 2
    responses that are all tied has no order to check and is rejected (the
    data converters drop such documents before scoring).
    """
    if len(scores) != len(ranks) or len(ranks) < 2:
        raise ValueError(f"need one score per response and n >= 2, got {len(scores)} scores, {len(ranks)} ranks")
    if not all(is_valid(s) for s in scores):
        return False
    if len(ranks) == 2 and ranks[0] == ranks[1]:
        ts = scores if tie_scores is None else tie_scores
        return tie_ranked_correctly(ts[0], ts[1], eps)
    pairs = strictly_ordered_pairs(ranks)
    if not pairs:
        raise ValueError(f"all {len(ranks)} responses are tied: no ranking to check")
    return all(pair_ranked_correctly(scores[i], scores[j]) for i, j in pairs)


def pair_accuracy(scores: Sequence[float], ranks: Sequence[int]) -> float | None:
    """Fraction of the human-strictly-ordered pairs the model orders correctly
    (ties excluded); ``None`` when the document has no strictly ordered pair."""
    pairs = strictly_ordered_pairs(ranks)
    if not pairs:
        return None
    return sum(pair_ranked_correctly(scores[i], scores[j]) for i, j in pairs) / len(pairs)


def per_unit(loglik: float, units: int | None) -> float:
    """Length-normalised log-probability: loglik / units (tokens for R~, Eq. 15;
    UTF-8 bytes for the tokenizer-free variant). NaN when units is unknown or 0."""
    if not units or not is_valid(loglik):
        return math.nan
    return loglik / units


def geometric_mean_prob(normalised_loglik: float) -> float:
    """exp(mean log-probability): the per-unit geometric-mean probability the
    paper's code compares under the tie rule for normalised accuracy."""
    return math.exp(normalised_loglik) if is_valid(normalised_loglik) else math.nan
