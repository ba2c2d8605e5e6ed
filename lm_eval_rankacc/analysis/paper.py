"""The published numbers of Chen et al. (2024), Tables 1-6, as reference
rows of the leaderboard (``rankacc leaderboard --paper``).

The numbers are package data, ``lm_eval_rankacc/analysis/paper_tables.json``: per
published line its table, the dataset and split as the paper names them, the
rankacc task scoring the same dataset and split, the model as printed, the
values (fractions of the printed percentages: R as ``rank_acc``, R~ as
``rank_acc_norm``, and for Tables 1 and 6 the idealized R* / R~* minimum,
median and maximum over the beta grid) and the convention
``paper (published)``; per task a note on where our documents or rules
differ from the paper's; and per table, task and set of values whether the
authors' released scripts as published can produce them (:func:`provenance`:
Table 5, Table 6's R and R~ and the train-split columns of HH-RLHF and SHP
they cannot). Nothing here rescores them.

A leaderboard row is one model of one row group (the JSON's ``row_group``):
Tables 2-5 (the full results of App. C.3) give one row per model across their
tasks, Tables 1 and 6 one row each per model, since they repeat Alpaca Farm
with the idealized accuracy. The row is labelled ``<model> (paper, Table N)``
and carries ``backend`` and ``<task>/docs`` :data:`PUBLISHED`: it has no
standard error, no document count and no document set of the user's.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

#: ``backend`` and ``<task>/docs`` of a published row, and the status of its entry among the runs.
PUBLISHED = "paper"
DATA_FILE = "paper_tables.json"
CITATION = "Chen et al. (2024)"
#: The paper's beta grid of the idealized accuracy (App. C.4).
PAPER_BETAS = "{0.01, 0.1, 1, 5, 10}"


@lru_cache(maxsize=1)
def tables() -> dict[str, Any]:
    """The package data: source, about, convention, tables, tasks and rows (read once)."""
    text = resources.files(__package__).joinpath(DATA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def published_rows(tasks: str | Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The published lines (copies), of ``tasks`` (a name or names) only when given, in the file's order.

    Examples:
        >>> rows = published_rows("rankacc_hh_rlhf_test")
        >>> rows[0]["table"], rows[0]["model"], rows[0]["values"]["rank_acc"]
        (2, 'Gemma-7b-it', 0.467)
    """
    wanted = None if tasks is None else {tasks} if isinstance(tasks, str) else set(tasks)
    return [copy.deepcopy(r) for r in tables()["rows"] if wanted is None or r["task"] in wanted]


def published_tasks() -> list[str]:
    """The rankacc tasks the paper publishes numbers for."""
    return sorted({r["task"] for r in tables()["rows"]})


def comparable(task: str) -> str:
    """Where ``task``'s documents or rules differ from those of the paper's numbers."""
    return tables()["tasks"][task]["comparable"]


#: The value keys of a published line by kind (``released_scripts`` names the kind).
VALUE_KINDS = {"observed": ("R", "R~"), "idealized": ("R*", "R~*")}


def provenance(table: int, task: str) -> list[dict[str, Any]]:
    """Whether the released scripts as published can produce Table ``table``'s values of ``task``: one entry
    per kind of value (``observed`` R, R~; ``idealized`` R*, R~*) with ``produced`` and ``why``.

    Examples:
        >>> [(e["values"], e["produced"]) for e in provenance(6, "rankacc_alpaca_farm_val_ties")]
        [('observed', False), ('idealized', True)]
        >>> provenance(2, "rankacc_hh_rlhf_train")[0]["why"]
        'calculate_calibration_metrics.py lists Anthropic/hh-rlhf with the test split only'
    """
    return [dict(e) for e in tables()["released_scripts"]["columns"] if (e["table"], e["task"]) == (table, task)]


def _provenance_text(table: int, task: str) -> str:
    """``Table 6: R, R~ not from the released scripts as published (...); R*, R~* from them (...)``."""
    parts = []
    for e in provenance(table, task):
        names = ", ".join(VALUE_KINDS[e["values"]])
        parts.append(f"{names} {'from' if e['produced'] else 'not from'} the released scripts as published "
                     f"({e['why']})")
    return f"Table {table}: " + "; ".join(parts)


