"""Leaderboard: many models' rankacc results side by side (the paper's
Figure 1 and Tables 2-5), read from lm-eval's own results JSON files.

A run is an lm-eval ``--output_path`` folder (any backend; one or several
model sub-folders), a model sub-folder, or one results JSON. Per model (the
identity lm-eval recorded: backend, pretrained / model name, revision, dtype,
adapter) and task the newest results file wins; older ones are listed as
superseded. Values are lm-eval's own aggregates and standard errors, never
recomputed.

Runs of one task over different documents (another sample size, seed, task
version or data) are put in separate *document sets*, detected from the
per-task document count, task version and data-relevant task configuration
and, where both runs logged samples, from the documents' ids and hashes. With
more than one set, every cell of the task carries the set's letter and a note
says what differs. A task a model did not run is ``missing``; a metric a run
did not report (e.g. R~ without token counts) is ``n/a``: neither is ever 0.

``reference=`` adds, per task, the reference model's idealized accuracy
(median of R* / R~* over the beta grid, from :func:`analysis.idealized`) and
each model's alignment gap (that median minus the model's observed value),
over all documents (human ties included, like lm-eval's aggregate), for the
models that scored the reference's documents.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lm_eval_rankacc.report.tables import Report, Section, latex_escape
from lm_eval_rankacc.runs import RunError, load_run, read_samples, split_patterns

DEFAULT_METRICS = ("rank_acc", "rank_acc_norm")
#: Short labels of the core metrics (Markdown / HTML / figure); LaTeX in the second place.
METRIC_LABELS = {
    "rank_acc": ("R", "$R$"),
    "rank_acc_norm": ("R~", r"$\tilde{R}$"),
    "rank_acc_bytes": ("R_bytes", r"$R_\mathrm{bytes}$"),
    "pair_acc": ("pair", "pair"),
    "pair_acc_norm": ("pair~", r"$\widetilde{\mathrm{pair}}$"),
}
#: Idealized columns per observed metric: (key of the idealized report, column suffix, label).
IDEALIZED = {
    "rank_acc": ("R_star_median", "R_star", "gap", "R*", "gap"),
    "rank_acc_norm": ("R_norm_star_median", "R_norm_star", "gap_norm", "R~*", "gap~"),
}
IDENTITY = ("model", "backend", "pretrained", "revision", "dtype")
#: Keys of a task's configuration that decide which documents it scores.
_CONFIG_KEYS = ("dataset_path", "dataset_name", "dataset_kwargs", "test_split", "num_fewshot")
_METADATA_KEYS = ("sample_size", "seed", "data_files")
_RESULTS_RE = re.compile(r"^(?P<stem>.+)_(?P<ts>\d{4}-\d\d-\d\dT[^_/]+)\.json$")
_SCAN_DEPTH = 3  # RUN, RUN/*, RUN/*/*: an output folder of output folders of models


def metric_label(metric: str, latex: bool = False) -> str:
    labels = METRIC_LABELS.get(metric)
    if labels is None:
        return latex_escape(metric) if latex else metric
    return labels[1] if latex else labels[0]


# ----------------------------------------------------------------- reading results files
@dataclass
class TaskResult:
    """One task of one results file: lm-eval's aggregates and what decides its documents."""

    task: str
    values: dict[str, float | None]  # metric -> value; None: reported as N/A
    stderrs: dict[str, float | None]
    n: int | None
    version: Any
    config: dict[str, Any]
    docs: str | None = None  # digest of the samples' (id, doc_hash); None without samples
    samples: Path | None = None


@dataclass
class ResultsFile:
    """One lm-eval results JSON with its rankacc tasks."""

    path: Path
    stamp: str
    backend: str
    name: str | None
    revision: str | None
    dtype: str | None
    adapter: str | None
    model_name: str | None
    tasks: dict[str, TaskResult]
    info: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    @property
    def key(self) -> tuple:
        """What makes two results files runs of the same model."""
        return (self.backend, self.name or self.info.get("model_args_json", ""), self.revision, self.dtype,
                self.adapter)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _model_args(config: dict[str, Any]) -> dict[str, Any]:
    args = config.get("model_args")
    if isinstance(args, dict):
        return args
    out: dict[str, Any] = {}
    if isinstance(args, str):  # older lm-eval: "pretrained=x,dtype=float32"
        for part in args.split(","):
            key, sep, value = part.partition("=")
            if sep and key.strip():
                out[key.strip()] = value.strip()
    return out


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _short(name: str) -> str:
    return name.rstrip("/").split("/")[-1] or name


