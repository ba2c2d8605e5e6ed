"""What each document row of ``rankacc explore`` shows: per run whether it
ranks the document correctly under R and R~, its margin, the flip category
against the base run and, with a reference, the idealized outcome at beta and
Thm. 4.1's c and DPO loss threshold; the texts are read only when asked for.

Every rule is the analyses' own: :func:`~.base.observed_correct` (R, R~),
:func:`~.base.idealized_correct` (R* at beta), :func:`.flips._categories`
(:func:`theory.flip_categories`), :class:`.hardness._Pairs` (c and threshold),
:func:`match_documents` (by id and doc_hash), :func:`~.base.common_tasks` and
:func:`~.base.invalid_note` (the notes). So the counts of any filter equal what
``rankacc flips`` / ``idealized`` / ``hardness`` report for the same runs.

*The base run* is ``--reference`` where given, else the first run; every
other run's flip categories compare the base (before) with it (after).
*DPO could flip it* (with a reference only): the reference ranks the document
wrongly (R) and the idealized policy at beta ranks it correctly (Def. 3.1):
perfect DPO training at that beta would turn it from incorrect to correct.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lm_eval_rankacc.analysis.base import (
    check_betas, common_tasks, idealized_correct, invalid_note, observed_correct, unique_labels,
)
from lm_eval_rankacc.analysis.flips import LEFT_OUT, _categories
from lm_eval_rankacc.analysis.hardness import _Pairs
from lm_eval_rankacc.core import theory
from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.outputs.columns import TaskSamples
from lm_eval_rankacc.outputs.matching import match_documents
from lm_eval_rankacc.outputs.runs import Run, as_runs
from lm_eval_rankacc.sources.hh_rlhf import chat_messages

#: The metrics shown per run: R (summed log-likelihoods) and R~ (per token).
METRICS = (("R", "rank_acc"), ("R_norm", "rank_acc_norm"))
#: The metric the flip categories use (``rankacc flips``' default).
FLIP_METRIC = "rank_acc"


@dataclass
class _Task:
    """One task: the base run's samples, each run's samples and the index
    of the base's documents in it (``order``)."""

    name: str
    base: TaskSamples
    samples: list[TaskSamples]
    orders: list[np.ndarray]


@dataclass
class Exploration:
    """The data of an explorer page: the runs (labels, the base first), which
    run each compared pair holds (``compared``: (before, after) indices), one
    row per document (plain data, :func:`document_row`) and its texts
    (:meth:`texts`, read on demand), notes and metadata."""

    title: str
    runs: list[str]
    compared: list[tuple[int, int]]
    reference: bool
    beta: float
    rows: list[dict[str, Any]]
    notes: list[str]
    meta: dict[str, Any]
    _where: list[tuple[TaskSamples, int]] = field(default_factory=list, repr=False)

    def texts(self, k: int) -> dict[str, Any]:
        """Prompt (and its turns, for a ``Human:`` / ``Assistant:``
        transcript) and responses of row ``k``, read back from its run."""
        ts, i = self._where[k]
        doc = ts.docs[i]
        prompt = str(doc["prompt"])
        turns = chat_messages(prompt) if "\n\nHuman:" in prompt or prompt.startswith("Human:") else []
        return {"prompt": prompt, "turns": [[m["role"], m["content"]] for m in turns],
                "responses": [str(r) for r in doc["responses"]]}


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _run_cells(ts: TaskSamples, i: int, outcomes: dict[str, np.ndarray | None]) -> dict[str, Any]:
    """One run's cells of document ``i``: R and R~ outcomes, the margin
    (preferred minus dispreferred log-likelihood; first minus second for a
    tie), the model's ranking of the responses (1 = highest log-likelihood)
    and the scores of each response."""
    ll = np.asarray(ts.loglik[i], dtype=float)
    ranks = list(ts.ranks[i])
    tokens = [None if t is None or t != t else int(t) for t in ts.n_tokens[i]]
    n_bytes = [int(b) for b in ts.n_bytes[i]]
    margin = None
    if len(ll) == 2:
        first = ranks[0] <= ranks[1]
        margin = _finite(ll[0] - ll[1] if first else ll[1] - ll[0])
    order = np.argsort(-np.where(np.isnan(ll), -np.inf, ll), kind="stable")
    model_rank = np.empty(len(ll), dtype=int)
    model_rank[order] = np.arange(1, len(ll) + 1)
    return {
        **{name: None if outcomes[name] is None else bool(outcomes[name][i]) for name, _ in METRICS},
        "margin": margin, "model_ranks": model_rank.tolist(),
        "loglik": [_finite(v) for v in ll], "n_tokens": tokens, "n_bytes": n_bytes,
        "per_token": [None if t in (None, 0) else _finite(v / t) for v, t in zip(ll, tokens)],
        "per_byte": [None if not b else _finite(v / b) for v, b in zip(ll, n_bytes)],
    }


