"""The bootstrap past ``stats.STREAM_CELLS``: replicates drawn per group of
identical documents (one multinomial) have the bootstrap distribution
itself, checked against the exact distribution enumerated over every
resample of a few documents, and against the plain-loop stream's interval."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from lm_eval_rankacc.core import stats


def _exact(values: np.ndarray) -> dict[tuple, float]:
    """The exact bootstrap distribution of the row means (NaN left out; NaN
    where a resample keeps none), by enumerating all N**N resamples."""
    n = values.shape[1]
    out: Counter = Counter()
    for draw in itertools.product(range(n), repeat=n):
        picked = values[:, list(draw)]
        means = []
        for row in picked:
            kept = row[~np.isnan(row)]
            means.append(round(float(kept.mean()), 9) if len(kept) else "nan")
        out[tuple(means)] += 1
    return {k: v / n**n for k, v in out.items()}


@pytest.mark.parametrize("values", [
    [[1.0, 1.0, 0.0, 1.0]],
    [[1.0, np.nan, 0.0, 1.0], [0.0, 1.0, 1.0, 1.0]],
    [[0.25, 0.25, 3.0, -1.0], [1.0, 1.0, 0.0, 0.0]],  # not 0/1: grouped by np.unique over rows
])
def test_grouped_draws_follow_the_exact_bootstrap_distribution(values, monkeypatch):
    values = np.array(values)
    monkeypatch.setattr(stats, "STREAM_CELLS", 0)  # always grouped
    monkeypatch.setattr(stats, "_MAX_GROUP_SHARE", 1.0)
    n_boot = 60_000
    means = stats.bootstrap_means(values, n_boot, seed=5)
    keys = [tuple("nan" if np.isnan(m) else round(float(m), 9) for m in row) for row in means]
    seen = Counter(keys)
    exact = _exact(values)
    assert set(seen) <= set(exact)
    for key, p in exact.items():
        sd = np.sqrt(p * (1 - p) / n_boot)
        assert abs(seen[key] / n_boot - p) < 5 * sd + 1e-12, (key, seen[key] / n_boot, p)


def test_grouped_interval_matches_the_stream_interval(monkeypatch):
    rng = np.random.default_rng(3)
    a = (rng.random(3000) < 0.6).astype(float)
    b = np.where(rng.random(3000) < 0.8, a, 1 - a)
    stream = stats.paired_difference_interval(a, b, 4000, seed=1)
    monkeypatch.setattr(stats, "STREAM_CELLS", 0)
    grouped = stats.paired_difference_interval(a, b, 4000, seed=1)
    assert grouped != stream  # another random stream...
    width = stream[1] - stream[0]
    assert abs(grouped[0] - stream[0]) < 0.1 * width and abs(grouped[1] - stream[1]) < 0.1 * width  # ...same law


def test_many_groups_keep_the_stream(monkeypatch):
    """Grouping pays only with few groups: continuous values keep the plain-loop stream."""
    values = np.random.default_rng(0).normal(size=(2, 50))
    expected = stats.bootstrap_means(values, 30, seed=2)
    monkeypatch.setattr(stats, "STREAM_CELLS", 0)
    np.testing.assert_array_equal(stats.bootstrap_means(values, 30, seed=2), expected)


@pytest.mark.parametrize("rows", [1, 2, 3, 12, 13])
def test_counted_groups_equal_the_sorted_groups(rows, monkeypatch):
    """Verdict rows (0, 1, NaN) grouped by counting their codes give the groups sorting gives, in the same order."""
    rng = np.random.default_rng(rows)
    values = rng.choice([0.0, 1.0, np.nan], size=(rows, 5000), p=[0.45, 0.45, 0.1])
    monkeypatch.setattr(stats, "_MAX_GROUP_SHARE", 1.0)
    counted = stats._document_groups(values)
    monkeypatch.setattr(stats, "_COUNTED_DIGITS", 0)
    sorted_ = stats._document_groups(values)
    np.testing.assert_array_equal(counted[0], sorted_[0])
    np.testing.assert_array_equal(counted[1], sorted_[1])
    assert counted[1].sum() == values.shape[1]


@pytest.mark.parametrize("cells", [0, 1 << 40])
def test_booleans_bootstrap_as_their_floats(cells, monkeypatch):
    """Boolean rows give the replicates of the same rows as 0.0 / 1.0, grouped or streamed."""
    monkeypatch.setattr(stats, "STREAM_CELLS", cells)
    rng = np.random.default_rng(5)
    values = rng.random((3, 400)) < 0.5
    values[2] = values[0]
    np.testing.assert_array_equal(stats.bootstrap_means(values, 300, 2),
                                  stats.bootstrap_means(values.astype(float), 300, 2))
