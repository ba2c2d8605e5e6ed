"""Training and validation documents of a run (:func:`load_splits`).

Documents come from :func:`lm_eval_rankacc.loading.documents.documents`, the
code the eval tasks use, so a malformed row stops training with the same
error (naming the task, the row and the field) and rows dropped by a
documented rule are counted the same way. Name a task
(``rankacc_hh_rlhf_train``, a YAML-only task file, ...) and its
``dataset_kwargs`` say the source and split
(:func:`lm_eval_rankacc.loading.tasks.task_kwargs`); ``data_files`` replaces
the download with local files in the source's own schema (without a task:
files in the common schema, ``prompt`` / ``responses`` / ``ranks``).

Validation, as in the paper (App. D.1): half of the test split
(``eval_fraction`` of its documents; which half is ours, ``split_seed`` 0).
A task whose split is not ``test`` validates on the package task of the same
source and split ``test`` when there is one (``rankacc_hh_rlhf_train`` ->
``rankacc_hh_rlhf_test``); otherwise ``eval_fraction`` of the training
documents is held out (whole documents: no document has pairs in both).
``eval_task`` or ``eval_data_files`` name the validation data explicitly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from lm_eval_rankacc.core.errors import TaskDataError, TrainingDataError
from lm_eval_rankacc.loading.documents import documents, sample_indices
from lm_eval_rankacc.loading.tasks import sibling_test_task, task_kwargs

#: The ``task`` name used in messages when only data_files (in the common schema) are given.
FILES_TASK = "rankacc training data"


# Each option rule is written once, here, and checked both where the data is
# read and by the options' ``__post_init__`` (:mod:`.config`), so that a bad
# value stops a run before any model is loaded.
def check_data_given(task: str | None, data_files: Any) -> None:
    """Training data needs a task or data files."""
    if not task and not data_files:
        raise TrainingDataError("no training data: give --task (a rankacc task) or --data_files")


def check_eval_fraction(eval_fraction: float) -> None:
    """A share of documents: in (0, 1]."""
    if not 0.0 < eval_fraction <= 1.0:
        raise TrainingDataError(f"eval_fraction must be in (0, 1], got {eval_fraction!r}")


@contextmanager
def training_data_errors() -> Iterator[None]:
    """The loader's errors (a bad row, file, option or task) as
    :class:`TrainingDataError`, their message unchanged."""
    try:
        yield
    except TaskDataError as err:
        raise TrainingDataError(str(err)) from None


def loader_options(task: str | None, data_files: Any = None, split: str | None = None) -> dict[str, Any]:
    """The :func:`~lm_eval_rankacc.loading.documents.documents` options of
    training data: the task's, or without one, files in the common schema
    (task :data:`FILES_TASK`); ``split`` and ``data_files`` replace the task's."""
    check_data_given(task, data_files)
    if task:
        with training_data_errors():
            options = task_kwargs(task)
    else:
        options = {"source": "demo", "task": FILES_TASK, "split": "train"}  # the demo source reads the common schema
    if split:
        options["split"] = split
    if data_files:
        options["data_files"] = data_files
    return options


@dataclass
class Splits:
    """Training and validation documents, and where they came from."""

    task: str
    train: list[dict[str, Any]]
    validation: list[dict[str, Any]]
    validation_source: str
    notes: list[str] = field(default_factory=list)


def _share(n: int, fraction: float) -> int:
    return max(1, min(n, int(round(n * fraction)))) if n else 0


def _content_key(doc: dict[str, Any]) -> tuple:
    return (doc["prompt"], tuple(doc["responses"]))


#: The ``eval_task`` values that hold out training documents.
HOLDOUT = (None, "", "none", "holdout")


def _validation_data(task: str | None, data_files: Any, eval_task: str | None,
                     eval_data_files: Any) -> tuple[bool, str | None]:
    """(whether other documents validate, the task reading them: None for
    files in the common schema); False: training documents are held out."""
    if eval_data_files and (eval_task == "auto" or eval_task in HOLDOUT):
        return True, task  # the training task's converter reads the files
    if eval_task == "auto":
        sibling = None if data_files or not task else sibling_test_task(task)
        return sibling is not None, sibling
    if eval_task in HOLDOUT:
        return False, None
    return True, eval_task


def load_splits(
    task: str | None,
    data_files: Any = None,
    split: str | None = None,
    train_sample_size: int = 0,
    eval_task: str | None = "auto",
    eval_data_files: Any = None,
    eval_split: str | None = None,
    eval_fraction: float = 0.5,
    split_seed: int = 0,
) -> Splits:
    """Training and validation documents (see the module docstring for the rules)."""
    check_eval_fraction(eval_fraction)
    options = loader_options(task, data_files, split)
    name = options["task"]
    with training_data_errors():
        train = documents(sample_size=train_sample_size, seed=split_seed, **options)
    other, validating = _validation_data(task, data_files, eval_task, eval_data_files)
    if other:
        ev_options = loader_options(validating, eval_data_files, eval_split)
        with training_data_errors():
            docs = documents(sample_size=0, seed=split_seed, **ev_options)
        keep = sample_indices(len(docs), _share(len(docs), eval_fraction), split_seed)
        validation = [docs[i] for i in keep]
        where = ev_options["task"] + (f" ({eval_data_files})" if eval_data_files else "")
        source = f"{len(validation)} of the {len(docs)} documents of {where} (seed {split_seed})"
        seen = {_content_key(d) for d in train}
        repeated = sum(_content_key(d) in seen for d in validation)
        notes = []
        if repeated:
            notes.append(f"{repeated} validation document(s) are also training documents (same prompt and responses)")
        return Splits(name, train, validation, source, notes)
    if len(train) < 2:
        raise TrainingDataError(f"{name}: {len(train)} document(s): too few to hold out a validation set")
    n_val = min(len(train) - 1, _share(len(train), eval_fraction))
    val_idx = set(sample_indices(len(train), n_val, split_seed))
    validation = [d for i, d in enumerate(train) if i in val_idx]
    rest = [d for i, d in enumerate(train) if i not in val_idx]
    source = f"{len(validation)} of the {len(train)} training documents of {name} held out (seed {split_seed})"
    return Splits(name, rest, validation, source)
