"""A task's documents: the rows read (local ``data_files``, package data,
the ``RANKACC_DATA_DIR`` mirror or the pinned hub source), converted by the
source into the common schema, and the fixed sample (:func:`documents`).
No lm-eval: the evaluation tasks (:mod:`lm_eval_rankacc.lmeval.dataset`)
and training read documents through here alike.

Every file is read once (a file named again, or with the same bytes as an
earlier one, is skipped with a note), and every problem with it is a
:class:`TaskDataError` naming the task and the file. The loader keeps where
each row came from (:class:`Rows`): a converter's :class:`RowError` names an
index into the rows it got, and the loader reports it as
``<task>: <file>: line N: field 'x': message``.

Big splits are not held (docs/tasks.md, "Loading big splits"): .jsonl files
stream (:class:`DataFile`), hub splits and parquet stay Arrow tables
(:class:`TableRows`), and for a sample the rows are converted in two passes:
ids and drop counts from every row, then full documents from the sampled
rows only (:func:`documents`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from lm_eval_rankacc.core.errors import RowError, TaskDataError
from lm_eval_rankacc.core.jsontext import no_cyclic_gc
from lm_eval_rankacc.core.schema import RowConflict
from lm_eval_rankacc.loading.hub import read_rows, task_hub
from lm_eval_rankacc.loading.rows import Rows
from lm_eval_rankacc.loading.tasks import DEFAULT_SPLIT, check_task_name
from lm_eval_rankacc.sources import Conversion, Source, get_source

log = logging.getLogger("lm-eval")

#: Documents per task unless ``--metadata '{"sample_size": N}'`` (0 = all), as in the paper.
DEFAULT_SAMPLE_SIZE = 1000


DEFAULT_SEED = 0


#: Prompt and response are joined as prompt + " " + response (the task's target_delimiter).
JOIN = " "


def _check_int(task: str, key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TaskDataError(
            f"{task}: metadata '{key}' must be an integer >= {minimum}, got {value!r}"
        )
    return value


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


def row_error_message(task: str, rows: Rows, err: RowError) -> str:
    """``<task>: <file>: line N: field 'x': message`` for a converter's RowError;
    a :class:`RowConflict` also names where the earlier row is."""
    message = f"{task}: {rows.locate(err.row)}: field '{err.field}': {err.message}"
    if isinstance(err, RowConflict):
        message += f" ({rows.locate(err.earlier, near=err.row)})"
    return message


def check_unique_ids(task: str, rows: Rows, conversion: Conversion) -> None:
    """An error naming the repeated document ids and the rows they come from."""
    seen: dict[str, list[int]] = {}
    for k, doc_id in enumerate(conversion.ids()):
        seen.setdefault(doc_id, []).append(k)
    repeated = [(doc_id, ks) for doc_id, ks in seen.items() if len(ks) > 1]
    if not repeated:
        return
    located = len(conversion.rows) == len(conversion.docs)

    def where(ks: list[int]) -> str:
        names = [rows.locate(conversion.rows[k]) if located else f"document {k + 1}" for k in ks[:3]]
        return ", ".join(names) + (f" and {len(ks) - 3} more" if len(ks) > 3 else "")

    listed = "; ".join(f"{doc_id!r} ({where(ks)})" for doc_id, ks in repeated[:3])
    more = f"; and {len(repeated) - 3} more ids" if len(repeated) > 3 else ""
    raise TaskDataError(f"{task}: document ids are not unique: {listed}{more}")


def _convert(task: str, module: Source, rows: Rows, split: str, options: dict[str, Any]) -> Conversion:
    """The documents of ``rows`` in the common schema (only their ids when
    ``rows.light``); drops reported, ids checked unique."""
    try:
        conversion = module.convert(rows, split, **options)
    except RowError as err:
        rows.drain()  # a broken file further on is reported first
        raise TaskDataError(row_error_message(task, rows, err)) from None
    except TaskDataError:
        raise  # a broken file, already named
    except ValueError as err:  # a bad converter option (form, ties), checked before any row is read
        raise TaskDataError(f"{task}: {err}") from None
    report_drops(task, len(rows), conversion)
    if not conversion.docs:
        raise TaskDataError(f"{task}: {rows.where}: no documents left after conversion")
    check_unique_ids(task, rows, conversion)
    return conversion


def _sampled_documents(task: str, module: Source, rows: Rows, split: str, options: dict[str, Any],
                       first: Conversion, keep: list[int]) -> list[dict[str, Any]]:
    """The documents ``keep`` of a light first pass, built by converting only
    the rows they come from (a document's ``members``, else its row), which
    keep their indices; every such row survived the drop rules, so the
    converter drops none of them. Checked against the first pass's ids."""
    needed = sorted({r for k in keep for r in first.members.get(k, [first.rows[k]])})
    try:
        docs = module.convert(rows.select(needed), split, **options).docs
    except RowError as err:  # not expected: these rows passed the first pass
        raise TaskDataError(row_error_message(task, rows, err)) from None
    ids = first.ids()
    if [d["id"] for d in docs] != [ids[k] for k in keep]:
        raise TaskDataError(
            f"{task}: {rows.where}: the sampled documents differ from the first pass "
            "(the rows changed while they were read?)"
        )
    return docs


def documents(
    *,
    source: str,
    task: str | None = None,
    split: str = DEFAULT_SPLIT,
    sample_size: Any = DEFAULT_SAMPLE_SIZE,
    seed: Any = DEFAULT_SEED,
    data_files: Any = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """A task's documents in the common schema: the rows read (hub, local
    ``data_files`` or mirror), converted by the source, and the fixed sample.

    ``options`` (the rest of ``dataset_kwargs`` and ``--metadata``) go to the
    source's converter, which takes the keys it knows (e.g. ``ties``) and
    ignores the others (lm-eval also passes every ``--model_args`` key).

    For a sample of a source with ``TWO_PASS``, rows are converted twice:
    every row streams through the converter, which validates it and applies
    the drop rules but keeps only document ids; the sample is drawn on them;
    then only the sampled documents' rows are read again and converted in
    full. Same documents and drop counts as one full conversion, in memory
    bounded by the ids (docs/tasks.md, "Loading big splits")."""
    task = check_task_name(task or task_name(options.get("config_source")))
    sample_size = _check_int(task, "sample_size", sample_size, 0)
    seed = _check_int(task, "seed", seed, 0)
    module = get_source(source)
    hub, mirror = task_hub(task, source, module, options, data_files)
    rows = read_rows(task, hub, mirror, split, data_files)
    rows.light = sample_size != 0 and getattr(module, "TWO_PASS", False) is True
    with no_cyclic_gc():
        conversion = _convert(task, module, rows, split, options)
    n = len(conversion.docs)
    keep = sample_indices(n, sample_size, seed)
    if len(keep) < n:
        log.info(
            "%s: scoring a fixed sample of %d of %d documents (seed %d); "
            "--metadata '{\"sample_size\": 0}' scores all",
            task, len(keep), n, seed,
        )
    elif sample_size > n:
        log.info("%s: sample_size %d is more than the %d documents: all %d are used", task, sample_size, n, n)
    if rows.light:
        return _sampled_documents(task, module, rows, split, options, conversion, keep)
    return [conversion.docs[i] for i in keep]
