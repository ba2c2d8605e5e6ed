"""Writing a run folder's files safely, and reading its options back. Pure
standard library (``rankacc plot-training`` reads runs without torch).

:func:`write_atomic` is the one way a training run rewrites a file
(``training_config.json``, ``best_checkpoint.json``, ``reference_logps.npz``,
``tracking.jsonl`` when it is cut back, ``tracking_summary.jsonl``): the new
content goes to a temporary file beside the old one, is flushed to disk, and
replaces it in one step, so a run killed at any moment leaves either the old
file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lm_eval_rankacc.core.errors import TrainingDataError

#: A run's options, data counts and scoring layout (written by ``rankacc sft`` / ``rankacc dpo``).
CONFIG_FILE = "training_config.json"
#: In each checkpoint folder a run writes: ``{"run_id": ...}``, the ``run_id`` of its ``training_config.json``.
RUN_MARKER = "rankacc_run.json"


def write_atomic(path: str | Path, content: str | bytes) -> Path:
    """Replace ``path`` with ``content`` (text is written as UTF-8) in one step."""
    path = Path(path)
    data = content.encode("utf-8") if isinstance(content, str) else content
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def write_json(path: str | Path, value: Any) -> Path:
    """``value`` as indented JSON (one space, a final newline), written
    atomically; a value JSON has no type for is written as its ``str``."""
    return write_atomic(path, json.dumps(value, indent=1, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    """The JSON value of ``path``; a file that cannot be read or parsed is a
    :class:`~lm_eval_rankacc.core.errors.TrainingDataError` naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else err
        raise TrainingDataError(f"{path}: unreadable ({reason})") from None


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """The ``training_config.json`` of a run folder ({} when there is none)."""
    path = Path(run_dir) / CONFIG_FILE
    config = read_json(path) if path.is_file() else {}
    if not isinstance(config, dict):
        raise TrainingDataError(f"{path}: not a JSON object")
    return config


def run_id_of(folder: str | Path, name: str = CONFIG_FILE) -> str | None:
    """The ``run_id`` recorded in ``folder / name`` (a run folder's
    ``training_config.json``, or a checkpoint's :data:`RUN_MARKER`); None
    when there is none or the file cannot be read."""
    try:
        value = read_json(Path(folder) / name)
    except TrainingDataError:
        return None
    run_id = value.get("run_id") if isinstance(value, dict) else None
    return run_id if isinstance(run_id, str) and run_id else None
