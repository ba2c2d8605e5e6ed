"""Names of release 0.1's ``lm_eval_rankacc.training.data`` that have no
place in the modules it was split into, kept for one release; found through
that old path (:mod:`lm_eval_rankacc._moved`, with a DeprecationWarning)."""

from __future__ import annotations

from typing import Any

from lm_eval_rankacc.loading.documents import documents
from lm_eval_rankacc.training.splits import loader_options, training_data_errors


def load_documents(task: str | None = None, data_files: Any = None, split: str | None = None,
                   sample_size: int = 0, seed: int = 0) -> tuple[str, list[dict[str, Any]]]:
    """(task name, documents in the common schema): the documents of
    :func:`.splits.loader_options`, as training reads them."""
    options = loader_options(task, data_files, split)
    with training_data_errors():
        return options["task"], documents(sample_size=sample_size, seed=seed, **options)
