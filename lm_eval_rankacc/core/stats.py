"""Paired statistics of two models scored on the same documents: the
paired bootstrap (documents resampled jointly) and McNemar's exact test.
Pure functions, no I/O.

The bootstrap draws replicate r as ``rng.integers(0, N, size=N)`` from
``numpy.random.default_rng(seed)``, replicate after replicate; the
vectorised :func:`bootstrap_means` draws the same stream in blocks, so a
plain loop with the same seed gives the same replicates. Past
:data:`STREAM_CELLS` resampled cells (N x replicates) it draws instead, per
replicate, how many of the N draws fall on each group of identical documents
(one multinomial over the groups): the same bootstrap distribution exactly
(a replicate's means depend on those counts alone), in O(groups) per
replicate rather than O(N), but another random stream (docs/analyses.md).
"""

from __future__ import annotations

import math

import numpy as np

#: The default number of bootstrap replicates and confidence level.
N_BOOTSTRAP = 10_000
LEVEL = 0.95
#: The most bootstrap replicates an interval takes. The replicates of K rows
#: are held as a (replicates, K) float array, 8 MB per row at this bound; the
#: Monte Carlo error of a 95% percentile interval is already about a tenth of
#: a percentage point at :data:`N_BOOTSTRAP`, so more buys nothing.
MAX_BOOTSTRAP = 1_000_000
#: Resampled cells (replicates x documents) drawn at once.
_BLOCK_CELLS = 1 << 22
#: Beyond this many resampled cells (documents x replicates), replicates are
#: drawn per group of identical documents (:func:`_grouped_means`).
STREAM_CELLS = 1 << 27
#: Grouping pays while the groups are at most this share of the documents (a multinomial
#: category costs about 30 times a drawn document).
_MAX_GROUP_SHARE = 1 / 32
#: Rows of verdicts up to which the groups' codes (3^rows of them) are counted rather than sorted.
_COUNTED_DIGITS = 12
#: Documents whose verdict codes are computed at once (temporaries that stay in the CPU's caches).
_CODE_CHUNK = 1 << 15


def _verdict_codes(values: np.ndarray) -> np.ndarray | None:
    """Each document's (column's) verdicts 0, 1, NaN as one base-3 code (digits
    0, 1, 2; row j weighted 3^j, exact below 2**53), computed
    :data:`_CODE_CHUNK` documents at a time; None when a value is no verdict
    or there are more than 33 rows."""
    k, n = values.shape
    if k > 33:
        return None
    weights, codes = 3.0 ** np.arange(k), np.empty(n)
    for start in range(0, n, _CODE_CHUNK):
        part = values[:, start:start + _CODE_CHUNK]
        if part.dtype == bool:  # verdicts already, none unknown
            codes[start:start + _CODE_CHUNK] = weights @ part
            continue
        digits = np.where(np.isnan(part), 2.0, part)
        if not ((digits == 0.0) | (digits == 1.0) | (digits == 2.0)).all():
            return None
        codes[start:start + _CODE_CHUNK] = weights @ digits
    return codes


