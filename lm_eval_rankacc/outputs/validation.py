"""The checks of one samples line: every field the analyses read, by the
reference validator (:func:`valid_sample`) and, where ``msgspec`` is
installed, by the fast path (:func:`fast_sample`), which makes the same checks.

Ranks integers >= 1, token counts positive integers or null (unknown), byte
counts positive integers, log-likelihoods numbers <= 0, as log-probabilities
are (JSON ``NaN`` / ``-Infinity`` allowed: the analyses count them as
invalid; a positive value, ``Infinity`` included, is no log-probability and
is refused; never booleans, strings or null, except all null for a document
lm-eval dropped as too long for the model's window), alpha in [0, 1] or null, the text fields strings.
The fast path decodes only those fields; a line it cannot vouch for goes
through :func:`valid_sample`, which words the error
(``tests/outputs/test_samples_fast.py`` holds both to the same results).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

try:  # typed decoding of the fields the analyses read only (:func:`fast_sample`); optional
    import msgspec as _msgspec
except ImportError:  # pragma: no cover - msgspec is optional
    _msgspec = None


class InvalidField(Exception):
    """A field of a samples line the analyses cannot use; the message names the field."""


def _shown(value: Any) -> str:
    """A value as JSON, on one line, at most 40 characters."""
    text = json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= 40 else text[:39] + "\u2026"


#: What an element of each per-response list may be: (description, test). Integers
#: stop at 2**53 (exact as floats); booleans are never numbers.
_MAX_INT = 2**53
_RANK = ("an integer >= 1", lambda v: type(v) is int and 1 <= v <= _MAX_INT)
_COUNT = ("a positive integer", lambda v: type(v) is int and 1 <= v <= _MAX_INT)
_COUNT_OR_NULL = ("a positive integer or null (unknown)", lambda v: v is None or _COUNT[1](v))
_REAL = ("a number (NaN and Infinity allowed)",
         lambda v: type(v) is float or (type(v) is int and abs(v) <= sys.float_info.max))
_LOGPROB = ("a log-probability: a number <= 0 (NaN and -Infinity allowed)",
            lambda v: _REAL[1](v) and not v > 0)
_TEXT = ("a string", lambda v: isinstance(v, str))
_MISSING = object()


def _elements(values: list, field: str, rule: tuple[str, Callable[[Any], bool]]) -> list:
    description, ok = rule
    for i, value in enumerate(values):
        if not ok(value):
            raise InvalidField(f"field '{field}[{i}]': expected {description}, got {_shown(value)}")
    return values


def _per_response(container: dict, key: str, where: str, n: int, rule: tuple, lead: str,
                  default: Any = _MISSING) -> list:
    """``container[key]``: a list of one valid value per response (``lead`` opens the error)."""
    field, value = f"{where}.{key}", container.get(key, default)
    if value is _MISSING:
        raise InvalidField(f"{lead} (field '{field}' is missing)")
    if not isinstance(value, list) or len(value) != n:
        got = f"{len(value)} value(s)" if isinstance(value, list) else _shown(value)
        raise InvalidField(f"{lead} (field '{field}': {got} for {n} responses)")
    return _elements(value, field, rule)


def _valid_doc(doc: Any) -> int:
    """Check the document of a samples line; its number of responses."""
    if not isinstance(doc, dict):
        raise InvalidField(f"field 'doc': expected an object, got {_shown(doc)}")
    for key in ("id", "prompt", "responses", "ranks"):
        if key not in doc:
            raise InvalidField(f"doc has no '{key}'")
    if type(doc["id"]) not in (str, int) or doc["id"] == "":
        raise InvalidField(f"field 'doc.id': expected a non-empty string or an integer, got {_shown(doc['id'])}")
    if not isinstance(doc["prompt"], str):
        raise InvalidField(f"field 'doc.prompt': expected a string, got {_shown(doc['prompt'])}")
    lead = "doc needs >= 2 responses and one integer rank per response"
    responses = doc["responses"]
    if not isinstance(responses, list) or len(responses) < 2:
        raise InvalidField(f"{lead} (field 'doc.responses': {_shown(responses)})")
    _elements(responses, "doc.responses", _TEXT)
    _per_response(doc, "ranks", "doc", len(responses), _RANK, lead)
    alpha = doc.get("alpha")
    if alpha is not None and not (_REAL[1](alpha) and 0.0 <= alpha <= 1.0):
        raise InvalidField(f"field 'doc.alpha': expected a share in [0, 1] or null, got {_shown(alpha)}")
    return len(responses)


def valid_sample(rec: Any) -> tuple[list[float] | None, list[int | None], list[int]]:
    """Check every field of a samples line the analyses read: the document
    (id, prompt, responses, ranks, alpha), ``doc_hash`` and ``scores``; its
    (loglik, n_tokens, n_bytes), loglik None for a document lm-eval dropped
    (every log-likelihood null: a response longer than the model's window).
    Raises :class:`InvalidField` naming the field."""
    if not isinstance(rec, dict):
        raise InvalidField("not a JSON object")
    n = _valid_doc(rec.get("doc"))
    doc_hash = rec.get("doc_hash")
    if not isinstance(doc_hash, str) or not doc_hash:
        raise InvalidField(f"no 'doc_hash' (field 'doc_hash': expected a non-empty string, got {_shown(doc_hash)})")
    scores = rec.get("scores")
    if not isinstance(scores, dict):
        raise InvalidField(f"field 'scores': expected an object, got {_shown(scores)}")
    lead = f"scores need loglik, n_tokens and n_bytes for each of the {n} responses"
    dropped = scores.get("loglik") == [None] * n
    loglik = None if dropped else _per_response(scores, "loglik", "scores", n, _LOGPROB, lead)
    n_tokens = _per_response(scores, "n_tokens", "scores", n, _COUNT_OR_NULL, lead, default=[None] * n)
    n_bytes = _per_response(scores, "n_bytes", "scores", n, _COUNT, lead)
    return None if loglik is None else [float(x) for x in loglik], n_tokens, n_bytes


if _msgspec is not None:  # the checks of :func:`valid_sample` msgspec can make while decoding
    from typing import Annotated

    _Count = Annotated[int, _msgspec.Meta(ge=1, le=_MAX_INT)]
    _Text = Annotated[str, _msgspec.Meta(min_length=1)]

    class _FastDoc(_msgspec.Struct):
        """The fields of ``doc`` the analyses read, with their JSON types (others skipped)."""

        id: _Text | int
        prompt: str
        responses: Annotated[list[str], _msgspec.Meta(min_length=2)]
        ranks: list[_Count]
        alpha: Annotated[float, _msgspec.Meta(ge=0.0, le=1.0)] | None = None

    class _FastScores(_msgspec.Struct):
        loglik: list[float | None]
        n_bytes: list[_Count]
        n_tokens: list[_Count | None] | _msgspec.UnsetType = _msgspec.UNSET

    class _FastRecord(_msgspec.Struct):
        doc: _FastDoc
        doc_hash: _Text
        scores: _FastScores

    _FAST_DECODE = _msgspec.json.Decoder(_FastRecord).decode
    _FAST_LINES = _msgspec.json.Decoder(_FastRecord).decode_lines
    _FAST_ERRORS: tuple = (_msgspec.DecodeError, _msgspec.ValidationError)
    _UNSET = _msgspec.UNSET
else:  # pragma: no cover
    _FAST_DECODE = _FAST_LINES = None
    _FAST_ERRORS, _UNSET = (), None


def _fast_fields(rec: Any) -> tuple | None:
    """The fields of :func:`fast_sample` of one record msgspec decoded; None where it cannot vouch for it."""
    doc, scores = rec.doc, rec.scores
    loglik, n_tokens = scores.loglik, scores.n_tokens
    n = len(doc.responses)
    if n_tokens is _UNSET:
        n_tokens = [None] * n
    if not len(doc.ranks) == len(loglik) == len(scores.n_bytes) == len(n_tokens) == n:
        return None
    if None in loglik:
        if loglik.count(None) != n:
            return None
        loglik = None
    elif any(value > 0 for value in loglik):  # NaN compares False: allowed, as in valid_sample
        return None
    return doc.id, rec.doc_hash, doc.alpha, doc.ranks, loglik, n_tokens, scores.n_bytes


def fast_sample(line: bytes | memoryview) -> tuple | None:
    """A samples line that passes every check of :func:`valid_sample`, as
    (doc id, doc_hash, alpha, ranks, loglik or None (dropped), n_tokens,
    n_bytes), decoded by msgspec (types and ranges checked while decoding,
    the texts' neighbours (arguments, resps, ...) skipped); None for any line
    it cannot vouch for, and for every line without msgspec (then the
    reference path reads it and words the error)."""
    if _FAST_DECODE is None:
        return None
    try:
        return _fast_fields(_FAST_DECODE(line))
    except _FAST_ERRORS:
        return None


def fast_lines(block: bytes, count: int) -> list[tuple] | None:
    """:func:`fast_sample` of each of the ``count`` lines of a block of whole
    lines, decoded in one call (msgspec's ``decode_lines``: a quarter less
    time than line by line); None unless it vouches for every line, and
    without msgspec."""
    if _FAST_LINES is None:
        return None
    try:
        records = _FAST_LINES(block)
    except _FAST_ERRORS:
        return None
    if len(records) != count:
        return None
    out = []
    for rec in records:
        fields = _fast_fields(rec)
        if fields is None:
            return None
        out.append(fields)
    return out
