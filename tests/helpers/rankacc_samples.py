"""Write small lm-eval output folders by hand, in lm-eval's own format.

``write_run(folder, {task: [entry, ...]})`` writes
``<folder>/<model>/results_<ts>.json`` and ``samples_<task>_<ts>.jsonl`` the
way lm-eval 0.4.13 does with ``--output_path <folder> --log_samples``: one
line per document with doc_id, doc, target, arguments, resps,
filtered_resps, filter, metrics, doc_hash (sha256 of the doc dumped with
indent=2, as lm-eval hashes it), prompt_hash, target_hash, then the
per-document metrics from :func:`lm_eval_rankacc.lmeval.metrics.ranking_metrics`
and ``scores``.

An entry is ``doc(...)``: a document of the rankacc schema with the
log-likelihoods (and token counts) a model gave its responses.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from lm_eval_rankacc.lmeval.metrics import ranking_metrics

TS = "2026-01-02T03-04-05.000006"


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def doc(
    doc_id: str,
    loglik: list[float],
    ranks: list[int],
    alpha: float | None = None,
    n_tokens: list[int | None] | None = None,
    votes: list[int] | None = None,
    prompt: str | None = None,
    responses: list[str] | None = None,
) -> dict[str, Any]:
    """One entry: the document plus the scores a model gave it."""
    n = len(ranks)
    responses = responses or [f"response {k} of {doc_id}" for k in range(n)]
    return {
        "doc": {
            "id": doc_id,
            "prompt": prompt or f"prompt of {doc_id}",
            "responses": responses,
            "ranks": ranks,
            "votes": votes or [],
            "alpha": alpha,
        },
        "loglik": [float(x) for x in loglik],
        "n_tokens": n_tokens if n_tokens is not None else [5] * n,
    }


def swapped(entry: dict[str, Any]) -> dict[str, Any]:
    """The same pair listed the other way round (output_1 <-> output_2)."""
    d = entry["doc"]
    alpha = None if d["alpha"] is None else 1.0 - d["alpha"]
    return doc(
        d["id"], entry["loglik"][::-1], d["ranks"][::-1], alpha, entry["n_tokens"][::-1],
        d["votes"][::-1], d["prompt"], d["responses"][::-1],
    )


def sample_line(doc_id: int, entry: dict[str, Any]) -> dict[str, Any]:
    d = entry["doc"]
    n_bytes = [len((" " + r).encode("utf-8")) for r in d["responses"]]
    metrics = ranking_metrics(d["ranks"], entry["loglik"], entry["n_tokens"], n_bytes)
    target = d["ranks"].index(min(d["ranks"]))
    line = {
        "doc_id": doc_id,
        "doc": d,
        "target": str(target),
        "arguments": {
            f"gen_args_{k}": {"arg_0": d["prompt"], "arg_1": " " + r} for k, r in enumerate(d["responses"])
        },
        "resps": [[[str(ll), "False"]] for ll in entry["loglik"]],
        "filtered_resps": [[str(ll), "False"] for ll in entry["loglik"]],
        "filter": "none",
        "metrics": [*metrics, "invalid", "scores"],
        "doc_hash": _hash(json.dumps(d, indent=2, ensure_ascii=False)),
        "prompt_hash": _hash(d["prompt"]),
        "target_hash": _hash(str(target)),
    }
    line.update(metrics)
    line["invalid"] = 0
    line["scores"] = {"loglik": entry["loglik"], "n_tokens": entry["n_tokens"], "n_bytes": n_bytes}
    return line


def write_samples(path: Path, entries: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for k, entry in enumerate(entries):
            fh.write(json.dumps(sample_line(k, entry), ensure_ascii=False) + "\n")
    return path


def write_run(
    folder: Path,
    tasks: dict[str, list[dict[str, Any]]],
    model: str = "model-a",
    ts: str = TS,
    results: bool = True,
    samples: bool = True,
    version: float = 1.0,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """An lm-eval ``--output_path`` folder; returns the model sub-folder."""
    sub = Path(folder) / model
    sub.mkdir(parents=True, exist_ok=True)
    if samples:
        for task, entries in tasks.items():
            write_samples(sub / f"samples_{task}_{ts}.jsonl", entries)
    if results:
        data = {
            "results": {task: {"alias": task} for task in tasks},
            "configs": {task: {"task": task, "metadata": {"version": version, **(metadata or {})}} for task in tasks},
            "versions": {task: version for task in tasks},
            "n-samples": {task: {"original": len(e), "effective": len(e)} for task, e in tasks.items()},
            "model_name": f"/models/{model}",
            "model_name_sanitized": model,
        }
        (sub / f"results_{ts}.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    return sub
