"""The rules of the authors' released code, side by side with :mod:`theory`.

Chen et al. released the code behind the paper's tables (GitHub
``angie-chen55/pref-learning-ranking-acc``, "the released code"). Several of
its rules differ from the paper's written definitions, which :mod:`theory`
implements. This module restates each of its rules as a small pure function,
written from a reading of that code (never copied from it); each docstring
names the file and function it follows. The analyses select these rules with
``convention="released"`` (``--convention released``); the differences and
their measured effect are in ``docs/conventions.md``.

What cannot be reproduced: ``perplexity_lib.py`` (``compute_ppl``) pads each
batch on the left (``chat_client.py`` sets ``padding_side = "left"``) and
builds its prompt mask from the prompt tokenized alone and padded to the
batch's length, so the positions it scores are the first n tokens of
prompt + response (mostly prompt tokens) rather than the n response tokens.
Its published numbers carry that error. These functions apply its *rules* to
correct log-likelihoods (lm-eval's logged ``scores``), so they reproduce its
rules, not its published numbers.

Arrays hold N documents of n responses: ``loglik`` (N, n) summed
log-probabilities, ``n_tokens`` (N, n) response token counts, ``ranks``
(N, n) ints (1 = best, equal = human tie), ``alpha`` (N,) the share of raters
preferring response 1 (NaN where the data has none). Outcomes are float
arrays: 1.0 correct, 0.0 wrong, NaN left out of the mean (the released code
drops such documents, :func:`accuracy`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lm_eval_rankacc.core.theory import check_betas

#: ``calibration_metrics_lib.py``: ``CalibrationMetrics(tie_threshold=0.01)``,
#: the margin of the Alpaca Farm ties path (:func:`pair_ranking_with_ties`).
TIE_THRESHOLD = 0.01
#: ``rlhf_minimizer_client.py`` (``eps``; ``calculate_upper_bound_rlhf.py``
#: passes 1e-3): a2 = 0 is replaced by it in the ratio a1 / a2.
RATIO_EPS = 1e-3
#: ``rlhf_minimizer_client.py`` (``max_val``): what an overflowing ratio ** (1/beta) becomes.
MAX_VAL = 1e300
#: ``rlhf_minimizer_client.py`` (``simulate_proportion``): the share of raters
#: assumed to prefer the preferred response when the data gives none.
SIMULATE_PROPORTION = 0.75
#: ``rlhf_minimizer_client.py`` (``_get_ranking_from_ratio``): a ratio within
#: this of 1 is a tie.
BAND = 0.05
#: The tasks on which the library takes its Alpaca Farm ties path
#: (``calibration_metrics_lib.py``: dataset ``tatsu-lab/alpaca_eval``, config
#: ``alpaca_farm_human_crossannotations``, ``include_ties=True``). The paper's
#: own script (``calculate_calibration_metrics.py``) passes
#: ``include_ties=False`` everywhere.
TIES_PATH_TASKS = frozenset({"rankacc_alpaca_farm_val_ties"})


def perplexities(loglik: np.ndarray, n_tokens: np.ndarray) -> np.ndarray:
    """ppl = exp(-loglik / n): the per-response perplexity ``perplexity_lib.py``
    (``compute_ppl``) computes as exp(masked loss sum / number of scored
    tokens). Overflows to inf like numpy's exp; NaN where n is unknown.

    Examples:
        >>> perplexities(np.array([[-2.0, -6.0]]), np.array([[2, 3]]))  # exp(1), exp(2)
        array([[2.71828183, 7.3890561 ]])
    """
    loglik = np.asarray(loglik, dtype=float)
    n_tokens = np.asarray(n_tokens, dtype=float)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return np.exp(-loglik / n_tokens)


def scores(loglik: np.ndarray, n_tokens: np.ndarray, normalized: bool) -> np.ndarray:
    """The score each response is ranked by (``calibration_metrics_lib.py``,
    ``CalibrationMetrics.rank``): normalized, 1 / ppl (the geometric-mean
    token probability); unnormalized, -n log(ppl) (the summed log-probability,
    rebuilt from ppl). A response with loglik -inf gets 0 / -inf (ranked
    normally); a NaN log-likelihood gives NaN. Where the token count is
    unknown (NaN) the normalized score is NaN and the unnormalized one is the
    summed log-likelihood itself (what -n log(ppl) rebuilds, up to rounding).

    Examples:
        >>> scores(np.array([[-2.0, -6.0]]), np.array([[2, 3]]), normalized=True)  # 1 / perplexity
        array([[0.36787944, 0.13533528]])
        >>> scores(np.array([[-2.0, -6.0]]), np.array([[2, 3]]), normalized=False)
        array([[-2., -6.]])
    """
    ppl = perplexities(loglik, n_tokens)
    n = np.asarray(n_tokens, dtype=float)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if normalized:
            return 1.0 / ppl
        return np.where(np.isnan(n), np.asarray(loglik, dtype=float), -n * np.log(ppl))


def competition_ranks(values: np.ndarray) -> np.ndarray:
    """Rank 1 = largest value, equal values share the best rank of their group
    (competition ranking, "1 1 3"): 1 + the number of larger values. This is
    ``n + 1 - r`` for ``r`` of ``scipy.stats.rankdata(values, method="max")``,
    the model rankings of ``calibration_metrics_lib.py`` (``rank``) and the
    human rankings of ``dataset_lib.py`` (from votes and scores).

    Examples:
        >>> competition_ranks(np.array([[0.5, 0.9, 0.9]]))
        array([[3, 1, 1]])
    """
    values = np.asarray(values, dtype=float)
    return 1 + (values[..., None, :] > values[..., :, None]).sum(axis=-1)


def human_ranking(ranks: np.ndarray) -> np.ndarray:
    """The human ranking list the released code compares with: competition
    ranks of the documents' ranks (1 = best), e.g. dense [1, 1, 2] becomes
    [1, 1, 3].

    Examples:
        >>> human_ranking(np.array([[1, 1, 3]])), human_ranking(np.array([[1, 2, 2]]))
        (array([[1, 1, 3]]), array([[1, 2, 2]]))
    """
    return competition_ranks(-np.asarray(ranks, dtype=float))


def pair_ranking_with_ties(pair_scores: np.ndarray, threshold: float = TIE_THRESHOLD) -> np.ndarray:
    """The Alpaca Farm ties path (``calibration_metrics_lib.py``,
    ``get_ranking_from_scores_pair``) for (N, 2) scores: [1, 2] when
    s_1 - s_2 > threshold, [2, 1] when s_2 - s_1 > threshold, else the tie
    [1, 1]: a strict ranking needs a margin above 0.01, a gap of at most 0.01
    (inclusive) is a tie.

    Examples:
        >>> pair_ranking_with_ties(np.array([[-1.0, -1.005], [-1.0, -2.0]]))  # within 0.01: a tie
        array([[1, 1],
               [1, 2]])
    """
    s = np.asarray(pair_scores, dtype=float)
    with np.errstate(invalid="ignore"):  # inf - inf: neither margin holds, a tie
        first = s[:, 0] - s[:, 1] > threshold
        second = s[:, 1] - s[:, 0] > threshold
    return np.stack([np.where(second, 2, 1), np.where(first, 2, 1)], axis=1)


def _outcome(equal: np.ndarray, kept: np.ndarray) -> np.ndarray:
    return np.where(kept, equal.astype(float), np.nan)


def rankings_correct(doc_scores: np.ndarray, ranks: np.ndarray, ties_path: bool = False,
                     threshold: float = TIE_THRESHOLD) -> np.ndarray:
    """Per document (``calibration_metrics_lib.py``, ``rank``, with
    ``distance_lib.py``'s ``Accuracy``): 1.0 when the model's ranking list
    equals the human one exactly, else 0.0; NaN (left out) when any score is
    NaN. Infinite scores are ranked like any other.

    The model's list is :func:`competition_ranks` of ``doc_scores``
    (:func:`scores`), or with ``ties_path`` (n = 2 only) the
    :func:`pair_ranking_with_ties`. Consequences: equal scores of a strictly
    ordered pair are wrong; a document with a human tie among n > 2 responses
    is correct only if the model ties those responses exactly; a document
    whose responses are all tied is wrong unless every score is equal.

    Examples:
        >>> rankings_correct(np.array([[-1.0, -2.0], [-1.0, -1.0]]), np.array([[1, 2], [1, 2]]))  # equal scores: wrong
        array([1., 0.])
    """
    doc_scores = np.asarray(doc_scores, dtype=float)
    ranks = np.asarray(ranks)
    if doc_scores.ndim != 2 or doc_scores.shape != ranks.shape or doc_scores.shape[1] < 2:
        raise ValueError(f"need (N, n) scores and ranks with n >= 2, got shapes {doc_scores.shape} and {ranks.shape}")
    if ties_path and doc_scores.shape[1] != 2:
        raise ValueError(f"the ties path ranks pairs only, got {doc_scores.shape[1]} responses")
    model = pair_ranking_with_ties(doc_scores, threshold) if ties_path else competition_ranks(doc_scores)
    equal = (model == human_ranking(ranks)).all(axis=1)
    return _outcome(equal, ~np.isnan(doc_scores).any(axis=1))


def accuracy(outcomes: np.ndarray) -> float | None:
    """Mean over the documents kept (``np.nanmean`` in ``distance_lib.py``'s
    ``Accuracy``); None when none is kept.

    Examples:
        >>> accuracy(np.array([1.0, 0.0, np.nan]))  # the NaN document is left out
        0.5
    """
    outcomes = np.asarray(outcomes, dtype=float)
    kept = outcomes[~np.isnan(outcomes)]
    return float(kept.mean()) if kept.size else None


# =============================================================================
# The idealized rule of calculate_upper_bound_rlhf.py via rlhf_minimizer_client.py
# (RLHFMinimizerClient.compute_ranks), for pairs.
# =============================================================================


def vote_shares(alpha: np.ndarray, ranks: np.ndarray,
                simulate: float = SIMULATE_PROPORTION) -> tuple[np.ndarray, np.ndarray]:
    """(a1, a2): the shares of raters preferring response 1 and response 2
    (``dataset_lib.py``: votes for 1 and for 2 over all votes, so a2 = 1 - a1).
    Without rater proportions (alpha NaN), ``rlhf_minimizer_client.py``
    (``_maybe_change_simulate_proportion``) assumes ``simulate`` = 0.75 for the
    preferred response and 0.25 for the other (0.25 each for a human tie).
    The script decides that on the dataset's first row; here it is per pair,
    the same on every dataset the paper uses (all pairs carry votes, or none).

    Examples:
        >>> vote_shares(np.array([0.75, np.nan]), np.array([[1, 2], [2, 1]]))
        (array([0.75, 0.25]), array([0.25, 0.75]))
    """
    alpha = np.asarray(alpha, dtype=float)
    ranks = np.asarray(ranks)
    a1_sim = np.where(ranks[:, 0] < ranks[:, 1], simulate, 1.0 - simulate)
    a2_sim = np.where(ranks[:, 1] < ranks[:, 0], simulate, 1.0 - simulate)
    missing = np.isnan(alpha)
    return np.where(missing, a1_sim, alpha), np.where(missing, a2_sim, 1.0 - alpha)


def expected_ratio(a1: np.ndarray, a2: np.ndarray, eps: float = RATIO_EPS) -> np.ndarray:
    """a1 / a2, with a1 / eps when a2 = 0 (``rlhf_minimizer_client.py``,
    ``_compute_likelihood_ratios_helper``); a1 = 0 gives 0.

    Examples:
        >>> expected_ratio(np.array([0.75, 1.0]), np.array([0.25, 0.0]))  # a2 = 0: a1 / 0.001
        array([   3., 1000.])
    """
    a1 = np.asarray(a1, dtype=float)
    a2 = np.asarray(a2, dtype=float)
    return a1 / np.where(a2 > 0.0, a2, eps)


def tempered_ratio(ratio: np.ndarray, beta: float, max_val: float = MAX_VAL) -> np.ndarray:
    """ratio ** (1 / beta); a result too large for a float becomes ``max_val``
    (1e300), as the script's ``OverflowError`` handler does.

    Examples:
        >>> tempered_ratio(np.array([3.0, 1e10]), beta=0.01)  # 1e1000 is no float: 1e300
        array([5.15377521e+047, 1.00000000e+300])
    """
    ratio = np.asarray(ratio, dtype=float)
    with np.errstate(over="ignore"):
        out = ratio ** (1.0 / float(beta))
    return np.where(np.isinf(out) & np.isfinite(ratio), max_val, out)


def model_ratio(loglik: np.ndarray, n_tokens: np.ndarray, normalized: bool) -> np.ndarray:
    """The reference model's ratio for (N, 2) responses
    (``rlhf_minimizer_client.py``): normalized, ppl_2 / ppl_1 (the ratio of
    geometric-mean probabilities of response 1 over response 2);
    unnormalized, LL_1 / LL_2, the ratio of the summed log-likelihoods
    -n log(ppl). Both log-likelihoods are negative, so LL_1 / LL_2 > 1 when
    response 1 is *less* likely: the script's unnormalized rule rewards the
    less likely response (reproduced as it is)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if normalized:
            ppl = perplexities(loglik, n_tokens)
            return ppl[:, 1] / ppl[:, 0]
        ll = scores(loglik, n_tokens, normalized=False)
        return ll[:, 0] / ll[:, 1]


def ratio_ranking(ratio: np.ndarray, band: float = BAND) -> np.ndarray:
    """``rlhf_minimizer_client.py`` (``_get_ranking_from_ratio``): [1, 1] when
    |ratio - 1| < band, [1, 2] when ratio >= 1 + band, else [2, 1]; shape
    ratio.shape + (2,).

    Examples:
        >>> ratio_ranking(np.array([2.0, 1.02, 0.5]))  # within the 0.05 band of 1: a tie
        array([[1, 2],
               [1, 1],
               [2, 1]])
    """
    ratio = np.asarray(ratio, dtype=float)
    with np.errstate(invalid="ignore"):
        tie = np.abs(ratio - 1.0) < band
        first = ~tie & (ratio >= 1.0 + band)
    second = ~tie & ~first
    return np.stack([np.where(second, 2, 1), np.where(first, 2, 1)], axis=-1)


def idealized_rankings_correct(
    loglik: np.ndarray,
    n_tokens: np.ndarray,
    ranks: np.ndarray,
    alpha: np.ndarray | None,
    betas: float | Sequence[float] | np.ndarray,
    normalized: bool,
) -> np.ndarray:
    """The released upper bound (``calculate_upper_bound_rlhf.py`` calling
    ``rlhf_minimizer_client.py``'s ``compute_ranks``) for N pairs: a float
    (B, N) array, one row per beta.

    Expected ranking: :func:`ratio_ranking` of :func:`expected_ratio` of the
    :func:`vote_shares`. Posterior: :func:`tempered_ratio` times
    :func:`model_ratio`, through :func:`ratio_ranking`. 1.0 when the two
    rankings are equal, 0.0 when not, NaN (that pair left out for that beta)
    when the posterior is NaN or infinite.
    """
    loglik = np.asarray(loglik, dtype=float)
    ranks = np.asarray(ranks)
    if loglik.ndim != 2 or loglik.shape[1] != 2 or ranks.shape != loglik.shape:
        raise ValueError(f"the released idealized rule scores pairs: need (N, 2) arrays, got {loglik.shape}")
    betas = check_betas(betas)
    alpha = np.full(len(ranks), np.nan) if alpha is None else np.asarray(alpha, dtype=float)
    ratio = expected_ratio(*vote_shares(alpha, ranks))
    expected = ratio_ranking(ratio)
    reference = model_ratio(loglik, n_tokens, normalized)
    out = np.empty((len(betas), len(ranks)))
    for b, beta in enumerate(betas):
        with np.errstate(over="ignore", invalid="ignore"):
            posterior = tempered_ratio(ratio, beta) * reference
        out[b] = _outcome((ratio_ranking(posterior) == expected).all(axis=-1), np.isfinite(posterior))
    return out