def _is_lm_eval_results(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("results"), dict)
        and any(k in data for k in ("configs", "versions", "n-samples", "config"))
    )


def _task_config(configs: dict[str, Any], task: str) -> dict[str, Any]:
    cfg = configs.get(task) if isinstance(configs, dict) else None
    if not isinstance(cfg, dict):
        return {}
    out = {k: cfg[k] for k in _CONFIG_KEYS if k in cfg}
    meta = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
    out.update({k: meta[k] for k in _METADATA_KEYS if k in meta})
    return out


def _docs_digest(ids: Sequence[str], hashes: Sequence[str]) -> str:
    text = "\n".join(sorted(f"{i}\t{h}" for i, h in zip(ids, hashes)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_results(path: str | Path, tasks: Sequence[str] | None = None) -> ResultsFile:
    """Read one lm-eval results JSON: its rankacc tasks (those reporting
    ``rank_acc``), the model identity lm-eval recorded, and per task the
    digest of the logged documents when the samples file of the same run is
    beside it. Raises :class:`RunError` for a file that is not lm-eval's."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunError(f"{path}: not an lm-eval results file (not readable JSON: {err})") from None
    if not _is_lm_eval_results(data):
        raise RunError(
            f"{path}: not an lm-eval results file (no 'results' with 'configs'/'versions'/'n-samples', "
            "as lm_eval --output_path writes)"
        )
    m = _RESULTS_RE.match(path.name)
    stamp = m.group("ts") if m else ""
    if not stamp and _number(data.get("date")) is not None:
        stamp = datetime.fromtimestamp(float(data["date"])).strftime("%Y-%m-%dT%H-%M-%S.%f")
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    args = _model_args(config)
    groups = set(data.get("groups") or {}) | set(data.get("group_subtasks") or {})
    n_samples = data.get("n-samples") if isinstance(data.get("n-samples"), dict) else {}
    versions = data.get("versions") if isinstance(data.get("versions"), dict) else {}
    found: dict[str, TaskResult] = {}
    for task, entry in data["results"].items():
        if task in groups or not isinstance(entry, dict) or not any(str(k).startswith("rank_acc,") for k in entry):
            continue
        if tasks and not any(fnmatch.fnmatchcase(task, p) for p in tasks):
            continue
        values: dict[str, float | None] = {}
        stderrs: dict[str, float | None] = {}
        for key, value in entry.items():
            metric, sep, filt = str(key).partition(",")
            if not sep or (filt != "none" and f"{metric.removesuffix('_stderr')},none" in entry):
                continue  # lm-eval's default filter wins over other filters
            if metric.endswith("_stderr"):
                stderrs[metric.removesuffix("_stderr")] = _number(value)
            else:
                values[metric] = _number(value)
        counts = n_samples.get(task) if isinstance(n_samples.get(task), dict) else {}
        n = counts.get("effective", entry.get("sample_len"))
        result = TaskResult(task, values, stderrs, n if isinstance(n, int) else None, versions.get(task),
                            _task_config(data.get("configs") or {}, task))
        samples = path.parent / f"samples_{task}_{stamp}.jsonl"
        if stamp and samples.is_file():
            ts = read_samples(samples, task)
            result.docs, result.samples = _docs_digest(ts.ids, ts.hashes), samples
            if result.n is None:
                result.n = len(ts)
        found[task] = result
    name = next((_text(args.get(k)) for k in ("pretrained", "model", "path", "engine") if _text(args.get(k))), None)
    dtype = _text(config.get("model_dtype")) or _text(args.get("dtype"))
    info = {
        "model_args_json": json.dumps(args, sort_keys=True, default=str),
        "model_sha": _text(config.get("model_sha")),
        "num_parameters": config.get("model_num_parameters"),
        "lm_eval_version": _text(data.get("lm_eval_version")),
        "all_tasks": sorted(t for t in data["results"] if t not in groups),
    }
    return ResultsFile(
        path=path, stamp=stamp, backend=_text(config.get("model")) or _text(data.get("model_source")) or "?",
        name=name, revision=_text(args.get("revision")) or _text(config.get("model_revision")),
        dtype=dtype.removeprefix("torch.") if dtype else None,
        adapter=_text(args.get("peft")) or _text(args.get("delta")), model_name=_text(data.get("model_name")),
        tasks=found, info=info,
    )


def find_results(path: str | Path) -> list[Path]:
    """The lm-eval results JSON files of a run argument: the file itself, or
    the ``<name>_<timestamp>.json`` files in the folder and up to two levels
    of sub-folders that are lm-eval's."""
    path = Path(path).expanduser()
    if not path.exists():
        raise RunError(f"{path}: no such file or folder")
    if path.is_file():
        if path.name.startswith("samples_") and path.suffix == ".jsonl":
            raise RunError(f"{path}: a samples file; pass the results_<timestamp>.json beside it, or its folder")
        return [path]
    candidates: list[Path] = []
    level = [path]
    for _ in range(_SCAN_DEPTH):
        candidates += sorted(p for d in level for p in d.glob("*.json") if p.is_file() and _RESULTS_RE.match(p.name))
        level = sorted(s for d in level for s in d.iterdir() if s.is_dir() and not s.name.startswith("."))
    found = []
    for p in candidates:
        try:
            ok = _is_lm_eval_results(json.loads(p.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            ok = False
        if ok:
            found.append(p)
    if not found:
        raise RunError(f"{path}: no lm-eval results here (no results_<timestamp>.json written by lm_eval "
                       f"--output_path, in the folder or {_SCAN_DEPTH - 1} levels of sub-folders)")
    return found


# ----------------------------------------------------------------- document sets
def _same_documents(a: TaskResult, b: TaskResult) -> bool:
    if a.n != b.n or (a.version is not None and b.version is not None and a.version != b.version):
        return False
    if a.docs is not None and b.docs is not None:
        return a.docs == b.docs  # the documents themselves, whatever the configuration says
    return a.config == b.config


def _setting(config: dict[str, Any], key: str) -> str:
    return repr(config[key]) if key in config else "default"


def _differences(a: TaskResult, b: TaskResult) -> str:
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
            if all(_same_documents(results[j], r) for j in g):
                g.append(i)
                break
        else:
            groups.append([i])
    return sorted(groups, key=lambda g: (-len(g), g[0]))


# ----------------------------------------------------------------- the leaderboard
def _unique_labels(files: list[ResultsFile]) -> None:
    for f in files:
        f.label = _short(f.name) if f.name else f.backend
        if f.adapter:
            f.label += f"+{_short(f.adapter)}"
    for attr in ("backend", "dtype", "revision"):
        clash = [f for f in files if sum(g.label == f.label for g in files) > 1]
        values = {getattr(f, attr) for f in clash}
        if len(values) > 1:
            for f in clash:
                f.label += f" ({getattr(f, attr)})"
    for f in files:
        if sum(g.label == f.label for g in files) > 1:
            f.label += f" [{f.name or f.path.parent}]"


def _date(stamp: str) -> str:
    m = re.match(r"(\d{4}-\d\d-\d\d)T(\d\d)-(\d\d)-(\d\d)", stamp)
    return f"{m.group(1)} {m.group(2)}:{m.group(3)}:{m.group(4)}" if m else stamp


def _column_type(rows: list[dict[str, Any]], key: str) -> str:
    values = [r.get(key) for r in rows if r.get(key) is not None]
    return "num" if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) else "text"


def _aliases(tasks: list[str], columns: list[str]) -> dict[str, str]:
    """Other names of the columns, lower case: the display headers ("rankacc_demo R~"),
    and with one task the bare metric names and labels ("rank_acc", "R")."""
    out = {c.lower(): c for c in columns}
    suffixes = {m: metric_label(m) for m in METRIC_LABELS}
    suffixes.update({v[1]: v[3] for v in IDEALIZED.values()})
    suffixes.update({v[2]: v[4] for v in IDEALIZED.values()})
    for column in columns:
        task, sep, name = column.partition("/")
        if not sep:
            continue
        for alias in {name, suffixes.get(name, name)}:
            out.setdefault(f"{task} {alias}".lower(), column)
            if len(tasks) == 1:
                out.setdefault(alias.lower(), column)
    return out


def _sort(rows: list[dict[str, Any]], columns: list[str], sort: str | None, default: str, tasks: list[str]) -> str:
    key = sort or default
    if key not in columns:
        key = _aliases(tasks, columns).get(key.strip().lower(), key)
    if key not in columns:
        raise RunError(f"--sort: no column {sort!r}; columns: {', '.join(columns)}")
    numeric = _column_type(rows, key) == "num"
    present = [r for r in rows if r.get(key) is not None]
    absent = [r for r in rows if r.get(key) is None]
    present.sort(key=lambda r: (-r[key], r["model"]) if numeric else (str(r[key]).lower(), r["model"]))
    rows[:] = present + absent  # missing values last, whichever the order
    return key


def leaderboard(
    runs: Sequence[str | Path],
    metrics: Sequence[str] | str = DEFAULT_METRICS,
    sort: str | None = None,
    reference: str | Path | None = None,
    betas: Sequence[float] | str | None = None,
    tasks: str | Sequence[str] | None = None,
) -> Report:
    """One row per model, one column per task and metric (value and standard
    error), the number of documents and the model identity; see the module
    docstring. Every problem with the input is a :class:`RunError`."""
    metrics = [m.strip() for m in (metrics.split(",") if isinstance(metrics, str) else metrics) if m and m.strip()]
    if not metrics:
        raise RunError("--metric: name at least one metric (e.g. rank_acc,rank_acc_norm)")
    if isinstance(runs, (str, Path)):
        runs = [runs]
    if not runs:
        raise RunError("name at least one run")
    patterns = split_patterns(tasks)
    files: list[ResultsFile] = []
    seen: set[Path] = set()
    notes: list[str] = []
    for run in runs:
        for p in find_results(run):
            if p.resolve() in seen:
                continue
            seen.add(p.resolve())
            rf = read_results(p, patterns)
            if rf.tasks:
                files.append(rf)
            elif Path(run).is_file():
                listed = ", ".join(rf.info["all_tasks"]) or "none"
                raise RunError(f"{p}: an lm-eval results file without a rankacc task (tasks: {listed})")
            else:
                notes.append(f"{p}: no rankacc task{' matching --tasks' if patterns else ''}, left out")
    if not files:
        raise RunError(f"no rankacc results{' matching --tasks' if patterns else ''} in "
                       f"{', '.join(str(r) for r in runs)}")

    # per model and task, the newest results file wins
    models: dict[tuple, list[ResultsFile]] = {}
    for rf in files:
        models.setdefault(rf.key, []).append(rf)
    chosen: list[tuple[ResultsFile, dict[str, TaskResult]]] = []  # (newest file, the winning task results)
    for group in models.values():
        group.sort(key=lambda f: (f.stamp, str(f.path)), reverse=True)
        winners: dict[str, TaskResult] = {}
        for rf in group:
            for t, tr in rf.tasks.items():
                winners.setdefault(t, tr)
        chosen.append((group[0], dict(sorted(winners.items()))))
    _unique_labels([rf for rf, _ in chosen])
    label_of = {rf.key: rf.label for rf, _ in chosen}
    winners_of = {rf.key: trs for rf, trs in chosen}

    all_tasks = sorted({t for _, trs in chosen for t in trs})
    available = sorted({m for _, trs in chosen for r in trs.values() for m in r.values})
    unknown = [m for m in metrics if m not in available]
    if unknown:
        raise RunError(f"--metric: {', '.join(unknown)} reported by no run (available: {', '.join(available)})")

    # document sets per task
    doc_sets: dict[str, dict[int, str]] = {}
    for task in all_tasks:
        holders = [k for k, (_, trs) in enumerate(chosen) if task in trs]
        results = [chosen[k][1][task] for k in holders]
        sets = document_sets(results)
        doc_sets[task] = {holders[j]: chr(ord("A") + s) for s, g in enumerate(sets) for j in g}
        if len(sets) > 1:
            parts = [f"{chr(ord('A') + s)} = {', '.join(chosen[holders[j]][0].label for j in g)} "
                     f"(n {results[g[0]].n})" for s, g in enumerate(sets)]
            diffs = [f"{chr(ord('A') + s)} vs A: {_differences(results[sets[0][0]], results[g[0]])}"
                     for s, g in enumerate(sets) if s]
            notes.append(f"{task}: scored on {len(sets)} different document sets, not comparable across sets: "
                         f"{'; '.join(parts)}. {'; '.join(diffs)}")
        for g in sets:
            unverified = [chosen[holders[j]][0].label for j in g if results[j].docs is None]
            if len(g) > 1 and unverified:
                notes.append(f"{task}: {', '.join(unverified)}: no samples logged, so the documents are matched "
                             "by count, task version and configuration only")

    # the reference: idealized accuracy (analysis.idealized) and alignment gap
    ideal_metrics = [m for m in metrics if m in IDEALIZED]
    ref_tasks: dict[str, tuple[dict[str, Any], TaskResult]] = {}
    if reference is not None:
        if not ideal_metrics:
            raise RunError("--reference needs rank_acc or rank_acc_norm among --metric")
        ref_run, ref_tasks, ref_notes, betas_used = _reference(reference, patterns, betas)
        missing = [t for t in all_tasks if t not in ref_tasks]
        if missing:
            notes.append(f"reference {ref_run.label}: no samples of {', '.join(missing)}, so no idealized "
                         "accuracy there")
        notes.extend(ref_notes)

    # rows
    columns = list(IDENTITY)
    for task in all_tasks:
        for m in metrics:
            columns += [f"{task}/{m}", f"{task}/{m}_stderr"]
        columns += [f"{task}/n", f"{task}/docs"]
        if reference is not None:
            for m in ideal_metrics:
                columns += [f"{task}/{IDEALIZED[m][1]}", f"{task}/{IDEALIZED[m][2]}"]
    rows = []
    for k, (rf, trs) in enumerate(chosen):
        row: dict[str, Any] = {"model": rf.label, "backend": rf.backend, "pretrained": rf.name,
                               "revision": rf.revision, "dtype": rf.dtype}
        if rf.info.get("model_sha"):
            row["revision"] = f"{rf.revision or ''}@{rf.info['model_sha'][:10]}".lstrip("@")
        for task in all_tasks:
            tr = trs.get(task)
            for m in metrics:
                row[f"{task}/{m}"] = None if tr is None else tr.values.get(m)
                row[f"{task}/{m}_stderr"] = None if tr is None else tr.stderrs.get(m)
            row[f"{task}/n"] = None if tr is None else tr.n
            row[f"{task}/docs"] = doc_sets[task].get(k)
            if reference is None:
                continue
            ideal = ref_tasks.get(task)
            same = tr is not None and ideal is not None and _same_documents(ideal[1], tr)
            if tr is not None and ideal is not None and not same:
                notes.append(f"{task}: {rf.label} scored other documents than the reference "
                             f"({_differences(ideal[1], tr)}): no alignment gap")
            for m in ideal_metrics:
                key, star, gap, _, _ = IDEALIZED[m]
                value = None if ideal is None else ideal[0].get(key)
                observed = row[f"{task}/{m}"]
                row[f"{task}/{star}"] = value
                row[f"{task}/{gap}"] = (value - observed) if same and value is not None and observed is not None \
                    else None
        rows.append(row)
    sort_key = _sort(rows, columns, sort, f"{all_tasks[0]}/{metrics[0]}", all_tasks)

    # the results files behind the rows, and the superseded ones
    order = [r["model"] for r in rows]
    run_columns = ["model", "status", "tasks", "date", "results_file", "samples", "backend", "pretrained",
                   "revision", "dtype", "num_parameters", "lm_eval_version"]
    run_rows = []
    for rf in sorted(files, key=lambda f: (order.index(label_of[f.key]), f.stamp)):
        winners = winners_of[rf.key]
        lost = sorted(t for t, tr in rf.tasks.items() if winners[t] is not tr)
        status = "used" if not lost else ("superseded" if len(lost) == len(rf.tasks) else
                                          f"superseded for {', '.join(lost)}")
        run_rows.append({
            "model": label_of[rf.key], "status": status, "tasks": ", ".join(sorted(rf.tasks)),
            "date": _date(rf.stamp), "results_file": str(rf.path),
            "samples": "yes" if any(t.samples for t in rf.tasks.values()) else "no",
            "backend": rf.backend, "pretrained": rf.name, "revision": rf.revision, "dtype": rf.dtype,
            "num_parameters": rf.info.get("num_parameters"), "lm_eval_version": rf.info.get("lm_eval_version"),
        })
        if lost:
            newer = sorted({str(f.path.name) for f in files if f.key == rf.key and f is not rf
                            and any(winners[t] is f.tasks.get(t) for t in lost)})
            notes.append(f"superseded: {label_of[rf.key]}: {rf.path} ({', '.join(lost)}); newer: {', '.join(newer)}")
    meta: dict[str, Any] = {
        "models": len(rows), "tasks": all_tasks, "metrics": metrics,
        "sort": f"{sort_key} ({'descending' if _column_type(rows, sort_key) == 'num' else 'ascending'}, "
                "missing last)",
    }
    if reference is not None:
        meta.update({"reference": f"{ref_run.label} ({ref_run.folder})", "betas": list(betas_used)})
    return Report("leaderboard", "Ranking-accuracy leaderboard", meta,
                  [Section("leaderboard", columns, rows), Section("runs", run_columns, run_rows)], notes)


def _reference(reference: str | Path, patterns: list[str] | None, betas: Sequence[float] | str | None):
    """The reference run (with samples), and per task the row of
    :func:`analysis.idealized` over all documents with the task's document
    identity (digest of the samples, count, version, configuration)."""
    from lm_eval_rankacc import analysis

    ref_run = load_run(reference, patterns, require_match=False)
    report = analysis.idealized(ref_run, (), **({} if betas is None else {"betas": betas}))
    beside: dict[Path, TaskResult] = {}
    for p in find_results(ref_run.folder):
        for tr in read_results(p, patterns).tasks.values():
            if tr.samples is not None:
                beside[tr.samples.resolve()] = tr
    out = {}
    for task, ts in ref_run.tasks.items():
        rows = [r for r in report.sections[0].rows if r["task"] == task]
        row = next((r for r in rows if r["ties"] == "included"), rows[0])  # all documents
        tr = beside.get(ts.path.resolve()) or TaskResult(task, {}, {}, len(ts), None, {})
        tr.docs = _docs_digest(ts.ids, ts.hashes)
        out[task] = (row, tr)
    ref_run.label = _short(ref_run.label)
    notes = [f"reference: {n}" for n in report.notes if not n.startswith("reference: ")]
    return ref_run, out, notes, report.meta["betas"]


# ----------------------------------------------------------------- display (md, latex, html)
def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def display(report: Report, fmt: str = "md") -> tuple[list[str], list[list[str]], list[str]]:
    """The leaderboard as display text: headers, rows of cells, and the
    column key each display column sorts by. ``fmt`` "latex" escapes the
    text and uses LaTeX labels; "md" and "html" give plain text."""
    latex = fmt == "latex"
    esc = latex_escape if latex else (lambda s: s)
    pm = r" $\pm$ " if latex else " \u00b1 "
    section = report.sections[0]
    tasks, metrics = report.meta["tasks"], report.meta["metrics"]
    reference = "reference" in report.meta
    headers = [esc(c) for c in IDENTITY]
    keys = list(IDENTITY)
    for task in tasks:
        for m in metrics:
            headers.append(f"{esc(task)} {metric_label(m, latex)}")
            keys.append(f"{task}/{m}")
        headers.append(f"{esc(task)} n")
        keys.append(f"{task}/n")
        if reference:
            for m in metrics:
                if m in IDEALIZED:
                    _, star, gap, star_label, gap_label = IDEALIZED[m]
                    headers += [f"{esc(task)} {esc(star_label)}", f"{esc(task)} {esc(gap_label)}"]
                    keys += [f"{task}/{star}", f"{task}/{gap}"]
    several = {t: len({r.get(f"{t}/docs") for r in section.rows} - {None}) > 1 for t in tasks}
    body = []
    for row in section.rows:
        cells = [esc(str(row.get(c))) if row.get(c) is not None else "n/a" for c in IDENTITY]
        for task in tasks:
            present = row.get(f"{task}/n") is not None
            tag = f" [{row.get(f'{task}/docs')}]" if several[task] and present else ""
            for m in metrics:
                value, err = row.get(f"{task}/{m}"), row.get(f"{task}/{m}_stderr")
                if not present:
                    cells.append("missing")
                elif value is None:
                    cells.append("n/a")
                else:
                    cells.append(_fmt(value) + (pm + _fmt(err) if err is not None else "") + esc(tag))
            cells.append(str(row[f"{task}/n"]) + esc(tag) if present else "missing")
            if reference:
                for m in metrics:
                    if m not in IDEALIZED:
                        continue
                    _, star, gap, _, _ = IDEALIZED[m]
                    star_v, gap_v = row.get(f"{task}/{star}"), row.get(f"{task}/{gap}")
                    cells.append("n/a" if star_v is None else _fmt(star_v))
                    if gap_v is not None:
                        cells.append(_fmt(gap_v))
                    elif present and star_v is not None and row.get(f"{task}/{m}") is not None:
                        cells.append("other docs")
                    else:
                        cells.append("missing" if not present else "n/a")
        body.append(cells)
    return headers, body, keys


def legend(report: Report) -> str:
    """One paragraph explaining the cells (Markdown / HTML)."""
    text = ("R: share of documents ranked correctly on the summed log-probability (rank_acc); R~: the same "
            "per token (rank_acc_norm); value \u00b1 lm-eval's standard error; n: documents scored. "
            "'missing': the model has no result for the task; 'n/a': the run did not report the value.")
    if any(len({r.get(f"{t}/docs") for r in report.sections[0].rows} - {None}) > 1 for t in report.meta["tasks"]):
        text += " [A], [B], ...: the task was scored on different document sets; compare only within one set."
    if "reference" in report.meta:
        betas = ", ".join(f"{b:g}" for b in report.meta["betas"])
        text += (f" R* / R~*: idealized accuracy of the reference {report.meta['reference']}, median over beta in "
                 f"{{{betas}}}, over all documents; gap: that median minus the model's R / R~ ('other docs': the "
                 "model scored other documents than the reference).")
    return text


def markdown(report: Report) -> list[str]:
    headers, body, _ = display(report, "md")
    cells = [[c.replace("|", "\\|") for c in row] for row in body]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in cells]
    lines += ["", legend(report), "", "Runs:", ""]
    runs = report.sections[1]
    for r in runs.rows:
        lines.append(f"- {r['model']}: {r['status']}, {r['date']}, {r['results_file']}"
                     f"{'' if r['samples'] == 'yes' else ' (no samples)'}")
    return lines


def latex(report: Report) -> list[str]:
    headers, body, _ = display(report, "latex")
    lines = [r"\begin{tabular}{" + "l" * len(IDENTITY) + "r" * (len(headers) - len(IDENTITY)) + "}",
             r"\toprule", " & ".join(headers) + r" \\", r"\midrule"]
    lines += [" & ".join(r) + r" \\" for r in body]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return lines
