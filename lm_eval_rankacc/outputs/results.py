"""lm-eval's results JSON: the rankacc tasks' aggregates and standard
errors, what decides each task's documents, and the model identity lm-eval
recorded; finding the results files of a run argument.

The file names are :mod:`lm_eval_rankacc.outputs.names`; reading the samples
files is :mod:`lm_eval_rankacc.outputs.samples`. Every problem is a
:class:`~lm_eval_rankacc.core.errors.RunError` with a one-line message.
"""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lm_eval_rankacc import PROVENANCE_KEY
from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.outputs.names import results_files, results_stamp, samples_file_for, samples_files, samples_name

#: Keys of a task's configuration that decide which documents it scores.
CONFIG_KEYS = ("dataset_path", "dataset_name", "dataset_kwargs", "test_split", "num_fewshot")
#: Keys of a rankacc task's ``metadata`` that decide which documents it scores.
METADATA_KEYS = ("sample_size", "seed", "data_files")
SCAN_DEPTH = 3  # RUN, RUN/*, RUN/*/*: an output folder of output folders of models


# ----------------------------------------------------------------- results JSON
@dataclass
class TaskResult:
    """One task of one results file: lm-eval's aggregates and what decides its documents."""

    task: str
    values: dict[str, float | None]  # metric -> value; None: reported as N/A
    stderrs: dict[str, float | None]
    n: int | None
    version: Any
    config: dict[str, Any]
    docs: str | None = None  # digest of the samples' (id, doc_hash); None until read from the samples
    samples: Path | None = None  # the samples file of the same run, when beside the results file
    #: what produced the numbers (the task metadata's ``PROVENANCE_KEY``): rankacc_version, convention and
    #: the loader options used; empty for runs made before rankacc recorded it
    provenance: dict[str, Any] = field(default_factory=dict)


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


def is_lm_eval_results(data: Any) -> bool:
    """Whether parsed JSON is a results file written by ``lm_eval --output_path``."""
    return (
        isinstance(data, dict)
        and isinstance(data.get("results"), dict)
        and any(k in data for k in ("configs", "versions", "n-samples", "config"))
    )


def task_metadata(config: Any) -> dict[str, Any]:
    """The document-deciding keys of one task's ``metadata`` (:data:`METADATA_KEYS`)."""
    meta = config.get("metadata") if isinstance(config, dict) else None
    if not isinstance(meta, dict):
        return {}
    return {k: meta[k] for k in METADATA_KEYS if k in meta}


def task_provenance(config: Any) -> dict[str, Any]:
    """What the task's loader recorded in its ``metadata`` (``PROVENANCE_KEY``); {} if nothing."""
    meta = config.get("metadata") if isinstance(config, dict) else None
    record = meta.get(PROVENANCE_KEY) if isinstance(meta, dict) else None
    return dict(record) if isinstance(record, dict) else {}


def rankacc_versions(tasks: dict[str, TaskResult]) -> str | None:
    """The rankacc version(s) that produced the tasks of one results file ("0.1.0"; "0.1.0, 0.2.0" for
    a mix); None when no task recorded one (an older run)."""
    versions = sorted({str(v) for tr in tasks.values() if (v := tr.provenance.get("rankacc_version"))})
    return ", ".join(versions) or None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


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


def _task_config(configs: dict[str, Any], task: str) -> dict[str, Any]:
    cfg = configs.get(task) if isinstance(configs, dict) else None
    if not isinstance(cfg, dict):
        return {}
    out = {k: cfg[k] for k in CONFIG_KEYS if k in cfg}
    out.update(task_metadata(cfg))
    return out


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunError(f"{path}: not an lm-eval results file (not readable JSON: {err})") from None
    if not is_lm_eval_results(data):
        raise RunError(
            f"{path}: not an lm-eval results file (no 'results' with 'configs'/'versions'/'n-samples', "
            "as lm_eval --output_path writes)"
        )
    return data


def _stamp(path: Path, data: dict[str, Any]) -> str:
    stamp = results_stamp(path.name) or ""
    if not stamp and _number(data.get("date")) is not None:
        stamp = datetime.fromtimestamp(float(data["date"])).strftime("%Y-%m-%dT%H-%M-%S.%f")
    return stamp


def predict_only_tasks(data: dict[str, Any]) -> list[str]:
    """The tasks of a results JSON that lm-eval ran with ``--predict_only``
    (its ``bypass`` metric in place of the task's own: no metrics, no scores)."""
    configs = _dict(data.get("configs"))
    return sorted(t for t, cfg in configs.items()
                  if isinstance(cfg, dict) and cfg.get("metric_list") == [{"metric": "bypass"}])


def _groups(data: dict[str, Any]) -> set[str]:
    return set(data.get("groups") or {}) | set(data.get("group_subtasks") or {})


def _aggregates(entry: dict[str, Any]) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """Values and standard errors per metric of one task's ``results`` entry."""
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
    return values, stderrs


