"""What rankacc adds to lm-eval's loggers: W&B sample tables of rankacc tasks.

lm-eval's W&B logger (``--wandb_args ... --log_samples``) builds one table
column per metric of the task's ``metric_list`` and reads that metric from
every sample. Some rankacc metrics are defined only for some documents:
``pair_acc`` / ``pair_acc_norm`` for documents of more than two responses,
``rank_acc_norm`` only when the backend reports token counts, and no ranking
metric for a document dropped as too long. lm-eval averages each metric over
the documents that have it, which is right; the logger then fails
("Logging to W&B failed: 'pair_acc'") and logs no sample table.

:func:`install_wandb_samples` wraps the logger's table builder so that, for a
rankacc task only, a metric a sample does not have is an empty cell (None) in
the table. The means lm-eval computed are untouched: the cells are filled on
copies of the samples, after aggregation. Installed by the start-up hook when
lm-eval imports its W&B logger, and by the tasks' loader.
"""

from __future__ import annotations

import sys
from typing import Any

WANDB_LOGGER_MODULE = "lm_eval.loggers.wandb_logger"


def _is_rankacc_sample(sample: Any) -> bool:
    doc = sample.get("doc") if isinstance(sample, dict) else None
    return isinstance(doc, dict) and {"id", "prompt", "responses", "ranks"} <= doc.keys()


def with_every_metric(samples: list[dict[str, Any]], config: dict[str, Any]) -> list[dict[str, Any]]:
    """Copies of rankacc ``samples`` holding every metric of ``config``'s
    ``metric_list`` (None where a document has no value); other samples as they are."""
    names = [m.get("metric") for m in config.get("metric_list") or [] if isinstance(m, dict)]
    return [
        {**sample, **{n: None for n in names if n not in sample}} if _is_rankacc_sample(sample) else sample
        for sample in samples
    ]


def install_wandb_samples(module: Any = None) -> bool:
    """Wrap ``WandbLogger._generate_dataset`` of lm-eval's W&B logger module
    (``module``, or the one already imported; nothing when it is not).
    Idempotent; False when the logger is not as expected."""
    module = module if module is not None else sys.modules.get(WANDB_LOGGER_MODULE)
    logger_class = getattr(module, "WandbLogger", None)
    original = getattr(logger_class, "_generate_dataset", None)
    if original is None:
        return False
    if getattr(original, "_rankacc_wrapped", False):
        return True

    def _generate_dataset(self, data, config):
        return original(self, with_every_metric(data, config), config)

    _generate_dataset._rankacc_wrapped = True  # type: ignore[attr-defined]
    _generate_dataset.__wrapped__ = original  # type: ignore[attr-defined]
    _generate_dataset.__doc__ = original.__doc__
    logger_class._generate_dataset = _generate_dataset
    return True
