"""The common preference-document schema every dataset is converted into.

A document is one prompt with n >= 2 responses and the human ranking of them:

- ``id``: stable identifier of the document within its source (used to match
  documents across runs);
- ``prompt``: the text the responses answer;
- ``responses``: the n candidate responses;
- ``ranks``: one integer per response, 1 = best; equal ranks are a human tie;
- ``votes``: where the data has individual ratings, how many raters preferred
  each response (empty list otherwise);
- ``alpha``: for pairs with ratings, the proportion of raters preferring
  response 1 (``None`` otherwise).

This module is pure: no I/O, no lm-eval, no torch. Every converter in
:mod:`lm_eval_rankacc.sources` builds documents through :func:`make_doc`, so
validation and error messages are the same for every dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lm_eval_rankacc.core.errors import RowError

__all__ = ["RowError", "RowConflict", "type_name", "require_str", "get_field", "dense_ranks", "make_doc"]


class RowConflict(RowError):
    """A row that contradicts an earlier one: ``earlier`` is that row's index,
    named after the message (the loader turns both indices into file and line)."""

    def __init__(self, row: Any, field: str, message: str, earlier: Any):
        super().__init__(row, field, message)
        self.earlier = earlier

    def __str__(self) -> str:
        return f"{super().__str__()} (row {self.earlier})"


def type_name(value: Any) -> str:
    """The JSON-ish name of a value's type, for error messages ("null" for None)."""
    return "null" if value is None else type(value).__name__


def require_str(row_value: Any, row: Any, field: str, *, allow_empty: bool = True) -> str:
    """Return ``row_value`` if it is a string (non-empty unless allowed) that
    is text, else raise RowError. A JSON escape of half a surrogate pair
    (``"\\ud800"``) decodes to a string no tokenizer or UTF-8 writer accepts."""
    if not isinstance(row_value, str):
        raise RowError(row, field, f"expected a string, got {type_name(row_value)}")
    if not allow_empty and not row_value.strip():
        raise RowError(row, field, "is empty")
    if not row_value.isascii():
        try:
            row_value.encode("utf-8")
        except UnicodeEncodeError as err:
            raise RowError(
                row, field, f"holds an unpaired surrogate {row_value[err.start]!r} at character {err.start}"
            ) from None
    return row_value


def get_field(record: Any, row: Any, field: str) -> Any:
    """``record[field]``, with a RowError naming the row when the record or field is missing."""
    if not isinstance(record, dict):
        raise RowError(row, field, f"row is not an object (got {type_name(record)})")
    if field not in record:
        raise RowError(row, field, "is missing")
    return record[field]


def dense_ranks(scores: Sequence[float]) -> list[int]:
    """Dense ranks from scores where higher is better: 1 = best, equal scores share a rank."""
    distinct = sorted(set(scores), reverse=True)
    position = {score: i + 1 for i, score in enumerate(distinct)}
    return [position[s] for s in scores]


def make_doc(
    doc_id: str,
    prompt: Any,
    responses: Sequence[Any],
    ranks: Sequence[int],
    votes: Sequence[int] | None = None,
    *,
    row: Any = None,
) -> dict[str, Any]:
    """Validate and build one document of the common schema.

    Raises :class:`RowError` (naming ``row`` and the field) for an empty or
    non-string prompt, a non-string response, fewer than two responses, ranks
    that do not match the responses, or votes that do not.
    ``alpha`` is derived from ``votes`` for pairs: votes[0] / sum(votes).
    """
    row = doc_id if row is None else row
    require_str(str(doc_id), row, "id")
    require_str(prompt, row, "prompt", allow_empty=False)
    if not isinstance(responses, (list, tuple)):
        raise RowError(row, "responses", f"expected a list of strings, got {type_name(responses)}")
    responses = list(responses)
    if len(responses) < 2:
        raise RowError(row, "responses", f"needs at least two responses, got {len(responses)}")
    for i, response in enumerate(responses):
        require_str(response, row, f"responses[{i}]")
    ranks = list(ranks) if isinstance(ranks, (list, tuple)) else [ranks]
    if len(ranks) != len(responses) or not all(type(r) is int and r >= 1 for r in ranks):
        raise RowError(row, "ranks", f"expected {len(responses)} integers >= 1, got {ranks!r}")
    votes_list: list[int] = []
    alpha = None
    if votes is not None:
        votes_list = list(votes) if isinstance(votes, (list, tuple)) else [votes]
        if len(votes_list) != len(responses) or not all(type(v) is int and v >= 0 for v in votes_list):
            raise RowError(row, "votes", f"expected {len(responses)} counts >= 0, got {votes_list!r}")
        total = sum(votes_list)
        if total == 0:
            raise RowError(row, "votes", "no rater voted")
        if len(votes_list) == 2:
            alpha = votes_list[0] / total
    return {
        "id": str(doc_id),
        "prompt": prompt,
        "responses": responses,
        "ranks": ranks,
        "votes": votes_list,
        "alpha": alpha,
    }

