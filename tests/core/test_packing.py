"""The prompt-once layout (packing.py) that hf-prefix and training share, and its
one tolerance table."""

from __future__ import annotations

import math

import numpy as np

from lm_eval_rankacc.core import packing
from lm_eval_rankacc.core.packing import PackedSequence


def test_layout_with_empty_and_one_token_continuations():
    p = PackedSequence([1, 2], [[3, 4, 5], [], [6]])
    assert p.tokens == [1, 2, 3, 4] and p.positions == [0, 1, 2, 3]
    assert p.logit_rows(0) == [1, 2, 3] and p.logit_rows(1) == [] and p.logit_rows(2) == [1]
    assert p.scored_rows() == (1, 4)
    assert PackedSequence([1, 2], [[], []]).scored_rows() == (0, 0)


def test_mask_equals_an_independent_construction():
    """Row i may attend to j exactly when, in the plain sequence prompt + cont_k
    that row i belongs to, j's token comes at or before i's (causal)."""
    context, conts = [7, 8, 9], [[1, 2, 3], [4, 5], [6]]
    p = PackedSequence(context, conts)
    owner = [None] * len(context)  # which continuation a row belongs to (None: the prompt)
    for k, (start, length) in enumerate(p.segments):
        owner += [k] * length
    width = len(p) + 2
    allow = p.allowed(width)
    for i in range(width):
        for j in range(width):
            if i >= len(p):
                want = i == j  # padding attends to itself only
            elif j >= len(p):
                want = False
            else:
                visible = owner[j] is None or owner[j] == owner[i]
                want = visible and p.positions[j] <= p.positions[i]
            assert allow[i, j] == want, (i, j)


def test_one_tolerance_table():
    assert packing.tolerance("float32") == (1e-4, 1e-6)
    assert packing.tolerance("torch.float32") == (1e-4, 1e-6)
    assert packing.tolerance("torch.bfloat16") == packing.HALF_TOLERANCE
    ok, worst = packing.agrees([-1000.0], [-1000.0 + 5e-4], "float32")  # within 1e-4 + 1e-6 * 1000
    assert ok and math.isclose(worst, 5e-4, rel_tol=1e-6)
    assert not packing.agrees([-1000.0], [-1000.0 + 2e-3], "float32")[0]
    ok, worst = packing.agrees([-10.0, -20.0], [-10.0, -21.0], "float32")  # a mask ignored: whole nats
    assert not ok and math.isclose(worst, 1.0)
    assert not packing.agrees([np.nan], [-3.0], "bfloat16")[0]


# ------------------------------------------------------------ token-budget batches
def check_plan(lengths, budget):
    """The rules of plan_batches, checked from the lengths alone."""
    plan = packing.plan_batches(lengths, budget)
    placed = sorted(i for batch in plan for row in batch for i in row)
    assert placed == list(range(len(lengths)))  # every sequence exactly once
    widths = []
    for batch in plan:
        width = max(lengths[i] for row in batch for i in row)
        widths.append(width)
        for row in batch:
            assert sum(lengths[i] for i in row) <= width  # a row never wider than the batch's longest sequence
        if len(batch) * width > budget:  # over the budget: only a single sequence longer than it, alone
            assert len(batch) == 1 and len(batch[0]) == 1 and width > budget
    assert widths == sorted(widths, reverse=True)  # longest first
    return plan


def test_plan_batches_on_random_lengths():
    rng = np.random.default_rng(0)
    for _ in range(200):
        lengths = rng.integers(1, 300, size=rng.integers(1, 60)).tolist()
        check_plan(lengths, int(rng.integers(1, 2000)))


def test_plan_batches_fills_rows_with_short_sequences():
    # budget 20: a batch of width 10 (2 rows: 10, then 7 + 3), then one of width 6
    # (3 rows: 6, then 2 + 1 + 1, first fit decreasing)
    plan = check_plan([3, 10, 1, 7, 6, 2, 1], budget=20)
    assert plan == [[[1], [3, 0]], [[4], [5, 2, 6]]]
    assert check_plan([50, 5, 5], budget=20) == [[[0]], [[1], [2]]]  # longer than the budget: alone


def test_layout_row_keeps_sequences_apart():
    a, b = PackedSequence([1, 2], [[3, 4], [5, 6, 7]]), PackedSequence([8], [[9, 10]])
    tokens, positions, allow, offsets = packing.layout_row([a, b], 9)
    assert offsets == [0, len(a)] and len(a) + len(b) == 7
    assert tokens.tolist() == a.tokens + b.tokens + [0, 0]
    assert positions.tolist() == a.positions + b.positions + [0, 0]
    for i in range(9):
        for j in range(9):
            if i < len(a) and j < len(a):
                want = a.allowed()[i, j]
            elif len(a) <= i < 7 and len(a) <= j < 7:
                want = b.allowed()[i - len(a), j - len(a)]
            else:
                want = i == j and i >= 7  # never across sequences; padding sees itself only
            assert allow[i, j] == want, (i, j)
