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

Empty responses (:func:`has_empty_response`, every source)
    A response with no characters but whitespace has no tokens of its own to
    score (lm-eval would score the target delimiter alone, or fail on the
    first document's choices), so a document with one is dropped and counted,
    whichever source it comes from and wherever it stands in the data
    (docs/tasks.md, "Empty responses").
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Any

from lm_eval_rankacc.core.schema import RowError, dense_ranks, make_doc, type_name
from lm_eval_rankacc.sources import Conversion, is_light

DROP_REPEATED = "pairs listed again with the same preference (later copies)"
DROP_CONTRADICTED = "pairs listed more than once with different preferences (all copies)"
DROP_FEW = "documents with fewer than two distinct responses"
DROP_ALL_TIED = "documents whose responses are all tied"
DROP_SAME_TEXT = "documents where one response text carries different scores"
DROP_EMPTY = "documents with an empty response (nothing but whitespace)"


def has_empty_response(responses: Sequence[str]) -> bool:
    """Whether any response has no characters but whitespace: the document
    is dropped (the empty-response rule above; the paper says nothing)."""
    return any(not response.strip() for response in responses)


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
    """Collects pairwise documents and applies the repeated-pair rule. Each
    pair's identity is held once (a number per row), its first preference
    and whether a copy contradicts it, so a light pass holds little per row."""

    def __init__(self, light: bool = False) -> None:
        self.light = light
        self._numbers: dict[Hashable, int] = {}  # pair identity -> its number
        self._first: list[Hashable] = []  # each pair's first preference
        self._contradicted: set[int] = set()
        self._pair = array("q")  # per row added: the pair's number
        self._row = array("q")
        self._docs: list[dict[str, Any] | str] = []  # the documents, or their ids when light
        #: Rows dropped before they reach the ledger (the empty-response rule), by reason.
        self.dropped: Counter = Counter()

    @classmethod
    def of(cls, rows: Any) -> "PairLedger":
        """An empty ledger that keeps only document ids when ``rows`` is light."""
        return cls(light=is_light(rows))

    def add(self, key: Hashable, preference: Hashable, doc: dict[str, Any], row: int) -> None:
        """``key``: the pair's identity (prompt or post, unordered responses);
        ``preference``: an order-free statement of the human ranking, e.g.
        ``frozenset({(response_1, rank_1), (response_2, rank_2)})``; ``row``:
        the index of the row the document comes from."""
        number = self._numbers.setdefault(key, len(self._numbers))
        if number == len(self._first):
            self._first.append(preference)
        elif self._first[number] != preference:
            self._contradicted.add(number)
        self._pair.append(number)
        self._row.append(row)
        self._docs.append(doc["id"] if self.light else doc)

    def into(self, out: Conversion) -> Conversion:
        out.dropped.update(self.dropped)
        seen: set[int] = set()
        for number, doc, row in zip(self._pair, self._docs, self._row):
            if number in self._contradicted:
                out.dropped[DROP_CONTRADICTED] += 1
            elif number in seen:
                out.dropped[DROP_REPEATED] += 1
            else:
                seen.add(number)
                out.add(doc, row)
        return out


def document(
    light: bool,
    doc_id: str,
    prompt: Any,
    responses: Sequence[Any],
    ranks: Sequence[int],
    votes: Sequence[int] | None = None,
    *,
    row: Any,
) -> dict[str, Any]:
    """:func:`make_doc`, or in a light pass (:func:`lm_eval_rankacc.sources.is_light`)
    only ``{"id": doc_id}``: a converter marked ``TWO_PASS`` calls it after
    checking every field make_doc checks (prompt a non-empty string, two or
    more string responses, ranks and votes it computed), so make_doc cannot
    fail there, and the full documents are built in the second pass."""
    if light:
        return {"id": str(doc_id)}
    return make_doc(doc_id, prompt, responses, ranks, votes, row=row)


def scored_document(
    doc_id: str,
    prompt: Any,
    responses: Sequence[str],
    scores: Sequence[Any],
    *,
    row: Any,
    votes: Sequence[int] | None = None,
    light: bool = False,
) -> tuple[dict[str, Any] | None, str | None]:
    """``(document, None)``, or ``(None, drop reason)`` by the rules above.

    ``responses`` must already be strings and ``scores`` comparable values
    (numbers, or tuples of numbers for a lexicographic key), higher = better.
    The prompt and everything else is validated by :func:`make_doc`
    (:func:`document`: only the id when ``light``)."""
    if has_empty_response(responses):
        return None, DROP_EMPTY
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
    return document(light, doc_id, prompt, texts, ranks, merged_votes, row=row), None
