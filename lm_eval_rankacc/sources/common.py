"""Rules shared by the converters of the preference datasets added with the
multi-response tasks (GPT-J pairwise, SHP, Stack Exchange, UltraFeedback and
the YAML-only ``fields`` source). Pure, like every converter.

Pairs listed more than once (:class:`PairLedger`)
    A pair is identified by its prompt (or post) and the *unordered* set of its
    two responses. When it is listed again (in either order) with the same
    human preference, the later copy is dropped and counted; when a copy
    states a different preference, every copy of the pair is dropped and
    counted, since the data contradicts itself.

Scored multi-response documents (:func:`scored_document`)
    Responses with identical text are one response: copies with equal scores
    are merged (keeping the first position; their votes, if any, are added),
    and a document whose identical texts carry different scores is dropped
    and counted. Ranks are dense ranks of the scores, higher is better, equal
    scores tied. A document left with fewer than two distinct responses, or
    whose responses are all tied, has no ranking to check: it is dropped and
    counted.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

from lm_eval_rankacc.schema import RowError, dense_ranks, make_doc, type_name
from lm_eval_rankacc.sources import Conversion

DROP_REPEATED = "pairs listed again with the same preference (later copies)"
DROP_CONTRADICTED = "pairs listed more than once with different preferences (all copies)"
DROP_FEW = "documents with fewer than two distinct responses"
DROP_ALL_TIED = "documents whose responses are all tied"
DROP_SAME_TEXT = "documents where one response text carries different scores"


def require_number(value: Any, row: Any, field: str) -> float | int:
    """A finite int or float (not a bool), else RowError naming the row and field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RowError(row, field, f"expected a number, got {type_name(value)}")
    if not math.isfinite(value):
        raise RowError(row, field, f"expected a finite number, got {value!r}")
    return value


def require_int(value: Any, row: Any, field: str) -> int:
    """An int (floats with an integral value accepted), else RowError."""
    value = require_number(value, row, field)
    if isinstance(value, float):
        if not value.is_integer():
            raise RowError(row, field, f"expected an integer, got {value!r}")
        value = int(value)
    return value


def require_list(value: Any, row: Any, field: str) -> list:
    if not isinstance(value, (list, tuple)):
        raise RowError(row, field, f"expected a list, got {type_name(value)}")
    return list(value)


def require_object(value: Any, row: Any, field: str) -> dict:
    if not isinstance(value, dict):
        raise RowError(row, field, f"expected an object, got {type_name(value)}")
    return value


class PairLedger:
    """Collects pairwise documents and applies the repeated-pair rule."""

    def __init__(self) -> None:
        self._entries: list[tuple[Hashable, frozenset, dict[str, Any], int]] = []

    def add(self, key: Hashable, preference: frozenset, doc: dict[str, Any], row: int) -> None:
        """``key``: the pair's identity (prompt or post, unordered responses);
        ``preference``: an order-free statement of the human ranking, e.g.
        ``frozenset({(response_1, rank_1), (response_2, rank_2)})``; ``row``:
        the index of the row the document comes from."""
        self._entries.append((key, preference, doc, row))

    def into(self, out: Conversion) -> Conversion:
        preferences: dict[Hashable, set] = {}
        for key, preference, _, _ in self._entries:
            preferences.setdefault(key, set()).add(preference)
        seen: set = set()
        for key, _, doc, row in self._entries:
            if len(preferences[key]) > 1:
                out.dropped[DROP_CONTRADICTED] += 1
            elif key in seen:
                out.dropped[DROP_REPEATED] += 1
            else:
                seen.add(key)
                out.add(doc, row)
        return out


def scored_document(
    doc_id: str,
    prompt: Any,
    responses: Sequence[str],
    scores: Sequence[Any],
    *,
    row: Any,
    votes: Sequence[int] | None = None,
) -> tuple[dict[str, Any] | None, str | None]:
    """``(document, None)``, or ``(None, drop reason)`` by the rules above.

    ``responses`` must already be strings and ``scores`` comparable values
    (numbers, or tuples of numbers for a lexicographic key), higher = better.
    The prompt and everything else is validated by :func:`make_doc`."""
    texts: list[str] = []
    key_of: dict[str, Any] = {}
    votes_of: dict[str, int] = {}
    for i, (text, score) in enumerate(zip(responses, scores, strict=True)):
        if text in key_of:
            if key_of[text] != score:
                return None, DROP_SAME_TEXT
            if votes is not None:
                votes_of[text] += votes[i]
            continue
        texts.append(text)
        key_of[text] = score
        if votes is not None:
            votes_of[text] = votes[i]
    if len(texts) < 2:
        return None, DROP_FEW
    ranks = dense_ranks([key_of[t] for t in texts])
    if len(set(ranks)) == 1:
        return None, DROP_ALL_TIED
    merged_votes = [votes_of[t] for t in texts] if votes is not None else None
    return make_doc(doc_id, prompt, texts, ranks, merged_votes, row=row), None
