"""The lm-eval glue: task data loading.

``load_docs`` is every task's ``custom_dataset``: lm-eval calls it with the
task's ``dataset_kwargs`` together with ``--metadata`` (and, in lm-eval
0.4.13, every ``--model_args`` key too, which is why unknown keys are
ignored rather than rejected). It reads the hub source or local
``data_files`` in the source's own schema, converts the rows with the
source's converter, reports dropped rows, and draws the fixed sample.

Conversion happens here rather than in ``process_docs`` because lm-eval's
``process_docs`` never sees ``--metadata``, and the sample must be drawn
from converted documents so that it holds exactly ``sample_size`` of them.

Importing this module changes nothing in lm-eval: the token counts behind R~
(:func:`lm_eval_rankacc.loglikelihood.install_token_counts`) are installed by
the start-up hook (:mod:`lm_eval_rankacc._autoload`) and by :func:`load_docs`.
Training reads documents through :func:`documents`.
"""

from __future__ import annotations

import glob
import gzip
import io
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from lm_eval_rankacc.errors import RowError, TaskDataError
from lm_eval_rankacc.loglikelihood import install_token_counts
from lm_eval_rankacc.sources import Conversion, HubDataset, HubFile, get_source

log = logging.getLogger("lm-eval")

#: Documents per task unless ``--metadata '{"sample_size": N}'`` (0 = all), as in the paper.
DEFAULT_SAMPLE_SIZE = 1000
DEFAULT_SEED = 0
#: Prompt and response are joined as prompt + " " + response (the task's target_delimiter).
JOIN = " "
#: The split name under which the loader hands the documents to lm-eval (``test_split``).
EVAL_SPLIT = "test"


