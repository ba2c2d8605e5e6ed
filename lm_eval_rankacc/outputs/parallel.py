"""Reading in forked processes: one process per run (or results file) where
the samples files to read are big enough that starting processes pays."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

__all__ = ["PARALLEL_BYTES", "map_in_processes", "samples_bytes"]

#: Samples bytes (all the runs to read together) from which :func:`map_in_processes`
#: reads each run in its own process; below it, starting processes costs more than it saves.
PARALLEL_BYTES = 256 << 20


def samples_bytes(path: Path, answered: Callable[[Path], bool] | None = None) -> int:
    """Bytes of the samples files a run path names, or a folder holds (0 when
    unknown), leaving out those ``answered`` says need no reading (e.g.
    :func:`lm_eval_rankacc.outputs.cache.is_fresh`)."""
    try:
        files = [path] if path.is_file() else path.rglob("samples_*.jsonl")
        return sum(f.stat().st_size for f in files if answered is None or not answered(f))
    except OSError:
        return 0


def map_in_processes(function: Callable[[Any], Any], items: Sequence[Any], nbytes: int) -> list[Any]:
    """``[function(item) for item in items]``, in order: in one forked
    process per item (at most the CPU count) where there are two or more
    items, the files they read hold :data:`PARALLEL_BYTES` (``nbytes``) or
    more and the platform forks; else in this process. ``function`` must be
    a module-level function; its errors reach the caller unchanged."""
    workers = min(len(items), os.cpu_count() or 1)
    if workers < 2 or nbytes < PARALLEL_BYTES or "fork" not in multiprocessing.get_all_start_methods():
        return [function(item) for item in items]
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(function, items))
