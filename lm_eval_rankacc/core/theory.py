"""Ranking-accuracy mathematics from Chen et al., "Preference Learning Algorithms
Do Not Learn Preference Rankings" (NeurIPS 2024). Pure functions, no I/O.

Notation: a document has responses y_1..y_n with human ranks r_i (1 = best,
equal ranks = a human tie) and model scores s_i (a log-probability, possibly
length-normalised). Response i is *preferred* to j when r_i < r_j.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: Tolerance of the tie rule (Def. C.1): a human tie is ranked correctly when
#: the two tie scores differ by less than this. What it means depends on the
#: tie scores (:func:`metric_scores`): for R a gap of summed log-probabilities
#: (a factor exp(0.01) ~ 1.01 in probability), for R~ an absolute gap of
#: geometric-mean token probabilities (docs/metrics.md, "What eps means").
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
    whatever their order). An invalid score makes the pair wrong. One document
    of :func:`pairs_ranked_correctly`.
    """
    return bool(pairs_ranked_correctly(score_preferred, score_dispreferred))


def tie_ranked_correctly(tie_score_1: float, tie_score_2: float, eps: float = TIE_EPS) -> bool:
    """Def. C.1: a human tie (alpha = 0.5) is ranked correctly when the model's
    two tie scores are within ``eps`` of each other (strictly less than eps).
    One document of :func:`ties_ranked_correctly`."""
    return bool(ties_ranked_correctly(tie_score_1, tie_score_2, eps))


def ranking_correct(
    scores: Sequence[float],
    ranks: Sequence[int],
    tie_scores: Sequence[float] | None = None,
    eps: float = TIE_EPS,
) -> bool:
    """Whether one document is ranked correctly (one row of :func:`rankings_correct`).

    - n = 2, strict human order: Def. 2.3 on ``scores``.
    - n = 2, human tie: Def. C.1 on ``tie_scores`` (defaults to ``scores``).
    - n > 2: Def. A.8 generalised to partial orders: correct only if every
      human-strictly-ordered pair is ordered correctly; human-tied responses
      impose no order between themselves.

    Any invalid score in the document makes it wrong. A document of n > 2
    responses that are all tied has no order to check and is rejected (the
    data converters drop such documents before scoring).

    Examples:
        >>> ranking_correct([-1.0, -2.0], [1, 2])  # y_w at least as likely as y_l
        True
        >>> ranking_correct([-1.0, -1.004], [1, 1])  # a human tie within eps
        True
        >>> ranking_correct([-1.0, -3.0, -2.0], [1, 2, 2])  # n > 2: the tied pair imposes no order
        True
    """
    if len(scores) != len(ranks) or len(ranks) < 2:
        raise ValueError(f"need one score per response and n >= 2, got {len(scores)} scores, {len(ranks)} ranks")
    ties = None if tie_scores is None else [list(tie_scores)]
    return bool(rankings_correct([list(scores)], [list(ranks)], ties, eps)[0])


def pair_accuracy(scores: Sequence[float], ranks: Sequence[int]) -> float | None:
    """Fraction of the human-strictly-ordered pairs the model orders correctly
    (ties excluded); ``None`` when the document has no strictly ordered pair.

    Examples:
        >>> round(pair_accuracy([-1.0, -3.0, -2.0], [1, 2, 3]), 4)  # 2 of the 3 ordered pairs
        0.6667
    """
    pairs = strictly_ordered_pairs(ranks)
    if not pairs:
        return None
    return sum(pair_ranked_correctly(scores[i], scores[j]) for i, j in pairs) / len(pairs)


def per_unit(loglik: float, units: int | None) -> float:
    """Length-normalised log-probability: loglik / units (tokens for R~, Eq. 15;
    UTF-8 bytes for the tokenizer-free variant). NaN when units is unknown or 0.
    One value of :func:`per_units`."""
    return float(per_units(loglik, math.nan if units is None else units))


def geometric_mean_prob(normalised_loglik: float) -> float:
    """exp(mean log-probability): the per-unit geometric-mean probability the
    paper's released code compares under the tie rule for normalised accuracy
    (the tie score of :func:`metric_scores`)."""
    return math.exp(normalised_loglik) if is_valid(normalised_loglik) else math.nan


# =============================================================================
# Vectorised rules and idealized ranking accuracy (Sec. 3, Cor. 3.3, App. C.4)
# and the DPO ranking condition (Thm. 4.1). These are the rules themselves: the
# scalar functions above are their one-document views.
#
# Arrays hold N documents of n responses each: ``scores`` (N, n) floats,
# ``ranks`` (N, n) ints (1 = best, equal = human tie), ``alpha`` (N,) floats,
# the share of raters preferring response 1 (NaN where the data has none).
# =============================================================================