# ----------------------------------------------------------------- options
def _check_int(task: str, key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TaskDataError(
            f"{task}: metadata '{key}' must be an integer >= {minimum}, got {value!r}"
        )
    return value


def resolve_data_files(task: str, data_files: Any) -> list[Path]:
    """Paths matched by ``data_files`` (a path or glob, or a list of them); an error if none match."""
    patterns = data_files if isinstance(data_files, (list, tuple)) else [data_files]
    if not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise TaskDataError(
            f"{task}: metadata 'data_files' must be a path or glob string (or a list of them), got {data_files!r}"
        )
    paths: list[Path] = []
    for pattern in patterns:
        matched = sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
        files = [Path(m) for m in matched if Path(m).is_file()]
        if not files:
            raise TaskDataError(f"{task}: data_files {pattern!r} matches no file")
        paths.extend(files)
    return paths


# ----------------------------------------------------------------- reading
def read_records(path: Path) -> list[Any]:
    """Records of one local file in a hub schema: .json (a list, or an object
    with one list), .jsonl, either gzipped, or .parquet."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    raw = path.read_bytes()
    if name.endswith(".gz"):
        raw = gzip.decompress(raw)
        name = name[:-3]
    text = raw.decode("utf-8")
    if name.endswith(".jsonl"):
        records = []
        for line_no, line in enumerate(io.StringIO(text), start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise TaskDataError(f"{path}: line {line_no} is not valid JSON ({err.msg})") from None
        return records
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise TaskDataError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) == 1:
            data = lists[0]
    if not isinstance(data, list):
        raise TaskDataError(f"{path}: expected a JSON list of records")
    return data


#: A local mirror of the hub sources, for air-gapped machines: files in each
#: dataset's hub schema at ``$RANKACC_DATA_DIR/<source>/<split>.<ext>`` (for a
#: single-file source, ``<source>/<hub filename>``) are read instead of the hub.
MIRROR_ENV = "RANKACC_DATA_DIR"


def mirror_files(source: str, hub: HubDataset | HubFile, split: str) -> list[Path]:
    root = os.environ.get(MIRROR_ENV)
    if not root:
        return []
    folder = Path(root).expanduser() / source
    if isinstance(hub, HubFile):
        return [folder / hub.filename] if (folder / hub.filename).is_file() else []
    return sorted(p for p in folder.glob(f"{split}.*") if p.is_file())


def read_hub(hub: HubDataset | HubFile, split: str) -> list[Any]:
    """Rows of the pinned hub source (needs network access to the hub or its cache)."""
    if isinstance(hub, HubFile):
        from huggingface_hub import hf_hub_download

        local = hf_hub_download(hub.repo, hub.filename, repo_type="dataset", revision=hub.revision)
        return read_records(Path(local))
    import datasets

    data_files = list(hub.data_files) if isinstance(hub.data_files, tuple) else hub.data_files
    ds = datasets.load_dataset(
        hub.path, hub.name, data_dir=hub.data_dir, data_files=data_files,
        revision=hub.revision, split=split,
    )
    return list(ds)


# ----------------------------------------------------------------- sampling
def sample_indices(n: int, sample_size: int, seed: int) -> list[int]:
    """The fixed subsample: the first ``sample_size`` of numpy's
    ``default_rng(seed).permutation(n)`` (the generator ``datasets`` uses for
    ``train_test_split``), returned in document order. 0 or >= n means all."""
    if sample_size == 0 or sample_size >= n:
        return list(range(n))
    import numpy as np

    return sorted(int(i) for i in np.random.default_rng(seed).permutation(n)[:sample_size])


def report_drops(task: str, n_rows: int, conversion: Conversion) -> None:
    for reason, count in sorted(conversion.dropped.items()):
        log.warning("%s: dropped %d of %d rows: %s", task, count, n_rows, reason)


_TASK_LINE = re.compile(r"""^task:[ \t]*["']?([^"'\s#]+)""", re.MULTILINE)


def task_name(config_source: Any) -> str:
    """The ``task:`` of the YAML file lm-eval loaded the task from (passed to
    the loader as ``config_source``), so ``dataset_kwargs`` need not repeat it;
    the file name if it has none, a generic name when there is no file."""
    if isinstance(config_source, str) and config_source:
        path = Path(config_source)
        try:
            match = _TASK_LINE.search(path.read_text(encoding="utf-8"))
        except OSError:
            match = None
        return match.group(1) if match else path.stem
    return "rankacc task"


def _task_hub(task: str, source: str, module: Any, options: dict[str, Any], data_files: Any):
    """(where the rows live, the mirror folder name): the source's pinned ``HUB``,
    or for a source whose location is a task option (``fields``) its ``task_hub``."""
    if not hasattr(module, "task_hub"):
        return module.HUB, source
    try:
        return module.task_hub(options, data_files), f"{source}/{task}"
    except ValueError as err:  # e.g. a missing field mapping
        raise TaskDataError(f"{task}: {err}") from None


def read_rows(task: str, hub: Any, mirror: str, split: str, data_files: Any) -> tuple[list[Any], str]:
    """(rows in the source's own schema, where they came from): ``data_files``,
    data shipped with the package, the ``RANKACC_DATA_DIR`` mirror, or the hub."""
    if data_files is not None:
        files = resolve_data_files(task, data_files)
        return [r for path in files for r in read_records(path)], ", ".join(str(p) for p in files)
    if isinstance(hub, Path):  # data shipped with the package
        return read_records(hub), str(hub.name)
    if files := mirror_files(mirror, hub, split):
        return [r for path in files for r in read_records(path)], ", ".join(str(p) for p in files)
    return read_hub(hub, split), f"{getattr(hub, 'path', getattr(hub, 'repo', ''))} ({split})"


def _convert(task: str, module: Any, rows: list[Any], where: str, split: str, options: dict[str, Any]):
    """The documents of ``rows`` in the common schema; drops reported, ids checked unique."""
    try:
        conversion = module.convert(rows, split, **options)
    except RowError as err:
        raise TaskDataError(f"{task}: {where}: {err}") from None
    report_drops(task, len(rows), conversion)
    docs = conversion.docs
    if not docs:
        raise TaskDataError(f"{task}: {where}: no documents left after conversion")
    ids = [d["id"] for d in docs]
    if len(set(ids)) != len(ids):
        raise TaskDataError(f"{task}: {where}: document ids are not unique")
    return docs


def documents(
    *,
    source: str,
    task: str | None = None,
    split: str = "test",
    sample_size: Any = DEFAULT_SAMPLE_SIZE,
    seed: Any = DEFAULT_SEED,
    data_files: Any = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """A task's documents in the common schema: the rows read (hub, local
    ``data_files`` or mirror), converted by the source, and the fixed sample.

    ``options`` (the rest of ``dataset_kwargs`` and ``--metadata``) go to the
    source's converter, which takes the keys it knows (e.g. ``ties``) and
    ignores the others (lm-eval also passes every ``--model_args`` key)."""
    task = task or task_name(options.get("config_source"))
    sample_size = _check_int(task, "sample_size", sample_size, 0)
    seed = _check_int(task, "seed", seed, 0)
    module = get_source(source)
    hub, mirror = _task_hub(task, source, module, options, data_files)
    rows, where = read_rows(task, hub, mirror, split, data_files)
    docs = _convert(task, module, rows, where, split, options)
    keep = sample_indices(len(docs), sample_size, seed)
    if len(keep) < len(docs):
        log.info(
            "%s: scoring a fixed sample of %d of %d documents (seed %d); "
            "--metadata '{\"sample_size\": 0}' scores all",
            task, len(keep), len(docs), seed,
        )
    return [docs[i] for i in keep]


def load_docs(**kwargs: Any):
    """lm-eval ``custom_dataset`` of every rankacc task: a DatasetDict whose
    ``test`` split holds :func:`documents`.

    It also installs the token counts behind R~ (:func:`install_token_counts`),
    which the start-up hook does already; this call covers ``--include_path``
    use with the hook switched off."""
    import datasets

    install_token_counts()
    docs = documents(**kwargs)
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "prompt": datasets.Value("string"),
            "responses": datasets.Sequence(datasets.Value("string")),
            "ranks": datasets.Sequence(datasets.Value("int64")),
            "votes": datasets.Sequence(datasets.Value("int64")),
            "alpha": datasets.Value("float64"),
        }
    )
    return datasets.DatasetDict({EVAL_SPLIT: datasets.Dataset.from_list(docs, features=features)})


def doc_to_target(doc: dict[str, Any]) -> int:
    """Index of a best-ranked response (lm-eval logs it as the target)."""
    return list(doc["ranks"]).index(min(doc["ranks"]))
