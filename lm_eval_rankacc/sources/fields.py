"""The YAML-only source: any preference dataset, read through a field mapping
given in the task's ``dataset_kwargs`` (no Python needed).

Two forms; the keys present decide which one a task uses. A mapping that
mixes the two forms, or lacks a key its form requires, is an error naming
the keys.

Pairwise form: ``prompt_field``, ``chosen_field``, ``rejected_field``
    Each row is one pair; responses = [chosen, rejected], ranks = [1, 2].
    Repeated pairs follow :class:`~lm_eval_rankacc.sources.common.PairLedger`.

Scored form: ``prompt_field``, ``responses_field``, ``score_field`` (higher is better)
    Each row is one document with the responses of ``responses_field``:
    - without ``text_field``: a list of strings, and ``score_field`` names a
      row-level list of numbers, one per response;
    - with ``text_field``: a list of objects, each holding its text under
      ``text_field`` and its score under ``score_field``.
    Ranks are dense ranks of the scores (equal scores tied); identical texts,
    too few responses and all-tied documents follow
    :func:`~lm_eval_rankacc.sources.common.scored_document`.

Optional in both forms:
    ``votes_field``: rater counts per response, a list aligned with the
    responses ([chosen, rejected] in the pairwise form). In the pairwise form
    it may instead hold the share of raters preferring ``chosen`` (a number in
    [0, 1]); there the votes decide the ranks (more votes = better, equal =
    a human tie judged by Def. C.1) and a row whose votes favour ``rejected``
    is an error. In the scored form votes are recorded (at least one vote
    per row), the scores rank.
    ``id_field``: a field holding a stable document id (default: ``<split>/<row>``).

Where the rows come from (read by :mod:`lm_eval_rankacc.loading.documents`):
``data_files`` (local files, as for every task), or ``dataset_path`` with
optional ``dataset_name`` and ``dataset_revision`` (a hub dataset, read with
``datasets.load_dataset(..., split=<split>)``; pin the revision: without it
the hub's ``main`` is read, with a warning). The task option ``split``
(default ``test``) names the split read and prefixes the default ids.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from lm_eval_rankacc.core.schema import RowError, get_field, require_str
from lm_eval_rankacc.sources import Conversion, HubDataset, numbered
from lm_eval_rankacc.sources.common import (
    DROP_EMPTY,
    PairLedger,
    document,
    has_empty_response,
    require_int,
    require_list,
    require_number,
    require_object,
    scored_document,
    type_name,
)

log = logging.getLogger("lm-eval")

#: No fixed location: ``task_hub`` reads it from the task's options.
HUB = None
#: The loader may convert big splits in two passes (see :mod:`lm_eval_rankacc.sources`).
TWO_PASS = True

PAIRWISE = ("prompt_field", "chosen_field", "rejected_field")
SCORED = ("prompt_field", "responses_field", "score_field")
OPTIONAL = ("text_field", "votes_field", "id_field")
HUB_KEYS = ("dataset_path", "dataset_name", "dataset_revision")


# ----------------------------------------------------------------- the mapping
def mapping(options: dict[str, Any]) -> dict[str, str]:
    """The field mapping in ``options``; ValueError when it is incomplete or mixed."""
    keys = {k: options[k] for k in (*PAIRWISE, *SCORED, *OPTIONAL) if options.get(k) is not None}
    for key, value in keys.items():
        if not isinstance(value, str) or not value:
            raise ValueError(f"dataset_kwargs '{key}' must be a field name (a non-empty string), got {value!r}")
    pairwise = "chosen_field" in keys or "rejected_field" in keys
    scored = "responses_field" in keys or "score_field" in keys or "text_field" in keys
    if pairwise and scored:
        raise ValueError(
            "dataset_kwargs mixes the pairwise form (chosen_field, rejected_field) and the scored "
            "form (responses_field, score_field, text_field); use one"
        )
    if not pairwise and not scored:
        raise ValueError(
            "dataset_kwargs has no field mapping: the pairwise form needs prompt_field, chosen_field "
            "and rejected_field; the scored form needs prompt_field, responses_field and score_field"
        )
    form, required = ("pairwise", PAIRWISE) if pairwise else ("scored", SCORED)
    missing = [k for k in required if k not in keys]
    if missing:
        raise ValueError(
            f"dataset_kwargs is missing {', '.join(repr(k) for k in missing)} "
            f"(the {form} form needs {', '.join(required)})"
        )
    return keys


def task_hub(options: dict[str, Any], data_files: Any) -> HubDataset | None:
    """Validate the task's mapping and return its hub dataset (None when it
    reads ``data_files``). ValueError for a bad mapping or no data source."""
    mapping(options)
    path = options.get("dataset_path")
    if path is None:
        if data_files is None:
            raise ValueError(
                "no data: set 'data_files' (local files) or 'dataset_path' (a hub dataset) in dataset_kwargs"
            )
        return None
    for key in HUB_KEYS:
        value = options.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"dataset_kwargs '{key}' must be a non-empty string, got {value!r}")
    revision = options.get("dataset_revision")
    if revision is None:
        log.warning("%s: no dataset_revision in dataset_kwargs; reading the hub's 'main', which may change", path)
    return HubDataset(path=path, revision=revision or "main", name=options.get("dataset_name"))


# ----------------------------------------------------------------- conversion
def convert(rows: Iterable[Any], split: str, **options: Any) -> Conversion:
    keys = mapping(options)
    optional = {k: keys.get(k) for k in ("votes_field", "id_field")}
    if "chosen_field" in keys:
        return pairwise(rows, split, keys["prompt_field"], keys["chosen_field"], keys["rejected_field"], **optional)
    return scored(
        rows, split, keys["prompt_field"], keys["responses_field"], keys["score_field"],
        text_field=keys.get("text_field"), **optional,
    )


def _member(obj: dict, key: str, row: int, name: str) -> Any:
    if key not in obj:
        raise RowError(row, name, "is missing")
    return obj[key]


def document_id(record: dict, row: int, split: str, id_field: str | None) -> str:
    if id_field is None:
        return f"{split}/{row}"
    value = get_field(record, row, id_field)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise RowError(row, id_field, f"expected a non-empty string or an integer id, got {value!r}")
    return require_str(value, row, id_field) if isinstance(value, str) else str(value)


def pair_votes(value: Any, row: int, field: str) -> tuple[list[int], list[int] | None, float | None]:
    """(ranks, votes, alpha) of a pair from its votes field: [votes for chosen,
    votes for rejected], or the share of raters preferring chosen."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise RowError(row, field, f"expected [votes for chosen, votes for rejected], got {len(value)} values")
        votes = [require_int(v, row, f"{field}[{j}]") for j, v in enumerate(value)]
        if min(votes) < 0 or sum(votes) == 0:
            raise RowError(row, field, f"expected counts >= 0 with at least one vote, got {votes}")
        chosen, rejected = votes
        alpha = None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        alpha = require_number(value, row, field)
        if not 0 <= alpha <= 1:
            raise RowError(row, field, f"expected the share of raters preferring chosen (0 to 1), got {alpha!r}")
        votes, chosen, rejected = None, alpha, 1 - alpha
    else:
        raise RowError(
            row, field,
            f"expected [votes for chosen, votes for rejected] or the share preferring chosen, got {type_name(value)}",
        )
    if chosen < rejected:
        raise RowError(row, field, "favours the rejected response")
    return ([1, 1] if chosen == rejected else [1, 2]), votes, alpha


