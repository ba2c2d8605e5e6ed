"""The prompt-once layout: one prompt and its n continuations in one sequence.

Ranking accuracy scores n responses of a document against one prompt. Run as
n separate sequences, the prompt is computed n times. Packed, it is computed
once::

    tokens     prompt | cont_1[:-1] | cont_2[:-1] | ...
    positions  0..P-1 | P..P+L1-2   | P..P+L2-2   | ...     (restart after the prompt)

with an attention mask under which the prompt is causal, and each
continuation attends to the whole prompt and to its own earlier tokens only.
The next-token log-probabilities at a continuation's rows are then exactly
those of the sequence prompt + continuation, so the summed log-probability of
each continuation is unchanged (up to floating-point rounding, which
:func:`agrees` bounds).

Used by the ``hf-prefix`` lm-eval backend (:mod:`lm_eval_rankacc.models.prefix`)
and by training (:mod:`lm_eval_rankacc.training.scoring`). Pure numpy: the
callers turn the arrays into tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Agreement of packed and plain scores of one log-likelihood, (absolute,
#: relative) by the weights' dtype: float32 sums over thousands of tokens carry
#: ~1e-7 relative rounding (the stock backend moves that much between batch
#: sizes); bf16 / fp16 carry ~1e-2. A model that ignores the packed mask or the
#: position ids is off by whole nats, far beyond any of these. One table for
#: the ``hf-prefix`` self-check and training's layout check.
TOLERANCE = {"float64": (1e-8, 1e-12), "float32": (1e-4, 1e-6)}
#: The tolerance of every other dtype (half precision).
HALF_TOLERANCE = (5e-2, 1e-2)


class PackedSequence:
    """One prompt and its continuations in one sequence (see the module docstring).

    An empty continuation takes no row and no token; a continuation of one
    token takes no row of its own either (the prompt's last row predicts it).
    """

    def __init__(self, context: Sequence[int], continuations: Sequence[Sequence[int]]):
        self.context = list(context)
        self.continuations = [list(c) for c in continuations]
        n_context = len(self.context)
        tokens = list(self.context)
        positions = list(range(n_context))
        segments = []  # (first row, rows) of each continuation's input tokens
        for cont in self.continuations:
            length = max(len(cont) - 1, 0)
            segments.append((len(tokens), length))
            tokens += cont[:length]
            positions += range(n_context, n_context + length)
        self.tokens, self.positions, self.segments = tokens, positions, segments

    def __len__(self) -> int:
        return len(self.tokens)

    def allowed(self, width: int | None = None) -> np.ndarray:
        """(width, width) bool: row i may attend to column j. Rows past the
        sequence (padding up to ``width``) attend to themselves only, so they
        stay finite; they are never read."""
        n, n_context = len(self.tokens), len(self.context)
        width = n if width is None else width
        allow = np.zeros((width, width), dtype=bool)
        allow[:n_context, :n_context] = np.tri(n_context, dtype=bool)
        for start, length in self.segments:
            end = start + length
            allow[start:end, :n_context] = True
            allow[start:end, start:end] = np.tri(length, dtype=bool)
        pad = np.arange(n, width)
        allow[pad, pad] = True
        return allow

    def logit_rows(self, i: int) -> list[int]:
        """Rows whose next-token logits predict continuation ``i``'s tokens, in order."""
        if not self.continuations[i]:
            return []
        start, length = self.segments[i]
        return [len(self.context) - 1, *range(start, start + length)]

    def scored_rows(self) -> tuple[int, int]:
        """(first, end) of the rows that predict a continuation token: the
        prompt's last row through the last continuation row; (0, 0) when every
        continuation is empty."""
        if not any(self.continuations):
            return 0, 0
        return len(self.context) - 1, len(self.tokens)


def tolerance(dtype: str) -> tuple[float, float]:
    """(absolute, relative) tolerance of packed against plain scores for weights of ``dtype``
    (a name such as "float32" or "torch.bfloat16")."""
    return TOLERANCE.get(str(dtype).removeprefix("torch."), HALF_TOLERANCE)


def agrees(packed: Sequence[float], plain: Sequence[float], dtype: str) -> tuple[bool, float]:
    """(every packed score within :func:`tolerance` of its plain score and finite,
    the largest absolute difference)."""
    atol, rtol = tolerance(dtype)
    got = np.asarray(packed, dtype=float)
    expected = np.asarray(plain, dtype=float)
    if not len(got):
        return True, 0.0
    diff = np.abs(got - expected)
    ok = bool(np.isfinite(got).all() and (diff <= atol + rtol * np.abs(expected)).all())
    return ok, float(np.nanmax(diff)) if np.isfinite(diff).any() else float("inf")
