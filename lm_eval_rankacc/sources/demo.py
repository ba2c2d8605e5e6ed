"""The project's own demo data (``tasks/demo/demo_pairs.jsonl``, shipped with
the package, split ``demo``), already in the common schema: one JSON object
per line with ``prompt``, ``responses``, ``ranks`` and optionally ``votes``
and ``id`` (document id = ``id``, else ``<split>/<row>``). Rows are validated
by :func:`lm_eval_rankacc.core.schema.make_doc`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lm_eval_rankacc.core.schema import get_field, make_doc
from lm_eval_rankacc.sources import Conversion
from lm_eval_rankacc.sources.common import DROP_EMPTY, has_empty_response

from lm_eval_rankacc import tasks_dir

HUB = tasks_dir() / "demo" / "demo_pairs.jsonl"  # shipped with the package


def convert(rows: Iterable[dict[str, Any]], split: str, **_: Any) -> Conversion:
    out = Conversion()
    for i, record in enumerate(rows):
        doc = make_doc(
            record.get("id", f"{split}/{i}") if isinstance(record, dict) else i,
            get_field(record, i, "prompt"),
            get_field(record, i, "responses"),
            get_field(record, i, "ranks"),
            record.get("votes"),
            row=i,
        )
        if has_empty_response(doc["responses"]):
            out.dropped[DROP_EMPTY] += 1
            continue
        out.add(doc, i)
    return out
