"""Alpaca Farm human cross-annotations (Dubois et al., 2023), file
``alpaca_farm_human_crossannotations.json`` of the hub dataset
``tatsu-lab/alpaca_eval``, read itself (the hub's loading script no longer
runs under current ``datasets``) at the hub's ``main`` (``HUB``: no public code
pins a commit of this file). The whole file is the split ``val``: one row per
(pair, rater) with ``instruction``, optional ``input``, ``output_1``,
``output_2`` and ``preference`` (1 or 2; any other value is an error naming
the row). An empty ``instruction``, or an ``input`` that is neither a string
nor null, is an error naming the row and that field.

prompt = ``instruction``, followed by a blank line and ``input`` when the row
has a non-blank ``input``. Rows are grouped by pair with an order-insensitive
key (prompt and the unordered pair of outputs): a row that lists the outputs
swapped has its vote flipped. The document keeps the orientation of the
pair's first row; ``votes`` = raters preferring [output_1, output_2],
``alpha`` = share preferring output_1, ranks from the majority (alpha = 0.5 is
a human tie). Document id = a hash of the pair's key. With ``ties="exclude"``
tied pairs are dropped and counted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from lm_eval_rankacc.core.schema import RowError, get_field, make_doc, require_str
from lm_eval_rankacc.sources import Conversion, HubFile
from lm_eval_rankacc.sources.common import DROP_EMPTY, has_empty_response

HUB = HubFile(
    repo="tatsu-lab/alpaca_eval",
    filename="alpaca_farm_human_crossannotations.json",
    revision="main",
)

DROP_TIE = "tied pairs (alpha = 0.5) excluded"


def preference_code(value: Any, row: int) -> int:
    """1 or 2 (floats 1.0 / 2.0 accepted); anything else is an unknown code."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value not in (1, 2):
        raise RowError(row, "preference", f"unknown preference code {value!r} (expected 1 or 2)")
    return int(value)


def pair_id(prompt: str, outputs: tuple[str, str]) -> str:
    key = "\x00".join([prompt, *sorted(outputs)])
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def convert(rows: Iterable[dict[str, Any]], split: str, ties: str = "include", **_: Any) -> Conversion:
    if ties not in ("include", "exclude"):
        raise ValueError(f"ties must be 'include' or 'exclude', got {ties!r}")
    pairs: dict[str, dict[str, Any]] = {}
    for i, record in enumerate(rows):
        prompt = require_str(get_field(record, i, "instruction"), i, "instruction", allow_empty=False)
        extra = record.get("input")
        if extra is not None and require_str(extra, i, "input").strip():
            prompt = f"{prompt}\n\n{extra}"
        outputs = (
            require_str(get_field(record, i, "output_1"), i, "output_1"),
            require_str(get_field(record, i, "output_2"), i, "output_2"),
        )
        winner = preference_code(get_field(record, i, "preference"), i) - 1
        key = pair_id(prompt, outputs)
        pair = pairs.setdefault(key, {"prompt": prompt, "outputs": outputs, "votes": [0, 0], "row": i})
        if outputs != pair["outputs"]:  # listed swapped: flip the vote
            winner = 1 - winner
        pair["votes"][winner] += 1

    out = Conversion()
    for key, pair in pairs.items():
        votes = pair["votes"]
        if has_empty_response(pair["outputs"]):
            out.dropped[DROP_EMPTY] += 1
            continue
        if votes[0] == votes[1]:
            if ties == "exclude":
                out.dropped[DROP_TIE] += 1
                continue
            ranks = [1, 1]
        else:
            ranks = [1, 2] if votes[0] > votes[1] else [2, 1]
        out.add(make_doc(key, pair["prompt"], list(pair["outputs"]), ranks, votes, row=pair["row"]), pair["row"])
    return out