@dataclass
class PaperRows:
    """The published rows of a leaderboard: table rows, their entries among the runs, notes, and one
    line saying what they are (the report's ``paper`` metadata)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    summary: str = ""


def _tables_text(numbers: Sequence[int]) -> str:
    """``Table 2`` or ``Tables 2, 4``."""
    return f"Table{'s' if len(numbers) > 1 else ''} {', '.join(str(t) for t in numbers)}"


def _label(model: str, numbers: Sequence[int]) -> str:
    return f"{model} ({PUBLISHED}, {_tables_text(numbers)})"


def _groups(lines: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The published lines by (row group, model), in the file's order."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for line in lines:
        group = tables()["tables"][str(line["table"])]["row_group"]
        groups.setdefault((group, line["model"]), []).append(line)
    return groups


def _cells(lines: list[dict[str, Any]], tasks: Sequence[str], metrics: Sequence[str],
           idealized: Mapping[str, tuple[str, str, str]]) -> dict[str, Any]:
    """Every task column of one row: a published value or None; n and standard errors None;
    with ``idealized`` (metric -> (value key, R* column, gap column)) the published median
    idealized accuracy and the paper's gap (that median minus the published value)."""
    by_task = {line["task"]: line["values"] for line in lines}
    cells: dict[str, Any] = {}
    for task in tasks:
        values = by_task.get(task)
        for m in metrics:
            cells[f"{task}/{m}"] = None if values is None else values.get(m)
            cells[f"{task}/{m}_stderr"] = None
        cells[f"{task}/n"] = None
        cells[f"{task}/docs"] = None if values is None else PUBLISHED
        for m, (key, star, gap) in idealized.items():
            median = None if values is None else values.get(key)
            observed = None if values is None else values.get(m)
            cells[f"{task}/{star}"] = median
            cells[f"{task}/{gap}"] = None if median is None or observed is None else round(median - observed, 10)
    return cells


def _run_entry(label: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    pages = {t: tables()["tables"][str(t)]["page"] for t in sorted({line["table"] for line in lines})}
    where = "; ".join(f"Table {t}, p. {p}" for t, p in pages.items())
    return {"model": label, "status": "published", "tasks": ", ".join(sorted({line["task"] for line in lines})),
            "date": "2024", "results_file": f"{CITATION}, arXiv:2405.19534: {where}", "samples": "no",
            "backend": PUBLISHED, "pretrained": None, "revision": None, "dtype": None, "num_parameters": None,
            "lm_eval_version": None}


def _notes(tasks: Sequence[str], lines: list[dict[str, Any]]) -> list[str]:
    """Per task with published rows: the tables, their provenance and what differs; the idealized triples."""
    notes = []
    for task in tasks:
        own = [line for line in lines if line["task"] == task]
        if not own:
            continue
        sources = sorted({(line["table"], line["dataset"], line["split"]) for line in own})
        named = "; ".join(f"Table {t} ({d}, {s})" for t, d, s in sources)
        made = ". ".join(_provenance_text(t, task) for t in sorted({line["table"] for line in own}))
        notes.append(f"{task}: published rows of {CITATION}, {named}: the paper's values as printed, not rescored "
                     f"here (convention: {tables()['convention']}). {made}. {comparable(task)}")
        ideal = [line for line in own if "R_star_median" in line["values"]]
        if ideal:
            triples = "; ".join(f"{line['model']} (Table {line['table']}): R~* {_triple(line, 'R_norm_star')}, "
                                f"R* {_triple(line, 'R_star')}" for line in ideal)
            notes.append(f"{task}: published idealized accuracy, min / median / max over beta in "
                         f"{PAPER_BETAS}: {triples}")
    return notes


def _triple(line: dict[str, Any], name: str) -> str:
    return " / ".join(f"{line['values'][f'{name}_{k}']:.2f}" for k in ("min", "median", "max"))


def leaderboard_rows(tasks: Sequence[str], metrics: Sequence[str],
                     idealized: Mapping[str, tuple[str, str, str]] | None = None) -> PaperRows:
    """The published rows for the leaderboard's ``tasks`` and ``metrics``
    (columns as :func:`lm_eval_rankacc.analysis.leaderboard` lays them out;
    ``idealized``: metric -> (key of the idealized value, R* column suffix, gap
    column suffix) when the table has those columns), their entries among the
    runs and the notes. A row of a task's table is left out when the paper
    publishes none of ``metrics`` for it; a note says so."""
    idealized = idealized or {}
    lines = [line for line in published_rows(tasks) if any(m in line["values"] for m in metrics)]
    out = PaperRows()
    for (_, model), group in _groups(lines).items():
        label = _label(model, sorted({line["table"] for line in group}))
        row = {"model": label, "backend": PUBLISHED, "pretrained": None, "revision": None, "dtype": None,
               **_cells(group, tasks, metrics, idealized), "convention": tables()["convention"]}
        out.rows.append(row)
        out.runs.append(_run_entry(label, group))
    out.notes = _notes(tasks, lines)
    numbers = sorted({line["table"] for line in lines})
    out.summary = (f"{len(out.rows)} published rows of {CITATION}{', ' + _tables_text(numbers) if numbers else ''}"
                   ": the paper's values as printed, not rescored here (which the released scripts can produce: "
                   "the notes)")
    silent = [t for t in tasks if t not in {line["task"] for line in lines}]
    if silent:
        out.notes.append(f"--paper: {CITATION} publish no {', '.join(metrics)} for {', '.join(silent)} "
                         f"(published: R and R~ of {', '.join(published_tasks())})")
    return out
