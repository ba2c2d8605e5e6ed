"""Rows of one batch (core/batch_rows.py): every sequence placed once, rows
within their capacity, and a plan never costlier than one sequence per row
or than all in one row, under the module's cost model computed here."""

from __future__ import annotations

import itertools
import random

import pytest

from lm_eval_rankacc.core import batch_rows


def _cost(lengths, rows, a):
    width = max(sum(lengths[i] for i in row) for row in rows)
    return len(rows) * width * (1.0 + a * width)


@pytest.mark.parametrize("seed", range(40))
def test_plans_place_every_sequence_once_and_cost_no_more_than_padding(seed):
    rng = random.Random(seed)
    lengths = [rng.randint(1, 500) for _ in range(rng.randint(1, 9))]
    for a in (None, 0.0, 3e-4, 5e-4, 1e-2):
        plan = batch_rows.plan_rows(lengths, a)
        assert sorted(i for row in plan for i in row) == list(range(len(lengths)))
        padded = len(lengths) * max(lengths) * (1 + (a or 0) * max(lengths))  # one per row
        one_row = sum(lengths) * (1 + (a or 0) * sum(lengths))
        if a is None:  # rows no wider than the longest: fewer padded tokens, no wider attention
            assert max(sum(lengths[i] for i in row) for row in plan) == max(lengths)
            assert len(plan) <= len(lengths)
        else:
            assert _cost(lengths, plan, a) <= min(padded, one_row) + 1e-9


def test_the_plan_is_the_cheapest_partition_on_small_batches():
    """Against every partition of 4 sequences into rows (brute force)."""
    def partitions(items):
        if not items:
            yield []
            return
        first, rest = items[0], items[1:]
        for part in partitions(rest):
            for k in range(len(part)):
                yield part[:k] + [[first] + part[k]] + part[k + 1:]
            yield [[first]] + part

    rng = random.Random(7)
    for _ in range(30):
        lengths = [rng.randint(20, 300) for _ in range(4)]
        for a in (0.0, 3e-4, 5e-4, 2e-3):
            best = min(_cost(lengths, p, a) for p in partitions(list(range(4))))
            assert _cost(lengths, batch_rows.plan_rows(lengths, a), a) <= best * 1.0001, (lengths, a)


def test_first_fit_rows_hold_their_capacity():
    for lengths in itertools.product([3, 5, 8], repeat=4):
        rows = batch_rows.first_fit(list(lengths), 10)
        assert all(sum(lengths[i] for i in row) <= 10 for row in rows)
        assert sorted(i for row in rows for i in row) == [0, 1, 2, 3]
