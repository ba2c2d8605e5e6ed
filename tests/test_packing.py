"""The prompt-once layout (packing.py) that hf-prefix and training share, and its
one tolerance table."""

from __future__ import annotations

import math

import numpy as np

from lm_eval_rankacc import packing
from lm_eval_rankacc.packing import PackedSequence


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
