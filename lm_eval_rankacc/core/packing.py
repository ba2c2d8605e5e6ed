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

Several such sequences can share one row of a batch (:func:`layout_row`,
each attending to itself only), which :func:`plan_batches` uses to batch by
a token budget with short sequences in place of padding.

Used by the ``hf-prefix`` lm-eval backend (:mod:`lm_eval_rankacc.lmeval.models.prefix`)
and by training (:mod:`lm_eval_rankacc.training.scoring`). Pure numpy: the
callers turn the arrays into tensors.
"""

from __future__ import annotations

import bisect
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


def plan_batches(lengths: Sequence[int], budget: int) -> list[list[list[int]]]:
    """Batches of rows of sequences (indices into ``lengths``) for forward passes
    of at most ``budget`` tokens, padding included.

    Longest first, as lm-eval sorts requests: a batch is as wide as the longest
    sequence left (``width``) and has ``max(1, budget // width)`` rows. Each row
    opens with the longest sequence left and fills its room with the longest
    that fits (first fit decreasing), so short sequences take the place of
    padding. A batch holds ``rows * width <= budget`` tokens, except a sequence
    longer than ``budget``, which goes alone.
    """
    stacks: dict[int, list[int]] = {}
    for i in sorted(range(len(lengths)), key=lambda i: -i):  # each stack pops its lowest index first
        stacks.setdefault(int(lengths[i]), []).append(i)
    sizes = sorted(stacks)

    def take(limit: int) -> int | None:
        k = bisect.bisect_right(sizes, limit) - 1
        if k < 0:
            return None
        stack = stacks[sizes[k]]
        i = stack.pop()
        if not stack:
            del stacks[sizes.pop(k)]
        return i

    batches = []
    while sizes:
        width = sizes[-1]
        batch = []
        for _ in range(max(1, budget // max(width, 1))):
            row, room = [], width
            while room > 0 and (i := take(room)) is not None:
                row.append(i)
                room -= lengths[i]
            if not row:
                break
            batch.append(row)
        batches.append(batch)
    return batches


def layout_row(seqs: Sequence[PackedSequence], width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """(tokens, positions, allowed, offsets) of packed sequences side by side in one
    row of ``width``: each attends within itself as :meth:`PackedSequence.allowed`
    says, never to another; positions restart at 0 for each. Padding (token 0)
    attends to itself only."""
    tokens = np.zeros(width, dtype=np.int64)
    positions = np.zeros(width, dtype=np.int64)
    allow = np.zeros((width, width), dtype=bool)
    offsets, start = [], 0
    for seq in seqs:
        end = start + len(seq)
        tokens[start:end] = seq.tokens
        positions[start:end] = seq.positions
        allow[start:end, start:end] = seq.allowed()
        offsets.append(start)
        start = end
    pad = np.arange(start, width)
    allow[pad, pad] = True
    return tokens, positions, allow, offsets


#: The two routes of ``hf-prefix``: one packed sequence per document under a 4-D
#: mask, or the prompt's key/value cache reused by a batch of its responses.
ROUTES = ("auto", "packed", "cached")
def route(prompt_tokens: int, continuation_tokens: Sequence[int]) -> str:
    """``cached`` or ``packed``: the route ``prefix_route=auto`` takes for one
    document, by measurement (docs/hf_prefix.md, "Two routes"): ``packed``.
    The packed route puts several documents in one forward pass (a token
    budget), the cached route runs one document per pass and copies the
    prompt's cache per response. SmolLM2-135M, one CPU thread, 3 repeats: on
    8 documents (a pass or two either way) cached 1.86x / 2.03x / 0.87x stock
    against packed 1.72x / 2.05x / 2.34x for 2 / 4 / 15 responses; on the 24
    documents a real run holds, packed 1.87x / 2.09x against cached 1.58x /
    1.30x on 2 / 4 responses. ``prefix_route=cached`` stays for devices
    where its unmasked attention may pay (unmeasured: no GPU was lent)."""
    del prompt_tokens, continuation_tokens  # the measured rule holds for every count and length
    return "packed"


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
