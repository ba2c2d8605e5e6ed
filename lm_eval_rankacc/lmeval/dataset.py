"""The ``custom_dataset`` of every rankacc task: a task's documents
(:func:`lm_eval_rankacc.loading.documents.documents`) handed to lm-eval as a
``datasets.DatasetDict``, with the task's provenance recorded in its config.

``load_docs`` is every task's ``custom_dataset``: lm-eval calls it with the
task's ``dataset_kwargs`` together with ``--metadata`` (and, in lm-eval
0.4.13, every ``--model_args`` key too, which is why unknown keys are
ignored rather than rejected). Conversion happens in the loader rather than
in ``process_docs`` because lm-eval's ``process_docs`` never sees
``--metadata``, and the sample must be drawn from converted documents so
that it holds exactly ``sample_size`` of them. ``load_fields_docs`` is the
same for the YAML-only tasks of ``tasks/_fields_template_yaml``.
"""

from __future__ import annotations

from typing import Any

from lm_eval_rankacc import PROVENANCE_KEY, __version__
from lm_eval_rankacc.lmeval.loglikelihood import install_token_counts
from lm_eval_rankacc.lmeval.wandb_samples import install_wandb_samples
from lm_eval_rankacc.loading.documents import DEFAULT_SAMPLE_SIZE, DEFAULT_SEED, documents

#: The split name under which the loader hands the documents to lm-eval (``test_split``).
EVAL_SPLIT = "test"


def provenance(
    n_documents: int,
    *,
    source: str,
    split: str = "test",
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    seed: int = DEFAULT_SEED,
    data_files: Any = None,
    **options: Any,
) -> dict[str, Any]:
    """What produced a task's numbers: the package version, the metric
    convention (the paper's), and the loader options actually used, defaults
    included (``documents`` has already checked them)."""
    return {
        "rankacc_version": __version__,
        "convention": "paper",
        "source": source,
        "split": split,
        "sample_size": sample_size,
        "seed": seed,
        "data_files": data_files if data_files is None or isinstance(data_files, (str, list)) else str(data_files),
        "documents": n_documents,
    }


def load_docs(**kwargs: Any):
    """lm-eval ``custom_dataset`` of every rankacc task: a DatasetDict whose
    ``test`` split holds :func:`documents`.

    lm-eval calls it with the task's ``metadata`` unpacked, so the mapping
    under ``PROVENANCE_KEY`` (an empty mapping in tasks/_default_template_yaml)
    arrives by reference: filling it with
    :func:`provenance` puts the version and options into the task's config,
    which lm-eval writes to ``results["configs"][task]["metadata"]``.

    It also installs the window rule and token counts behind R~
    (:func:`install_token_counts`) and the W&B sample-table fill
    (:func:`install_wandb_samples`), which the start-up hook does already;
    this call covers ``--include_path`` use with the hook switched off."""
    import datasets

    install_token_counts()
    install_wandb_samples()  # when lm-eval's W&B logger is in use (already imported)
    record = kwargs.pop(PROVENANCE_KEY, None)
    docs = documents(**kwargs)
    if isinstance(record, dict):
        record.update(provenance(len(docs), **kwargs))
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


def load_fields_docs(**kwargs: Any):
    """``custom_dataset`` of ``tasks/_fields_template_yaml``, the base a user
    includes to add a preference dataset with one YAML file and no Python:
    :func:`load_docs` with the source defaulting to ``fields`` (the field
    mapping in ``dataset_kwargs``, :mod:`lm_eval_rankacc.sources.fields`),
    the default of YAML-only tasks that training reads too
    (:data:`lm_eval_rankacc.loading.tasks.FIELDS_SOURCE`)."""
    from lm_eval_rankacc.loading.tasks import FIELDS_SOURCE

    kwargs.setdefault("source", FIELDS_SOURCE)
    return load_docs(**kwargs)
