"""Runs built in memory from scores computed elsewhere: every analysis takes
them where it takes an lm-eval output folder (for notebooks, scorers other
than lm-eval, and the examples of these docstrings)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lm_eval_rankacc.outputs.columns import TaskSamples
from lm_eval_rankacc.outputs.runs import Run


def in_memory_run(
    label: str,
    tasks: Mapping[str, tuple[Sequence[Sequence[float]], Sequence[Sequence[int]]]],
    n_tokens: Mapping[str, Sequence[Sequence[int | None]]] | None = None,
    alpha: Mapping[str, Sequence[float | None]] | None = None,
) -> Run:
    """A :class:`~lm_eval_rankacc.outputs.runs.Run` named ``label`` holding,
    per task, documents ``d0``, ``d1``, ... with the log-likelihoods and human
    ranks ``tasks[task] = (loglik, ranks)`` (one list per document, 1 = best,
    equal = a human tie), token counts (default: unknown, so no R~) and rater
    shares alpha (default: none). Two runs built from the same ranks hold the
    same documents (ids and hashes), as two lm-eval runs of one task do.

    Examples:
        >>> run = in_memory_run("ref", {"t": ([[-1.0, -2.0], [-3.0, -1.0]], [[1, 2], [1, 2]])})
        >>> run.tasks["t"].ids, len(run.tasks["t"])
        (['d0', 'd1'], 2)
    """
    return Run(Path(label), Path(label), label, {
        task: _task_samples(label, task, loglik, ranks, (n_tokens or {}).get(task), (alpha or {}).get(task))
        for task, (loglik, ranks) in tasks.items()})


def _task_samples(label: str, task: str, loglik: Sequence[Sequence[float]], ranks: Sequence[Sequence[int]],
                  n_tokens: Sequence[Sequence[int | None]] | None,
                  alpha: Sequence[float | None] | None) -> TaskSamples:
    if len(loglik) != len(ranks) or any(len(ll) != len(r) for ll, r in zip(loglik, ranks)):
        raise ValueError(f"{task}: one log-likelihood per response and one ranks list per document")
    docs: list[dict[str, Any]] = []
    for k, r in enumerate(ranks):
        docs.append({"id": f"d{k}", "prompt": f"prompt {k}", "responses": [f"response {j}" for j in range(len(r))],
                     "ranks": list(r), "votes": [], "alpha": None if alpha is None else alpha[k]})
    hashes = [hashlib.sha256(json.dumps(d, sort_keys=True).encode("utf-8")).hexdigest() for d in docs]
    tokens = [list(t) for t in n_tokens] if n_tokens is not None else [[None] * len(r) for r in ranks]
    return TaskSamples(task, Path(label) / f"samples_{task}.jsonl", [d["id"] for d in docs], hashes, docs,
                       [[float(x) for x in ll] for ll in loglik], tokens, [[1] * len(r) for r in ranks])