def pairwise(
    rows: Iterable[Any],
    split: str,
    prompt_field: str,
    chosen_field: str,
    rejected_field: str,
    votes_field: str | None = None,
    id_field: str | None = None,
) -> Conversion:
    """One document per row; repeated pairs dropped by the PairLedger rule."""
    ledger = PairLedger.of(rows)
    for i, record in numbered(rows):
        prompt = require_str(get_field(record, i, prompt_field), i, prompt_field, allow_empty=False)
        chosen = require_str(get_field(record, i, chosen_field), i, chosen_field)
        rejected = require_str(get_field(record, i, rejected_field), i, rejected_field)
        if has_empty_response((chosen, rejected)):
            ledger.dropped[DROP_EMPTY] += 1
            continue
        ranks, votes, alpha = [1, 2], None, None
        if votes_field is not None:
            ranks, votes, alpha = pair_votes(get_field(record, i, votes_field), i, votes_field)
        doc = document(ledger.light, document_id(record, i, split, id_field), prompt, [chosen, rejected], ranks, votes,
                       row=i)
        if alpha is not None:
            doc["alpha"] = float(alpha)
        ledger.add(
            (prompt, frozenset((chosen, rejected))),
            frozenset({(chosen, ranks[0]), (rejected, ranks[1])}),
            doc,
            i,
        )
    return ledger.into(Conversion.of(rows))


def scored(
    rows: Iterable[Any],
    split: str,
    prompt_field: str,
    responses_field: str,
    score_field: str,
    text_field: str | None = None,
    votes_field: str | None = None,
    id_field: str | None = None,
) -> Conversion:
    """One document per row, ranked by score; drops by :func:`scored_document`."""
    out = Conversion.of(rows)
    for i, record in numbered(rows):
        prompt = require_str(get_field(record, i, prompt_field), i, prompt_field, allow_empty=False)
        items = require_list(get_field(record, i, responses_field), i, responses_field)
        texts: list[str] = []
        scores: list[float] = []
        if text_field is not None:  # a list of objects holding text and score
            for j, item in enumerate(items):
                where = f"{responses_field}[{j}]"
                item = require_object(item, i, where)
                texts.append(require_str(_member(item, text_field, i, f"{where}.{text_field}"), i, f"{where}.{text_field}"))
                name = f"{where}.{score_field}"
                scores.append(require_number(_member(item, score_field, i, name), i, name))
        else:  # a list of strings and a parallel list of scores
            texts = [require_str(t, i, f"{responses_field}[{j}]") for j, t in enumerate(items)]
            values = require_list(get_field(record, i, score_field), i, score_field)
            if len(values) != len(texts):
                raise RowError(i, score_field, f"has {len(values)} scores for {len(texts)} responses")
            scores = [require_number(v, i, f"{score_field}[{j}]") for j, v in enumerate(values)]
        votes = None
        if votes_field is not None:
            values = require_list(get_field(record, i, votes_field), i, votes_field)
            if len(values) != len(texts):
                raise RowError(i, votes_field, f"has {len(values)} counts for {len(texts)} responses")
            votes = [require_int(v, i, f"{votes_field}[{j}]") for j, v in enumerate(values)]
            if min(votes, default=0) < 0 or sum(votes) == 0:
                raise RowError(i, votes_field, f"expected counts >= 0 with at least one vote, got {votes}")
        doc, reason = scored_document(
            document_id(record, i, split, id_field), prompt, texts, scores, row=i, votes=votes, light=out.light
        )
        if reason is not None:
            out.dropped[reason] += 1
        else:
            out.add(doc, i)
    return out
