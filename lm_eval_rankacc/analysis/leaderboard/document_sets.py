"""Document sets: which models scored the same documents of a task (by
count, task version and configuration, and by the documents' ids and
hashes where samples were logged), each set named by a letter."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from lm_eval_rankacc.analysis.leaderboard.models import Model
from lm_eval_rankacc.outputs.results import TaskResult


def set_letter(index: int) -> str:
    """The name of the ``index``-th document set of a task: A, B, ..."""
    return chr(ord("A") + index)


def docs_digest(ids: Sequence[str], hashes: Sequence[str]) -> str:
    """One digest of a task's documents: its (id, doc_hash) pairs, in any order."""
    text = "\n".join(sorted(f"{i}\t{h}" for i, h in zip(ids, hashes)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def same_documents(a: TaskResult, b: TaskResult) -> bool:
    if a.n != b.n or (a.version is not None and b.version is not None and a.version != b.version):
        return False
    if a.docs is not None and b.docs is not None:
        return a.docs == b.docs  # the documents themselves, whatever the configuration says
    return a.config == b.config


def _setting(config: dict[str, Any], key: str) -> str:
    return repr(config[key]) if key in config else "default"


def differences(a: TaskResult, b: TaskResult) -> str:
    """What distinguishes document set ``b`` from ``a``, in words."""
    parts = []
    if a.n != b.n:
        parts.append(f"n {b.n} vs {a.n}")
    if a.version != b.version:
        parts.append(f"version {b.version} vs {a.version}")
    for key in sorted(set(a.config) | set(b.config)):
        if a.config.get(key) != b.config.get(key):
            parts.append(f"{key} {_setting(b.config, key)} vs {_setting(a.config, key)}")
    if a.docs and b.docs and a.docs != b.docs:
        parts.append("different document ids / doc hashes in the samples")
    return "; ".join(parts) or "documents differ"


def document_sets(results: Sequence[TaskResult]) -> list[list[int]]:
    """Indices of ``results`` (one task, one per model) grouped into sets of
    the same documents, largest set first (ties: first appearance)."""
    groups: list[list[int]] = []
    for i, r in enumerate(results):
        for g in groups:
            if all(same_documents(results[j], r) for j in g):
                g.append(i)
                break
        else:
            groups.append([i])
    return sorted(groups, key=lambda g: (-len(g), g[0]))


def task_sets(task: str, models: list[Model], notes: list[str]) -> dict[int, str]:
    """The document set letter of each model (by index) that ran ``task``; notes on what differs."""
    holders = [k for k, m in enumerate(models) if task in m.tasks]
    results = [models[k].tasks[task] for k in holders]
    sets = document_sets(results)
    label = [models[k].newest.label for k in holders]
    if len(sets) > 1:
        parts = [f"{set_letter(s)} = {', '.join(label[j] for j in g)} (n {results[g[0]].n})"
                 for s, g in enumerate(sets)]
        diffs = [f"{set_letter(s)} vs A: {differences(results[sets[0][0]], results[g[0]])}"
                 for s, g in enumerate(sets) if s]
        notes.append(f"{task}: scored on {len(sets)} different document sets, not comparable across sets: "
                     f"{'; '.join(parts)}. {'; '.join(diffs)}")
    for g in sets:
        unverified = [label[j] for j in g if results[j].docs is None]
        if len(g) > 1 and unverified:
            notes.append(f"{task}: {', '.join(unverified)}: no samples logged, so the documents are matched "
                         "by count, task version and configuration only")
    return {holders[j]: set_letter(s) for s, g in enumerate(sets) for j in g}
