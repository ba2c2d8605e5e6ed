"""Matching the documents of two runs of a task by document id *and*
``doc_hash``, never by position; documents that differ are named, with what
the runs' results files say differs (task version, sample size, seed)."""

from __future__ import annotations

from typing import Any

import numpy as np

from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.outputs.columns import TaskSamples
from lm_eval_rankacc.outputs.names import results_data_for
from lm_eval_rankacc.outputs.results import task_metadata
from lm_eval_rankacc.outputs.samples import examples

__all__ = ["match_documents"]


def _run_config(ts: TaskSamples) -> dict[str, Any]:
    results = results_data_for(ts.path) or {}
    cfg = ((results.get("configs") or {}).get(ts.task) or {})
    return {"version": (results.get("versions") or {}).get(ts.task), **task_metadata(cfg)}


def match_documents(ref: TaskSamples, other: TaskSamples, ref_name: str = "REF", other_name: str = "OTHER") -> np.ndarray:
    """Indices into ``other`` of the documents of ``ref``, in ``ref``'s order,
    matched by document id and ``doc_hash``.

    Raises :class:`RunError` naming the documents that differ (ids found in
    one run only, or the same id with different content) and, where the
    results files say so, the differing task version / sample size / seed.
    """
    if ref.ids == other.ids and ref.hashes == other.hashes:  # the same documents in the same order: no index built
        return np.arange(len(ref))
    where = {(i, h): k for k, (i, h) in enumerate(zip(other.ids, other.hashes))}
    index = [where.get(key) for key in zip(ref.ids, ref.hashes)]
    if all(k is not None for k in index) and len(ref) == len(other):
        return np.array(index, dtype=int)
    ref_ids, other_ids = dict(zip(ref.ids, ref.hashes)), dict(zip(other.ids, other.hashes))
    only_ref = [i for i in ref.ids if i not in other_ids]
    only_other = [i for i in other.ids if i not in ref_ids]
    changed = [i for i in ref.ids if i in other_ids and other_ids[i] != ref_ids[i]]
    parts = []
    if only_ref:
        parts.append(f"{len(only_ref)} only in {ref_name} ({examples(only_ref)})")
    if only_other:
        parts.append(f"{len(only_other)} only in {other_name} ({examples(only_other)})")
    if changed:
        parts.append(f"{len(changed)} with the same id but different content/doc_hash ({examples(changed)})")
    cfg_ref, cfg_other = _run_config(ref), _run_config(other)
    diffs = [
        f"{k} {cfg_ref.get(k)!r} vs {cfg_other.get(k)!r}"
        for k in sorted(set(cfg_ref) | set(cfg_other))
        if cfg_ref.get(k) != cfg_other.get(k)
    ]
    hint = f"; the runs differ in {', '.join(diffs)}" if diffs else " (another sample size, seed or task version?)"
    hint += "".join(f"; {name} dropped {len(ts.dropped)} as too long for its window" for name, ts in
                    ((ref_name, ref), (other_name, other)) if ts.dropped)
    raise RunError(
        f"{ref.task}: {ref_name} ({ref.path.name}, {len(ref)} docs) and {other_name} ({other.path.name}, "
        f"{len(other)} docs) score different documents: {'; '.join(parts)}{hint}"
    )