def _ideal_cells(pairs: _Pairs | None, where: dict[int, int], ideal: np.ndarray | None, ref_correct: np.ndarray,
                 i: int) -> dict[str, Any] | None:
    """With a reference: the idealized outcome at beta, c and threshold (a
    two-response document with a strict preference and finite scores only),
    and whether DPO could flip it (module docstring)."""
    if pairs is None:
        return None
    k = where.get(i)
    c = None if k is None else _finite(pairs.c[k])
    correct = None if ideal is None else bool(ideal[i])
    return {"correct": correct, "c": c, "threshold": None if c is None else _finite(pairs.threshold[k]),
            "could_flip": bool(correct and not ref_correct[i])}


def _first_line(text: str, limit: int = 200) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


def document_row(task: _Task, i: int, outcomes: list[dict], categories: list[np.ndarray],
                 ideal: dict[str, Any] | None) -> dict[str, Any]:
    """The row of document ``i`` of the base run of ``task`` (see the module docstring)."""
    ts = task.base
    doc = ts.docs[i]
    prompt, responses = str(doc["prompt"]), [str(r) for r in doc["responses"]]
    alpha = float(ts.alpha[i])
    votes = doc.get("votes") or []
    return {
        "task": task.name, "id": ts.ids[i], "doc_hash": ts.hashes[i], "first_line": _first_line(prompt),
        "n": int(ts.sizes[i]), "ranks": [int(r) for r in ts.ranks[i]], "tie": bool(ts.tied[i]),
        "alpha": None if alpha != alpha else alpha, "votes": [v for v in votes if isinstance(v, (int, float))],
        "length": len(prompt) + sum(len(r) for r in responses),
        "runs": [_run_cells(s, int(o[i]), out) for s, o, out in zip(task.samples, task.orders, outcomes)],
        "flips": [None if c[i] == LEFT_OUT else theory.CATEGORIES[c[i]] for c in categories],
        "ideal": ideal,
    }


def _tasks(runs: list[Run], labels: list[str], notes: list[str]) -> list[_Task]:
    """The base run's tasks found in every run, each run's documents matched
    to the base's by id and doc_hash (other documents: an error, as in the analyses)."""
    base = runs[0]
    shared = list(base.tasks)
    for run, label in zip(runs[1:], labels[1:]):
        found = common_tasks(base, run, labels[0], label, notes, ("base", label))
        shared = [t for t in shared if t in found]
    out = []
    for name in shared:
        ts = base.tasks[name]
        samples = [run.tasks[name] for run in runs]
        orders = [np.arange(len(ts))] + [match_documents(ts, s, f"base {labels[0]}", label)
                                         for s, label in zip(samples[1:], labels[1:])]
        out.append(_Task(name, ts, samples, orders))
    return out


def _outcomes(task: _Task, labels: list[str], notes: list[str]) -> list[dict[str, np.ndarray | None]]:
    """Per run: R and R~ per document of the run (None: no token counts, noted)."""
    out = []
    for ts, label in zip(task.samples, labels):
        per = {name: observed_correct(ts, metric) for name, metric in METRICS}
        if per["R_norm"] is None:
            notes.append(f"{label}: {task.name}: no token counts, so R~ is n/a")
        notes += filter(None, [invalid_note(label, task.name, ts)])
        out.append(per)
    return out