#: alpha = 1 (or 0) is replaced by 1 - ALPHA_EPS (or ALPHA_EPS) before taking
#: log(alpha / (1 - alpha)), symmetrically for both responses (App. C.4 adds
#: eps = 0.001 to a zero share; footnote 5 replaces alpha = 1 by 1 - eps).
ALPHA_EPS = 1e-3
#: The beta grid over which R* / R~* are reported unless asked otherwise (our choice of grid).
DEFAULT_BETAS = (0.01, 0.1, 1.0, 5.0, 10.0)
#: The smallest beta the idealized rules take: below it 1/beta times a log-odds
#: (at most ~745 in magnitude for any alpha_eps > 0) can overflow a float, and
#: the limit beta -> 0 (the human ranking decides) is already reached far above it.
MIN_BETA = 1e-300


def check_betas(betas: Sequence[float]) -> np.ndarray:
    """A beta grid as a 1-D float array, every beta finite and >= :data:`MIN_BETA`, else ValueError."""
    betas = np.atleast_1d(np.asarray(betas, dtype=float))
    if betas.ndim != 1 or not len(betas) or not np.isfinite(betas).all() or not (betas >= MIN_BETA).all():
        raise ValueError(f"betas must be finite numbers >= {MIN_BETA:g}, got {betas.tolist()}")
    return betas


