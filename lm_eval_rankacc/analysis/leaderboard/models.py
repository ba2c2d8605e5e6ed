"""One leaderboard row per model: the newest results file of each model
(the identity lm-eval recorded) wins each task, and each row gets a label
that tells clashing models apart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.outputs.names import short_name
from lm_eval_rankacc.outputs.results import ResultsFile, TaskResult


@dataclass
class Model:
    """One row: a model's newest results file and, per task, the winning task result."""

    newest: ResultsFile
    tasks: dict[str, TaskResult]


def newest_per_model(files: list[ResultsFile]) -> list[Model]:
    groups: dict[tuple, list[ResultsFile]] = {}
    for rf in files:
        groups.setdefault(rf.key, []).append(rf)
    models = []
    for group in groups.values():
        group.sort(key=lambda f: (f.stamp, str(f.path)), reverse=True)
        winners: dict[str, TaskResult] = {}
        for rf in group:
            for t, tr in rf.tasks.items():
                winners.setdefault(t, tr)
        models.append(Model(group[0], dict(sorted(winners.items()))))
    _label_files([m.newest for m in models])
    return models


def _label_files(files: list[ResultsFile]) -> None:
    """Set each file's label: the model's short name, then what tells clashing ones apart."""
    for f in files:
        f.label = short_name(f.name) if f.name else f.backend
        if f.adapter:
            f.label += f"+{short_name(f.adapter)}"
    for attr in ("backend", "dtype", "revision"):
        clash = [f for f in files if sum(g.label == f.label for g in files) > 1]
        values = {getattr(f, attr) for f in clash}
        if len(values) > 1:
            for f in clash:
                f.label += f" ({getattr(f, attr)})"
    for f in files:
        if sum(g.label == f.label for g in files) > 1:
            f.label += f" [{f.name or f.path.parent}]"


def metric_list(metrics: Sequence[str] | str) -> list[str]:
    metrics = [m.strip() for m in (metrics.split(",") if isinstance(metrics, str) else metrics) if m and m.strip()]
    if not metrics:
        raise RunError("--metric: name at least one metric (e.g. rank_acc,rank_acc_norm)")
    return metrics


def check_metrics(metrics: list[str], models: list[Model]) -> None:
    available = sorted({m for model in models for r in model.tasks.values() for m in r.values})
    unknown = [m for m in metrics if m not in available]
    if unknown:
        raise RunError(f"--metric: {', '.join(unknown)} reported by no run (available: {', '.join(available)})")
