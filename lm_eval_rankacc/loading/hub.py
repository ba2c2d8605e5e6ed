"""Where a task's rows come from when no ``data_files`` is given: data
shipped with the package, the ``RANKACC_DATA_DIR`` mirror of the hub
sources for air-gapped machines, or the pinned hub source itself."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lm_eval_rankacc.core.errors import TaskDataError
from lm_eval_rankacc.loading.files import data_suffix, read_files, read_records, resolve_data_files
from lm_eval_rankacc.loading.rows import Rows, TableRows
from lm_eval_rankacc.sources import HubDataset, HubFile, Source


#: A local mirror of the hub sources, for air-gapped machines: files in each
#: dataset's hub schema at ``$RANKACC_DATA_DIR/<source>/<split>.<ext>`` (for a
#: single-file source, ``<source>/<hub filename>``) are read instead of the hub.
MIRROR_ENV = "RANKACC_DATA_DIR"


def mirror_files(task: str, source: str, hub: HubDataset | HubFile, split: str) -> list[Path]:
    """The mirror's file for ``split`` (none without ``RANKACC_DATA_DIR``); an
    error when the folder holds several (``test.jsonl`` and ``test.parquet``
    would be the same rows twice)."""
    root = os.environ.get(MIRROR_ENV)
    if not root:
        return []
    folder = Path(root).expanduser() / source
    if isinstance(hub, HubFile):
        return [folder / hub.filename] if (folder / hub.filename).is_file() else []
    files = sorted(p for p in folder.glob(f"{split}.*") if p.is_file() and data_suffix(p) is not None)
    if len(files) > 1:
        raise TaskDataError(
            f"{task}: {MIRROR_ENV} holds {len(files)} files for split {split!r} "
            f"({', '.join(str(p) for p in files)}): keep one"
        )
    return files


def read_hub(task: str, hub: HubDataset | HubFile, split: str) -> Rows:
    """Rows of the pinned hub source (needs network access to the hub or its cache)."""
    if isinstance(hub, HubFile):
        from huggingface_hub import hf_hub_download

        local = hf_hub_download(hub.repo, hub.filename, repo_type="dataset", revision=hub.revision)
        return Rows([read_records(task, Path(local), label=f"{hub.repo}/{hub.filename}")])
    import datasets

    data_files = list(hub.data_files) if isinstance(hub.data_files, tuple) else hub.data_files
    ds = datasets.load_dataset(
        hub.path, hub.name, data_dir=hub.data_dir, data_files=data_files,
        revision=hub.revision, split=split,
    )
    return Rows([TableRows(f"{hub.path} ({split})", ds)])


def task_hub(task: str, source: str, module: Source, options: dict[str, Any], data_files: Any):
    """(where the rows live, the mirror folder name): the source's pinned ``HUB``,
    or for a source whose location is a task option (``fields``) its ``task_hub``."""
    if not hasattr(module, "task_hub"):
        return module.HUB, source
    try:
        return module.task_hub(options, data_files), f"{source}/{task}"
    except ValueError as err:  # e.g. a missing field mapping
        raise TaskDataError(f"{task}: {err}") from None


def read_rows(task: str, hub: Any, mirror: str, split: str, data_files: Any) -> Rows:
    """The rows in the source's own schema, and where each came from:
    ``data_files``, data shipped with the package, the ``RANKACC_DATA_DIR``
    mirror, or the hub."""
    if data_files is not None:
        return read_files(task, resolve_data_files(task, data_files))
    if isinstance(hub, Path):  # data shipped with the package
        return Rows([read_records(task, hub, label=hub.name)])
    if files := mirror_files(task, mirror, hub, split):
        return read_files(task, files)
    return read_hub(task, hub, split)