def pairs_ranked_correctly(preferred: np.ndarray, dispreferred: np.ndarray) -> np.ndarray:
    """Vectorised :func:`pair_ranked_correctly` (Def. 2.3): s(y_w) >= s(y_l),
    both scores finite."""
    preferred = np.asarray(preferred, dtype=float)
    dispreferred = np.asarray(dispreferred, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.isfinite(preferred) & np.isfinite(dispreferred) & (preferred >= dispreferred)


def ties_ranked_correctly(tie_score_1: np.ndarray, tie_score_2: np.ndarray, eps: float = TIE_EPS) -> np.ndarray:
    """Vectorised :func:`tie_ranked_correctly` (Def. C.1): |t_1 - t_2| < eps,
    both tie scores finite."""
    t1 = np.asarray(tie_score_1, dtype=float)
    t2 = np.asarray(tie_score_2, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.isfinite(t1) & np.isfinite(t2) & (np.abs(t1 - t2) < eps)


def check_shapes(scores: np.ndarray, ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``scores`` as floats and ``ranks`` as given, both (N, n) with n >= 2, or ValueError."""
    scores = np.asarray(scores, dtype=float)
    ranks = np.asarray(ranks)
    if scores.ndim != 2 or scores.shape != ranks.shape or scores.shape[1] < 2:
        raise ValueError(
            f"need (N, n) scores and ranks with n >= 2, got shapes {scores.shape} and {ranks.shape}"
        )
    return scores, ranks


def _ordered_column_pairs(ranks: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """For n > 2: every column pair (i, j), i != j, with the mask of documents
    in which response i is strictly preferred to response j."""
    n = ranks.shape[1]
    out = []
    for i in range(n):
        for j in range(n):
            if i != j:
                out.append((i, j, ranks[:, i] < ranks[:, j]))
    any_pair = np.zeros(len(ranks), dtype=bool)
    for _, _, mask in out:
        any_pair |= mask
    if not any_pair.all():
        raise ValueError(
            f"{int((~any_pair).sum())} document(s) of {n} responses are all tied: no ranking to check"
        )
    return out


def rankings_correct(
    scores: np.ndarray,
    ranks: np.ndarray,
    tie_scores: np.ndarray | None = None,
    eps: float = TIE_EPS,
) -> np.ndarray:
    """Vectorised :func:`ranking_correct` for N documents of n responses each:
    a boolean (N,) array.

    n = 2: Def. 2.3 on ``scores`` for strict pairs, Def. C.1 on ``tie_scores``
    (default ``scores``) for human ties. n > 2: Def. A.8, every human-strictly-
    ordered pair must be ordered correctly. Any non-finite score makes the
    document wrong.

    Examples:
        >>> rankings_correct(np.array([[-1.0, -2.0], [-2.0, -1.0]]), np.array([[1, 2], [1, 2]]))
        array([ True, False])
    """
    return _rankings_correct(scores, ranks, None, tie_scores, eps)


def _rankings_correct(
    scores: np.ndarray,
    ranks: np.ndarray,
    shift: np.ndarray | None,
    tie_scores: np.ndarray | None,
    eps: float,
) -> np.ndarray:
    """The rule behind :func:`rankings_correct` and
    :func:`idealized_rankings_correct`, with the idealized reweighting
    ``shift`` (None for the observed rule):

    - n = 2: ``shift`` (broadcast (B, N)) is added to the preferred response's
      margin over the dispreferred one, which must be >= 0; ties use the tie
      rule on ``tie_scores``.
    - n > 2: ``shift`` (B, N, n) is added to the scores, one offset per
      response, and every human-strictly-ordered pair of the shifted scores
      must be ordered correctly (Def. 2.3, :func:`pairs_ranked_correctly`).
    """
    with np.errstate(invalid="ignore"):  # inf - inf: NaN margins of invalid documents
        scores, ranks = check_shapes(scores, ranks)
        valid = np.isfinite(scores).all(axis=1)
        if ranks.shape[1] == 2:
            return valid & _pairs_margin_ok(scores, ranks, shift, tie_scores, eps)
        return _orders_ok(scores if shift is None else scores + shift, ranks, valid)


def _pairs_margin_ok(scores, ranks, shift, tie_scores, eps):  # noqa: ANN001
    """n = 2: the (possibly shifted) margin of the preferred response is >= 0,
    or for a human tie the tie rule holds on ``tie_scores``."""
    tie = ranks[:, 0] == ranks[:, 1]
    first = ranks[:, 0] < ranks[:, 1]
    # margin of the preferred response over the dispreferred one
    margin = np.where(first, scores[:, 0] - scores[:, 1], scores[:, 1] - scores[:, 0])
    if shift is not None:
        margin = margin + shift
    strict_ok = margin >= 0  # == pairs_ranked_correctly for finite scores
    if tie.any():
        ts = scores if tie_scores is None else np.asarray(tie_scores, dtype=float)
        tie_ok = ties_ranked_correctly(ts[:, 0], ts[:, 1], eps)
        strict_ok = np.where(tie, tie_ok, strict_ok)
    return strict_ok


def _orders_ok(scores: np.ndarray, ranks: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """n > 2 (Def. A.8 on partial orders): ``scores`` (N, n) or (B, N, n);
    every human-strictly-ordered pair must satisfy Def. 2.3 and the document
    be ``valid`` (N,)."""
    ok = np.broadcast_to(valid, scores.shape[:-1]).copy()
    for i, j, mask in _ordered_column_pairs(ranks):
        ok &= ~mask | pairs_ranked_correctly(scores[..., i], scores[..., j])
    return ok


def rank_levels(ranks: np.ndarray) -> np.ndarray:
    """Dense rank level of each response, (N, n) ints: 1 for the best
    responses, k for the k-th best distinct human rank; human-tied responses
    share a level (ranks [1, 2, 2, 4] give levels [1, 2, 2, 3]).

    Examples:
        >>> rank_levels(np.array([[1, 2, 2, 4]]))
        array([[1, 2, 2, 3]])
    """
    ranks = np.asarray(ranks)
    ordered = np.sort(ranks, axis=1)
    first_of_value = np.ones(ordered.shape, dtype=bool)
    first_of_value[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    # distinct rank values strictly better than each response's own
    better = (ordered[:, None, :] < ranks[:, :, None]) & first_of_value[:, None, :]
    return better.sum(axis=2) + 1


def level_rewards(ranks: np.ndarray, alpha_eps: float = ALPHA_EPS) -> np.ndarray:
    """Bradley-Terry rewards (N, n) of documents of n > 2 responses without
    rater proportions: r = -(k - 1) L for a response at dense rank level k
    (:func:`rank_levels`), L = log((1 - alpha_eps) / alpha_eps). Adjacent
    levels are a unanimous vote (alpha = 1 - alpha_eps) apart; tied responses
    share a reward. Our generalisation: the paper defines no R* for n > 2."""
    big = math.log1p(-alpha_eps) - math.log(alpha_eps)
    return -(rank_levels(ranks) - 1) * big


def response1_log_odds(
    alpha: np.ndarray,
    ranks: np.ndarray,
    alpha_eps: float = ALPHA_EPS,
) -> np.ndarray:
    """log(alpha / (1 - alpha)) of response 1 over response 2 for N pairs
    (the Bradley-Terry reward gap r(y_1) - r(y_2), Cor. 3.3).

    ``alpha`` (N,) is the share of raters preferring response 1, NaN where the
    data has no rater proportions; then the preferred response (from
    ``ranks``) is taken to have alpha = 1. alpha is clipped to
    [alpha_eps, 1 - alpha_eps] symmetrically, so a unanimous vote for
    response 2 gives exactly minus the log-odds of a unanimous vote for
    response 1. Human ties (equal ranks) get 0 whatever alpha says.

    Examples:
        >>> response1_log_odds(np.array([0.75, np.nan, 0.5]), np.array([[1, 2], [2, 1], [1, 1]])).round(4)
        array([ 1.0986, -6.9068,  0.    ])
    """
    alpha = np.asarray(alpha, dtype=float)
    ranks = np.asarray(ranks)
    first = ranks[:, 0] < ranks[:, 1]
    tie = ranks[:, 0] == ranks[:, 1]
    alpha = np.where(np.isnan(alpha), np.where(first, 1.0, 0.0), alpha)
    # symmetric clipping: work with the minority share m = min(alpha, 1 - alpha)
    minority = np.clip(np.minimum(alpha, 1.0 - alpha), alpha_eps, 0.5)
    magnitude = np.log1p(-minority) - np.log(minority)  # log((1 - m) / m) >= 0
    out = np.where(alpha > 0.5, magnitude, np.where(alpha < 0.5, -magnitude, 0.0))
    return np.where(tie, 0.0, out)


def idealized_rankings_correct(
    scores: np.ndarray,
    ranks: np.ndarray,
    alpha: np.ndarray | None,
    betas: float | Sequence[float] | np.ndarray,
    tie_scores: np.ndarray | None = None,
    alpha_eps: float = ALPHA_EPS,
    eps: float = TIE_EPS,
) -> np.ndarray:
    """Whether the idealized model pi* (Sec. 3) ranks each document correctly:
    a boolean (B, N) array, one row per beta.

    pi*(y|x) is proportional to pRef(y|x) exp(r(x, y) / beta) with the
    Bradley-Terry reward of the rater proportions, so for a pair (Cor. 3.3,
    App. C.4) it ranks y_w above y_l when

        log pRef(y_w|x) - log pRef(y_l|x) + (1/beta) log(alpha / (1 - alpha)) >= 0,

    alpha = share of raters preferring y_w (see :func:`response1_log_odds` for
    eps clipping and missing alpha). Computed as a sum of logs, never as a
    probability ratio, so beta = 0.01 with log-ratios of thousands is exact.
    ``>=`` (not ``>``) is Def. 2.3 as used by :func:`ranking_correct` (Eq. 3
    itself writes the ratio ``> 1``; our choice, so that the idealized R* at
    beta = infinity is the reference's observed R).

    Human ties (alpha = 0.5): log(alpha / (1 - alpha)) = 0, pi* orders the two
    responses exactly as pRef does, and the tie rule (Def. C.1,
    :func:`ties_ranked_correctly`) is applied to the reference's tie scores
    ``tie_scores`` (default ``scores``): the idealized tie outcome is the
    reference's observed one, for every beta.

    n > 2 (Def. A.8; our generalisation, the paper defines no R* for n > 2):
    one Bradley-Terry reward r_i per response (:func:`level_rewards`), one
    policy log pi*(y_i|x) = log pRef(y_i|x) + r_i / beta + const, correct when
    it orders every human-strictly-ordered pair correctly (Def. 2.3, >=);
    tied responses share a reward and impose no order. ``alpha`` is ignored.

    ``scores`` are log-probabilities: summed for R*, per token for R~* (the
    reward term is added to them as it is, not divided by the length).

    Examples:
        >>> idealized_rankings_correct(np.array([[-2.0, -1.0]]), np.array([[1, 2]]), np.array([0.75]), [0.1, 10.0])
        array([[ True],
               [False]])
    """
    scores, ranks = check_shapes(scores, ranks)
    betas = check_betas(betas)
    inv_beta = (1.0 / betas)[:, None]
    if ranks.shape[1] == 2:
        if alpha is None:
            alpha = np.full(len(ranks), np.nan)
        lo1 = response1_log_odds(alpha, ranks, alpha_eps)
        # reweighting of the preferred over the dispreferred response
        lo_w = np.where(ranks[:, 0] <= ranks[:, 1], lo1, -lo1)
        shift = inv_beta * lo_w[None, :]
    else:
        # one offset r_i / beta per response: (B, N, n)
        shift = inv_beta[:, :, None] * level_rewards(ranks, alpha_eps)[None, :, :]
    return _rankings_correct(scores, ranks, shift, tie_scores, eps)


def reference_log_ratio(loglik_preferred: np.ndarray, loglik_dispreferred: np.ndarray) -> np.ndarray:
    """Thm. 4.1's c = log pRef(y_l|x) - log pRef(y_w|x): positive when the
    reference model ranks the pair wrongly."""
    return np.asarray(loglik_dispreferred, dtype=float) - np.asarray(loglik_preferred, dtype=float)


def dpo_loss_threshold(c: np.ndarray, beta: float) -> np.ndarray:
    """Thm. 4.1: a policy ranks the pair correctly exactly when its DPO loss on
    it is at most -log sigmoid(beta * c) = log(1 + exp(-beta * c)) (computed as
    ``logaddexp``, so it never overflows). Large c: a threshold near 0, the
    loss must be driven almost to zero (hard to learn).

    Examples:
        >>> dpo_loss_threshold(np.array([0.0, 5.0]), beta=1.0).round(4)  # c = 0: log 2; c = 5: hard
        array([0.6931, 0.0067])
    """
    with np.errstate(under="ignore"):  # exp(-huge) -> 0 is the right answer
        return np.logaddexp(0.0, -float(beta) * np.asarray(c, dtype=float))


def per_units(loglik: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Vectorised :func:`per_unit`: loglik / units, NaN where units is unknown
    (NaN), 0 or negative, or the log-likelihood is not finite."""
    loglik = np.asarray(loglik, dtype=float)
    units = np.asarray(units, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = np.isfinite(loglik) & (units > 0)
        return np.where(ok, loglik / np.where(ok, units, 1.0), np.nan)


# =============================================================================
# Which score each metric compares (Def. 2.3, Eq. 15, Def. C.1), and the flip
# categories between two models (Sec. 4, Fig. 2). Used by the lm-eval metrics,
# the analyses and the training tracker alike.
# =============================================================================

#: The per-document metrics of the core tasks and the unit each one divides the
#: summed log-probability by: None for R (Def. 2.3), tokens for R~ (Eq. 15),
#: UTF-8 bytes for the tokenizer-free variant.
METRIC_UNITS = {"rank_acc": None, "rank_acc_norm": "n_tokens", "rank_acc_bytes": "n_bytes"}
#: The paper's two metrics, R and R~: the leaderboard's columns unless asked otherwise.
DEFAULT_METRICS = ("rank_acc", "rank_acc_norm")


def metric_scores(loglik: np.ndarray, units: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(scores, tie_scores) a metric compares, from summed log-probabilities.

    ``units`` None (R, Def. 2.3): both are the summed log-probability. Else
    (R~, Eq. 15, and the per-byte variant): scores are log-probabilities per
    unit (:func:`per_units`), and human ties (Def. C.1) are compared on the
    per-unit geometric-mean probability exp(score). So eps is a gap of summed
    log-probabilities for R (Def. C.1's text writes probabilities; the
    released code, like this, compares log-probabilities) and an absolute gap
    of geometric-mean probabilities for R~ (docs/metrics.md, "What eps
    means"). NaN where a unit count is
    unknown or a log-probability is not finite.

    Examples:
        >>> scores, tie_scores = metric_scores(np.array([[-4.0, -3.0]]), np.array([[4, 2]]))  # R~: per token
        >>> scores, tie_scores.round(4)
        (array([[-1. , -1.5]]), array([[0.3679, 0.2231]]))
    """
    loglik = np.asarray(loglik, dtype=float)
    if units is None:
        return loglik, loglik
    per = per_units(loglik, units)
    with np.errstate(over="ignore"):
        return per, np.exp(per)


#: Flip categories of a datapoint from a reference model to a policy (Fig. 2),
#: in the order of the codes :func:`flip_categories` returns.
CATEGORIES = ("correct->correct", "correct->incorrect", "incorrect->correct", "incorrect->incorrect")


def flip_categories(reference_correct: np.ndarray, policy_correct: np.ndarray) -> np.ndarray:
    """Index into :data:`CATEGORIES` per datapoint, from whether the reference
    and the policy rank it correctly.

    Examples:
        >>> [CATEGORIES[k] for k in flip_categories([True, False], [False, True])]
        ['correct->incorrect', 'incorrect->correct']
    """
    before = np.asarray(reference_correct, dtype=bool)
    after = np.asarray(policy_correct, dtype=bool)
    return np.where(before, np.where(after, 0, 1), np.where(after, 2, 3))
