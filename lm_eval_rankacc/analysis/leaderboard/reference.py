"""The reference of a leaderboard: per task its idealized accuracy (the
median of R* / R~* over the beta grid, :func:`~lm_eval_rankacc.analysis.idealized`)
over all documents, and each model's alignment gap to it on the same documents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_eval_rankacc.analysis.idealized import idealized
from lm_eval_rankacc.analysis.leaderboard.columns import IDEALIZED
from lm_eval_rankacc.analysis.leaderboard.document_sets import differences, docs_digest, same_documents
from lm_eval_rankacc.analysis.leaderboard.reading import read_or_skip
from lm_eval_rankacc.outputs.names import short_name
from lm_eval_rankacc.outputs.results import TaskResult, find_results
from lm_eval_rankacc.outputs.runs import Run, load_run


@dataclass
class Reference:
    """The reference run, per task its idealized row over all documents with
    the task's document identity, and the beta grid used."""

    run: Run
    tasks: dict[str, tuple[dict[str, Any], TaskResult]]
    betas: list[float]


def read_reference(reference: str | Path, patterns: list[str] | None, betas: Sequence[float] | str | None,
               all_tasks: list[str], notes: list[str], skip_bad: bool = False,
               convention: str = "paper") -> Reference:
    """The reference run (with samples), and per task the row of
    :func:`idealized` (under ``convention``) over all documents with the
    task's document identity (digest of the samples, count, version,
    configuration)."""
    ref_run = load_run(reference, patterns, require_match=False)
    report = idealized(ref_run, (), **({} if betas is None else {"betas": betas}), convention=convention,
                       bootstrap=0)  # the leaderboard shows the median R*, not the gap intervals
    beside: dict[Path, TaskResult] = {}
    for p in find_results(ref_run.folder, []):  # the folder's notes are the reference run's own
        rf = read_or_skip(p, patterns, skip_bad, notes)
        for tr in (rf.tasks.values() if rf is not None else ()):
            if tr.samples is not None:
                beside[tr.samples.resolve()] = tr
    tasks = {}
    for task, ts in ref_run.tasks.items():
        rows = [r for r in report.sections[0].rows if r["task"] == task]
        row = next((r for r in rows if r["ties"] == "included"), rows[0])  # all documents
        tr = beside.get(ts.path.resolve()) or TaskResult(task, {}, {}, len(ts), None, {})
        tr.docs = docs_digest(ts.ids, ts.hashes)
        tasks[task] = (row, tr)
    ref_run.label = short_name(ref_run.label)
    missing = [t for t in all_tasks if t not in tasks]
    if missing:
        notes.append(f"reference {ref_run.label}: no samples of {', '.join(missing)}, so no idealized "
                     "accuracy there")
    notes.extend(f"reference: {n}" for n in report.notes if not n.startswith("reference: "))
    return Reference(ref_run, tasks, report.meta["betas"])


def gap_cells(row: dict[str, Any], task: str, tr: TaskResult | None, ref: Reference, ideal_metrics: list[str],
               notes: list[str]) -> None:
    """The reference's idealized accuracy and, on the reference's documents, the gap."""
    ideal = ref.tasks.get(task)
    same = tr is not None and ideal is not None and same_documents(ideal[1], tr)
    if tr is not None and ideal is not None and not same:
        notes.append(f"{task}: {row['model']} scored other documents than the reference "
                     f"({differences(ideal[1], tr)}): no alignment gap")
    for m in ideal_metrics:
        key, star, gap, _, _ = IDEALIZED[m]
        value = None if ideal is None else ideal[0].get(key)
        observed = row[f"{task}/{m}"]
        row[f"{task}/{star}"] = value
        row[f"{task}/{gap}"] = (value - observed) if same and value is not None and observed is not None else None