def _document_groups(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The distinct documents (columns) of ``values`` (K, N), NaN equal to
    NaN, as rows (P, 2K) of sums then counts (:func:`bootstrap_means`), and
    how many documents each stands for; None when there are more than
    :data:`_MAX_GROUP_SHARE` x N of them."""
    k, n = values.shape
    codes = _verdict_codes(values)
    if codes is not None and k <= _COUNTED_DIGITS:  # few codes: counted, each group read back from its code
        counts = np.bincount(codes.astype(np.int64), minlength=1)
        present = np.flatnonzero(counts)
        sizes, digits = counts[present], (present[None, :] // 3 ** np.arange(k)[:, None]) % 3
        held = digits != 2
        group_values = np.where(held, digits, 0).astype(float)
    elif codes is not None:
        _, first, sizes = np.unique(codes, return_index=True, return_counts=True)
        chosen = values[:, first].astype(float)
        held = ~np.isnan(chosen)
        group_values = np.where(held, chosen, 0.0)
    else:
        values = values.astype(float, copy=False)
        kept = ~np.isnan(values)
        data = np.concatenate([np.where(kept, values, 0.0), kept], axis=0)  # NaN: (0, not held), apart from 0
        columns, sizes = np.unique(data, axis=1, return_counts=True)
        return None if len(sizes) > _MAX_GROUP_SHARE * n else (columns.T, sizes)
    if len(sizes) > _MAX_GROUP_SHARE * n:
        return None
    return np.concatenate([group_values, held], axis=0).T, sizes


def _grouped_means(rows: np.ndarray, sizes: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, K) bootstrap means from the groups of identical documents
    (``rows`` (P, 2K): sums then counts; ``sizes``: documents per group): the
    draws of a replicate falling on each group are Multinomial(N, sizes / N)."""
    n, k = int(sizes.sum()), rows.shape[1] // 2
    counts = rng.multinomial(n, sizes / n, size=n_boot).astype(float)
    totals = counts @ rows
    with np.errstate(invalid="ignore", divide="ignore"):
        return totals[:, :k] / totals[:, k:]


def bootstrap_means(values: np.ndarray, n_boot: int = N_BOOTSTRAP, seed: int = 0) -> np.ndarray:
    """(n_boot, K): for each bootstrap replicate of the N documents (drawn
    with replacement, jointly for all K rows of ``values`` (K, N)), the mean
    of each row over the drawn documents. NaN entries are left out of their
    row's mean (NaN where a replicate draws none). Up to :data:`STREAM_CELLS`
    cells the replicates of the module's plain-loop stream, beyond it drawn
    per group of identical documents (:func:`_grouped_means`). Booleans are
    taken as 0 / 1 (and grouped without a float copy)."""
    values = np.atleast_2d(np.asarray(values))
    if values.dtype != bool:
        values = values.astype(float, copy=False)
    k, n = values.shape
    if n == 0 or n_boot < 1:
        raise ValueError(f"need documents and replicates, got N = {n}, n_boot = {n_boot}")
    rng = np.random.default_rng(seed)
    if n * n_boot > STREAM_CELLS:
        grouped = _document_groups(values)
        if grouped is not None:
            return _grouped_means(*grouped, n_boot, rng)
    values = values.astype(float, copy=False)
    kept = ~np.isnan(values)
    data = np.concatenate([np.where(kept, values, 0.0), kept], axis=0).T  # (N, 2K): sums, then counts
    out = np.empty((n_boot, k))
    step = max(1, _BLOCK_CELLS // n)
    for start in range(0, n_boot, step):
        rows = min(step, n_boot - start)
        drawn = rng.integers(0, n, size=(rows, n)) + n * np.arange(rows)[:, None]
        counts = np.bincount(drawn.ravel(), minlength=rows * n).reshape(rows, n).astype(float)
        totals = counts @ data
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + rows] = totals[:, :k] / totals[:, k:]
    return out


def interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float] | tuple[None, None]:
    """The percentile interval of bootstrap ``samples`` at ``level`` (NaN
    replicates left out); (None, None) when none is a number.

    Examples:
        >>> interval(np.array([0.1, 0.2, 0.3, 0.4, 0.5]))  # the central 95%
        (0.11000000000000001, 0.49)
    """
    samples = np.asarray(samples, dtype=float)
    samples = samples[~np.isnan(samples)]
    if not len(samples):
        return None, None
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(samples, [tail, 100.0 - tail])
    return float(low), float(high)


def paired_difference_interval(a: np.ndarray, b: np.ndarray, n_boot: int = N_BOOTSTRAP, seed: int = 0,
                               level: float = LEVEL) -> tuple[float, float] | tuple[None, None]:
    """Paired-bootstrap interval of mean(b) - mean(a) over the same documents.

    Examples:
        >>> paired_difference_interval(np.array([1.0, 1.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0, 0.0]), n_boot=1000)  # b - a
        (-1.0, 0.0)
    """
    means = bootstrap_means(np.vstack([np.asarray(a, dtype=float), np.asarray(b, dtype=float)]), n_boot, seed)
    return interval(means[:, 1] - means[:, 0], level)


#: Up to this many word operations (k x n) McNemar's tail is summed in exact integers; beyond, by
#: :func:`_binomial_half_pmf` and the terms' ratios in floating point (about 1e-13 relative).
EXACT_TAIL_WORK = 10**7
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _stirling_error(n: int) -> float:
    """log n! - log(sqrt(2 pi n) (n / e)^n): from ``lgamma`` up to 15, else
    Stirling's series to n^-9 (Loader 2000, "Fast and accurate computation of
    binomial probabilities")."""
    if n <= 15:
        return math.lgamma(n + 1.0) - (n + 0.5) * math.log(n) + n - _LOG_SQRT_2PI
    inv2 = 1.0 / (n * n)
    return (1 / 12 - (1 / 360 - (1 / 1260 - (1 / 1680 - inv2 / 1188) * inv2) * inv2) * inv2) / n