def _task_results(path: Path, data: dict[str, Any], stamp: str, tasks: Sequence[str] | None) -> dict[str, TaskResult]:
    """The rankacc tasks (those reporting ``rank_acc``) of a results file matching ``tasks``."""
    groups = _groups(data)
    n_samples, versions = _dict(data.get("n-samples")), _dict(data.get("versions"))
    found: dict[str, TaskResult] = {}
    for task, entry in data["results"].items():
        if task in groups or not isinstance(entry, dict) or not any(str(k).startswith("rank_acc,") for k in entry):
            continue
        if tasks and not any(fnmatch.fnmatchcase(task, p) for p in tasks):
            continue
        values, stderrs = _aggregates(entry)
        n = _dict(n_samples.get(task)).get("effective", entry.get("sample_len"))
        found[task] = TaskResult(task, values, stderrs, n if isinstance(n, int) else None, versions.get(task),
                                 _task_config(data.get("configs") or {}, task),
                                 samples=samples_file_for(path, task, stamp),
                                 provenance=task_provenance(_dict(data.get("configs")).get(task)))
    return found


def read_results(path: str | Path, tasks: Sequence[str] | None = None) -> ResultsFile:
    """Read one lm-eval results JSON: its rankacc tasks (those reporting
    ``rank_acc``, matching the glob patterns ``tasks``), the model identity
    lm-eval recorded, and per task the samples file of the same run when it
    is beside it. Raises :class:`RunError` for a file that is not lm-eval's."""
    path = Path(path)
    data = _load(path)
    stamp = _stamp(path, data)
    found = _task_results(path, data, stamp, tasks)
    config = _dict(data.get("config"))
    args = _model_args(config)
    name = next((_text(args.get(k)) for k in ("pretrained", "model", "path", "engine") if _text(args.get(k))), None)
    dtype = _text(config.get("model_dtype")) or _text(args.get("dtype"))
    groups = _groups(data)
    info = {
        "model_args_json": json.dumps(args, sort_keys=True, default=str),
        "model_sha": _text(config.get("model_sha")),
        "num_parameters": config.get("model_num_parameters"),
        "lm_eval_version": _text(data.get("lm_eval_version")),
        "rankacc_version": rankacc_versions(found),
        "all_tasks": sorted(t for t in data["results"] if t not in groups),
        "predict_only": predict_only_tasks(data),
    }
    return ResultsFile(
        path=path, stamp=stamp, backend=_text(config.get("model")) or _text(data.get("model_source")) or "?",
        name=name, revision=_text(args.get("revision")) or _text(config.get("model_revision")),
        dtype=dtype.removeprefix("torch.") if dtype else None,
        adapter=_text(args.get("peft")) or _text(args.get("delta")), model_name=_text(data.get("model_name")),
        tasks=found, info=info,
    )


def _scan_kind(path: Path) -> str:
    """``results`` (lm-eval's), ``other`` (valid JSON, not lm-eval's) or
    ``unreadable`` (truncated, not JSON, not UTF-8, no access) for a file
    named like a results file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "unreadable"
    return "results" if is_lm_eval_results(data) else "other"


def _orphan_samples(folder: Path, stamps: set[str]) -> list[Path]:
    """Samples files in ``folder`` whose run left no results file (another timestamp)."""
    return [p for p in samples_files(folder) if samples_name(p.name)[1] not in stamps]


def _scan_folder(folder: Path, notes: list[str]) -> list[Path]:
    """The results files of one folder (lm-eval's, and those that cannot be
    read: the reader names them); what is left out goes to ``notes``."""
    found: list[Path] = []
    for p in results_files(folder):
        kind = _scan_kind(p)
        if kind == "other":
            notes.append(f"left out: {p}: named like a results file but not lm-eval's (no 'results' with "
                         "'configs'/'versions'/'n-samples')")
        else:
            found.append(p)
    orphans = _orphan_samples(folder, {results_stamp(p.name) for p in results_files(folder)})
    if orphans:
        notes.append(f"left out: {folder}: {len(orphans)} samples file(s) without the results JSON of their run "
                     f"({orphans[0].name}{', ...' if len(orphans) > 1 else ''})")
    return found


def find_results(path: str | Path, notes: list[str] | None = None) -> list[Path]:
    """The lm-eval results JSON files of a run argument: the file itself, or
    the ``<name>_<timestamp>.json`` files in the folder and up to two levels
    of sub-folders that are lm-eval's.

    Nothing found is dropped silently: a file named like a results file that
    cannot be read (truncated, not JSON) is returned, so that reading it
    names it in an error; one that is valid JSON but not lm-eval's results,
    and samples files whose results file is missing, are named in ``notes``."""
    path = Path(path).expanduser()
    notes = [] if notes is None else notes
    if not path.exists():
        raise RunError(f"{path}: no such file or folder")
    if path.is_file():
        if samples_name(path.name):
            raise RunError(f"{path}: a samples file; pass the results_<timestamp>.json beside it, or its folder")
        return [path]
    found: list[Path] = []
    left: list[str] = []
    level = [path]
    for _ in range(SCAN_DEPTH):
        for folder in level:
            found += _scan_folder(folder, left)
        level = sorted(s for d in level for s in d.iterdir() if s.is_dir() and not s.name.startswith("."))
    if not found:
        raise RunError(f"{path}: no lm-eval results here (no results_<timestamp>.json written by lm_eval "
                       f"--output_path, in the folder or {SCAN_DEPTH - 1} levels of sub-folders)")
    notes.extend(left)
    return found


# ----------------------------------------------------------------- model arguments
def model_args(data: dict[str, Any]) -> dict[str, Any]:
    """The ``model_args`` a results JSON recorded (``config.model_args``; older
    lm-eval's ``"pretrained=x,dtype=y"`` string read as a dict)."""
    return _model_args(_dict(data.get("config")))

