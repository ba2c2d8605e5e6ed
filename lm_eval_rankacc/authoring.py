"""``custom_dataset`` of ``tasks/_fields_template_yaml``, the base a user
includes to add a preference dataset with one YAML file and no Python.

It is :func:`lm_eval_rankacc.harness.load_docs` with the source defaulting
to ``fields`` (the field mapping in ``dataset_kwargs``,
:mod:`lm_eval_rankacc.sources.fields`).
"""

from __future__ import annotations

from typing import Any

from lm_eval_rankacc import harness


def load_docs(**kwargs: Any):
    kwargs.setdefault("source", "fields")
    return harness.load_docs(**kwargs)
