"""The generations of one ``generate_until`` task in an lm-eval run (``--log_samples``).

One samples line per document (per filter): ``doc_id``, ``doc``,
``arguments`` (``gen_args_0.arg_0``: the context the model saw),
``resps`` (``[[text]]``) and ``filtered_resps`` (``[text]``). The prompt
shown to a judge is the document's ``prompt`` (the rankacc schema) when it
has one, else the context; the output is the filtered response (the raw one
when the filter left no text). Locating the files is
:mod:`lm_eval_rankacc.outputs.results`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.outputs.names import results_data_for
from lm_eval_rankacc.outputs.results import model_args
from lm_eval_rankacc.core.checkpoint_names import checkpoint_step

@dataclass
class Generations:
    """One run's generations of one task: doc_id -> (prompt, output)."""

    path: Path  # the samples file
    task: str
    items: dict[Any, tuple[str, str]]
    model: str | None  # model_args' pretrained (or model) as lm-eval recorded it
    notes: list[str] = field(default_factory=list)

    @property
    def step(self) -> int | None:
        """N of a ``checkpoint-N`` in the model's name or path; None without one."""
        return checkpoint_step(self.model)


def _text_of(value: Any) -> str | None:
    while isinstance(value, list) and value:
        value = value[0]
    return value if isinstance(value, str) else None


def _prompt_of(rec: dict[str, Any]) -> str | None:
    doc = rec.get("doc")
    if isinstance(doc, dict) and isinstance(doc.get("prompt"), str):
        return doc["prompt"]
    args = rec.get("arguments")
    if isinstance(args, dict):  # lm-eval's file: {"gen_args_0": {"arg_0": context, "arg_1": gen_kwargs}}
        args = [list(a.values()) for a in args.values() if isinstance(a, dict)]
    return _text_of(args)


def _record(path: Path, line_no: int, line: str) -> dict[str, Any]:
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as err:
        raise RunError(f"{path}: line {line_no}: not JSON ({err.msg})") from None
    if not isinstance(rec, dict) or "doc_id" not in rec:
        raise RunError(f"{path}: line {line_no}: not an lm-eval sample (no doc_id)")
    return rec


def _pick_filter(path: Path, records: list[dict[str, Any]], wanted: str | None) -> str:
    filters = sorted({str(r.get("filter", "none")) for r in records})
    if wanted is not None and wanted not in filters:
        raise RunError(f"{path}: no filter {wanted!r} (filters here: {', '.join(filters)})")
    if wanted is None and len(filters) > 1 and "none" not in filters:
        raise RunError(f"{path}: several filters ({', '.join(filters)}); choose one")
    return wanted or ("none" if "none" in filters else filters[0])


def read_generations(path: Path, task: str, filter_name: str | None = None) -> Generations:
    """doc_id -> (prompt, generated text) of one samples file; a line
    without a text response (not a ``generate_until`` task) is a
    :class:`RunError` naming it, a doc_id seen twice too."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise RunError(f"{path}: cannot be read ({err})") from None
    records = [(k, _record(path, k, line)) for k, line in enumerate(lines, start=1) if line.strip()]
    if not records:
        raise RunError(f"{path}: no samples")
    chosen = _pick_filter(path, [r for _, r in records], filter_name)
    items: dict[Any, tuple[str, str]] = {}
    for line_no, rec in records:
        if str(rec.get("filter", "none")) != chosen:
            continue
        prompt = _prompt_of(rec)
        output = _text_of(rec.get("filtered_resps"))
        output = output if output is not None else _text_of(rec.get("resps"))
        if prompt is None or output is None:
            raise RunError(f"{path}: line {line_no}: no prompt or no generated text: task {task} is not a "
                           "generate_until task (run its _gen variant)")
        if rec["doc_id"] in items:
            raise RunError(f"{path}: line {line_no}: doc_id {rec['doc_id']} appears twice")
        items[rec["doc_id"]] = (prompt, output)
    results = results_data_for(path) or {}
    args = model_args(results)
    model = next((str(args[k]) for k in ("pretrained", "model", "path") if args.get(k)), None)
    return Generations(path, task, items, model or results.get("model_name"))

