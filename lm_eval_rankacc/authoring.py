"""``custom_dataset`` of ``tasks/_fields_template_yaml``, the base a user
includes to add a preference dataset with one YAML file and no Python.

It is :func:`lm_eval_rankacc.harness.load_docs` with two conveniences: the
source defaults to ``fields`` (the field mapping in ``dataset_kwargs``,
:mod:`lm_eval_rankacc.sources.fields`), and the task name used in messages
defaults to the ``task:`` of the user's YAML file, which lm-eval passes as
``config_source`` (so ``dataset_kwargs`` need not repeat it).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lm_eval_rankacc import harness

_TASK_LINE = re.compile(r"""^task:[ \t]*["']?([^"'\s#]+)""", re.MULTILINE)


def task_name(config_source: Any) -> str:
    """The ``task:`` of the YAML file at ``config_source`` (its file name if
    it has none); a generic name when there is no file."""
    if isinstance(config_source, str) and config_source:
        path = Path(config_source)
        try:
            match = _TASK_LINE.search(path.read_text(encoding="utf-8"))
        except OSError:
            match = None
        return match.group(1) if match else path.stem
    return "rankacc user task"


def load_docs(**kwargs: Any):
    kwargs.setdefault("source", "fields")
    if not kwargs.get("task"):
        kwargs["task"] = task_name(kwargs.get("config_source"))
    return harness.load_docs(**kwargs)