def _deviance(x: float, mean: float) -> float:
    """x log(x / mean) + mean - x, by its series near x = mean, where the plain form cancels (Loader 2000)."""
    if abs(x - mean) >= 0.1 * (x + mean):
        return x * math.log(x / mean) + mean - x
    v = (x - mean) / (x + mean)
    total, term, j = (x - mean) * v, 2.0 * x * v, 1
    while True:
        term *= v * v
        grown = total + term / (2 * j + 1)
        if grown == total:
            return total
        total, j = grown, j + 1


def _binomial_half_pmf(k: int, n: int) -> float:
    """P(X = k), X ~ Binomial(n, 1/2), 0 < k < n, by Loader's saddle-point form (relative error ~1e-15)."""
    log_pmf = (_stirling_error(n) - _stirling_error(k) - _stirling_error(n - k)
               - _deviance(k, n / 2) - _deviance(n - k, n / 2))
    return math.exp(log_pmf) * math.sqrt(n / (2.0 * math.pi * k * (n - k)))


def _float_tail(k: int, n: int) -> float:
    """P(X <= k), X ~ Binomial(n, 1/2), 0 < k <= n / 2: P(X = k) times the sum
    of the ratios P(X = i) / P(X = k) (P(X = i - 1) = P(X = i) i / (n - i + 1)),
    from i = k downward until the rest is below 1e-20 of the sum."""
    width = min(k, 64 + int(5 * math.sqrt(n)))  # the terms fall below e^-45 within ~4.7 sqrt(n) of the mode
    while True:
        i = np.arange(k, k - width, -1, dtype=float)
        ratios = np.cumprod(i / (n - i + 1.0))
        total = 1.0 + float(ratios.sum())
        if width == k or ratios[-1] < 1e-20 * total:
            return _binomial_half_pmf(k, n) * total
        width = min(k, 2 * width)


def mcnemar_exact_p(only_a: int, only_b: int) -> float:
    """McNemar's exact two-sided p-value from the discordant documents (``only_a``
    right for A only, ``only_b`` for B only): under no difference each is
    Binomial(only_a + only_b, 1/2), p = min(1, 2 P(X <= min(only_a, only_b)));
    1 without discordant documents. Exact integer arithmetic up to
    :data:`EXACT_TAIL_WORK`, beyond it :func:`_float_tail` (a million
    discordant documents: milliseconds rather than seconds).

    Examples:
        >>> mcnemar_exact_p(1, 6)  # 1 document only A ranks right, 6 only B: two-sided exact p
        0.125
    """
    n, k = only_a + only_b, min(only_a, only_b)
    if only_a < 0 or only_b < 0:
        raise ValueError(f"counts must be >= 0, got {only_a}, {only_b}")
    if n == 0:
        return 1.0
    if k > 0 and k * n > EXACT_TAIL_WORK:
        return min(1.0, 2.0 * _float_tail(k, n))
    term, tail = 1, 1  # C(n, 0)
    for i in range(k):
        term = term * (n - i) // (i + 1)
        tail += term
    return min(1.0, 2 * tail / 2**n)


def check_bootstrap(n_boot: int, level: float = LEVEL) -> None:
    """0 <= ``n_boot`` <= :data:`MAX_BOOTSTRAP` (0: no intervals) and 0 < level < 1, else ValueError.

    Examples:
        >>> check_bootstrap(-1)
        Traceback (most recent call last):
        ...
        ValueError: the number of bootstrap replicates must be an integer >= 0, got -1
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ValueError(f"the number of bootstrap replicates must be an integer >= 0, got {n_boot!r}")
    if n_boot > MAX_BOOTSTRAP:
        raise ValueError(f"the number of bootstrap replicates must be at most {MAX_BOOTSTRAP:,} "
                         f"(8 MB per interval row held at that bound), got {n_boot:,}")
    if not (isinstance(level, (int, float)) and 0.0 < level < 1.0 and math.isfinite(level)):
        raise ValueError(f"the confidence level must be in (0, 1), got {level!r}")
