"""Rows of one batch: its sequences side by side in the rows that cost the least.

A training batch holds a fixed set of sequences (the pairs the Trainer's
sampler drew, each in the prompt-once layout of :mod:`.packing`). Padded one
per row, every row is as wide as the longest sequence: on 16 real HH-RLHF
pairs in random batches of 4, 57 % more tokens are run than the pairs hold.
Laid side by side (each attending within itself only, :func:`.packing.layout_row`),
the same sequences fill fewer rows. Which rows, by a cost model of one
forward pass over ``rows`` rows of ``width`` tokens::

    cost = rows * width * (1 + attention_cost * width)

The ``1`` is a token's work outside attention (its matrix products with the
weights); ``attention_cost * width`` is its attention over ``width`` keys
under a dense mask (every key is computed, masked or not). For a transformer
with ``L`` layers of ``P`` weights each and ``h`` query heads of size ``d``:
``attention_cost = 2 h d / P`` (``4 h d`` FLOPs per query-key pair against
``2 P`` per token and layer); about 3e-4 for SmolLM2-135M.

Up to :data:`EXACT_UP_TO` sequences every partition into rows is tried (203
for 6); above, first-fit decreasing into rows of capacity ``k * longest`` for
``k = 1 .. n`` and ``ceil(total / r)`` for ``r = 1 .. n``. The cheapest wins
(ties: fewer tokens, then fewer rows).
Capacity ``longest`` never costs more than one sequence per row (the same
width, no more rows), so the plan is never worse than padding under the
model. The batch's sequences and the pairs each step trains on are the same
whatever the plan: the scores change by floating-point rounding only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

#: Batches of up to this many sequences get the cheapest of all partitions into rows.
EXACT_UP_TO = 6


def first_fit(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices into ``lengths`` in rows of at most ``capacity`` tokens, longest
    first, each into the first row it fits (a sequence longer than
    ``capacity`` takes a row alone).

    Examples:
        >>> first_fit([5, 3, 4, 2], 7)
        [[0, 3], [2, 1]]
    """
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        n = int(lengths[i])
        k = next((k for k, r in enumerate(room) if r >= n), None)
        if k is None:
            rows.append([i])
            room.append(capacity - n)
        else:
            rows[k].append(i)
            room[k] -= n
    return rows


def row_cost(rows: int, width: int, attention_cost: float) -> float:
    """The cost model of the module docstring, in token-equivalents."""
    return rows * width * (1.0 + attention_cost * width)


def plan_rows(lengths: Sequence[int], attention_cost: float | None = None) -> list[list[int]]:
    """The rows of one batch of sequences of ``lengths`` (indices into it, each
    exactly once) that cost the least under :func:`row_cost`. ``None``: first
    fit into rows as wide as the longest sequence (never more attention per
    row than one sequence per row).

    Examples:
        >>> plan_rows([10, 10, 10, 10], 0.01)   # attention-heavy: one per row
        [[0], [1], [2], [3]]
        >>> plan_rows([200, 20, 30, 40], 3e-4)  # cheap attention: one row
        [[0, 1, 2, 3]]
        >>> plan_rows([100, 20, 30, 90], 3e-4)  # two rows of 120 (248.6 against 257.3 for one)
        [[0, 1], [2, 3]]
        >>> plan_rows([100, 20, 30, 90])        # rows of the longest's width
        [[0], [3], [2, 1]]
    """
    if not len(lengths):
        return []
    longest, total, n = max(lengths), sum(lengths), len(lengths)
    if attention_cost is None:
        return first_fit(lengths, longest)
    if n <= EXACT_UP_TO:
        candidates: Iterator[list[list[int]]] = _partitions(list(range(n)))
    else:
        capacities = sorted({min(k * longest, total) for k in range(1, n + 1)}
                            | {max(longest, -(-total // r)) for r in range(1, n + 1)})
        candidates = (first_fit(lengths, capacity) for capacity in capacities)
    best, best_key = None, None
    for rows in candidates:
        width = max(sum(lengths[i] for i in row) for row in rows)
        key = (row_cost(len(rows), width, attention_cost), len(rows) * width, len(rows))
        if best_key is None or key < best_key:
            best, best_key = rows, key
    return best


def _partitions(items: list[int]) -> Iterator[list[list[int]]]:
    """Every partition of ``items`` into non-empty rows (each row in the items' order)."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _partitions(rest):
        yield [[first]] + part
        for k in range(len(part)):
            yield part[:k] + [[first] + part[k]] + part[k + 1:]
