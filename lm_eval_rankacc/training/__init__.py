"""Preference training with per-datapoint ranking tracking: ``rankacc sft`` and
``rankacc dpo`` (DPO, DPO^gamma, IPO), built on ``transformers.Trainer``.

Modules: :mod:`.losses` (pure torch losses), :mod:`.data` (documents -> pairs ->
tokens, through the eval tasks' loader), :mod:`.scoring` (batches and response
log-probabilities), :mod:`.trainer` (the Trainer subclass), :mod:`.tracking`
(the per-datapoint log), :mod:`.figures`, :mod:`.callbacks`, :mod:`.args`
(``HfArgumentParser`` options) and :mod:`.run` (``train_dpo``, ``train_sft``).

Kept import-light: torch and transformers are imported by the modules that need them.
"""

from __future__ import annotations

__all__ = ["train_dpo", "train_sft", "DPOArguments", "SFTArguments", "training_arguments", "plot_training"]


def __getattr__(name: str):
    if name in ("train_dpo", "train_sft"):
        from lm_eval_rankacc.training import run

        return getattr(run, name)
    if name in ("DPOArguments", "SFTArguments", "training_arguments"):
        from lm_eval_rankacc.training import args

        return getattr(args, name)
    if name == "plot_training":
        from lm_eval_rankacc.training.figures import plot_training

        return plot_training
    raise AttributeError(name)