def _task_rows(task: _Task, labels: list[str], reference: bool, beta: float, notes: list[str]
               ) -> list[dict[str, Any]]:
    outcomes = _outcomes(task, labels, notes)
    aligned = [{k: None if v is None else v[o] for k, v in out.items()} for out, o in zip(outcomes, task.orders)]
    categories = [_categories(aligned[0]["R"], a["R"]) for a in aligned[1:]]
    pairs = _Pairs(task.name, task.base, beta) if reference else None
    where = {} if pairs is None else {int(i): k for k, i in enumerate(pairs.index)}
    ideal = idealized_correct(task.base, [beta])[0] if reference else None
    rows = []
    for i in range(len(task.base)):
        cells = _ideal_cells(pairs, where, ideal, aligned[0]["R"], i)
        rows.append(document_row(task, i, outcomes, categories, cells))
    return rows


def explore(
    runs: Sequence[Run | str | Path],
    reference: Run | str | Path | None = None,
    tasks: str | Sequence[str] | None = None,
    beta: float = 0.1,
) -> Exploration:
    """The rows of an explorer page over ``runs`` (and ``reference``, shown
    first as the base run; module docstring): one per document of the base
    run's tasks found in every run, matched by id and doc_hash.

    Examples:
        >>> from lm_eval_rankacc.analysis.in_memory import in_memory_run
        >>> ranks = [[1, 2]] * 4  # four pairs, response 1 preferred
        >>> ref = in_memory_run("ref", {"t": ([[-1.0, -2.0], [-3.0, -1.0], [-2.0, -2.5], [-4.0, -1.0]], ranks)})
        >>> dpo = in_memory_run("dpo", {"t": ([[-0.5, -2.5], [-1.0, -1.5], [-3.0, -2.0], [-5.0, -1.0]], ranks)})
        >>> ex = explore([dpo], reference=ref)
        >>> [(r["id"], r["runs"][0]["R"], r["flips"][0], r["ideal"]["could_flip"]) for r in ex.rows][:2]
        [('d0', True, 'correct->correct', False), ('d1', False, 'incorrect->correct', True)]
    """
    beta = check_betas([beta])[0]
    given = [reference, *runs] if reference is not None else list(runs)
    if not given:
        raise RunError("explore needs at least one run")
    loaded = as_runs(given, tasks)
    labels = unique_labels(loaded)
    notes: list[str] = []
    rows, where = [], []
    for task in _tasks(loaded, labels, notes):
        rows += _task_rows(task, labels, reference is not None, beta, notes)
        where += [(task.base, i) for i in range(len(task.base))]
    for label, run in zip(labels, loaded):
        notes.extend(f"{label}: {n}" for n in run.notes)
    compared = [(0, k) for k in range(1, len(loaded))]
    meta = {"base": labels[0], "reference": labels[0] if reference is not None else None, "beta": beta,
            "flip_metric": FLIP_METRIC, "runs": {label: str(r.folder) for label, r in zip(labels, loaded)}}
    title = f"Explore: {', '.join(labels)}"
    return Exploration(title, labels, compared, reference is not None, beta, rows, notes, meta, where)


def leaderboard_runs(report: Any) -> dict[str, Path]:
    """Model -> the folder of the results file behind its row, for the models
    of a leaderboard ``report`` whose samples were logged (the runs an
    explorer page can read; the published rows of the paper have none)."""
    runs = next((s for s in report.sections if s.title == "runs"), None)
    out: dict[str, Path] = {}
    for row in runs.rows if runs is not None else []:
        if row.get("status") == "used" and row.get("samples") == "yes" and row.get("results_file"):
            out.setdefault(str(row["model"]), Path(row["results_file"]).parent)
    return out
