"""Preference training with per-datapoint ranking tracking: ``rankacc sft`` and
``rankacc dpo`` (DPO, DPO^gamma, IPO), built on ``transformers.Trainer``.

From Python::

    from lm_eval_rankacc.training import DPOConfig, train_dpo

    config = DPOConfig(model_name_or_path="EleutherAI/pythia-160m", task="rankacc_hh_rlhf_train",
                       output_dir="runs/dpo", max_steps=100)
    result = train_dpo(config)  # a RunResult

Modules, one job each:

- :mod:`.config`: the options, ``DPOConfig`` / ``SFTConfig`` (subclasses of
  ``TrainingArguments``) with the project's defaults and checks;
- :mod:`.splits`: the training and validation documents (through the eval
  tasks' loader, :mod:`lm_eval_rankacc.loading`); :mod:`.examples`: a
  document's pairs (DPO) and preferred responses (SFT); :mod:`.tokens`:
  tokenization as lm-eval's, and truncation;
- :mod:`.losses`: the preference losses (pure torch);
- :mod:`.scoring`: batches of pairs and their response log-probabilities;
- :mod:`.models`: loading the tokenizer and the models;
- :mod:`.pairs`: the pair sets of a DPO run; :mod:`.reference`: the reference
  pass and its cache;
- :mod:`.trainer`: the ``Trainer`` subclass (loss, evaluation);
- :mod:`.tracking_callback`: the per-datapoint tracking at each evaluation;
  :mod:`.stop_on_signal`: save and stop on SIGTERM;
- :mod:`.tracking_log`: the per-datapoint log (pure); :mod:`.figures`: its
  figures 2 and 3, and the figures of several runs; :mod:`.figure4`: Sec.
  5's figure and the win rates it reads; :mod:`.plotting`: matplotlib;
- :mod:`.distance`: the distance travelled by the weights from the reference's;
- :mod:`.ranking_tracker`: :class:`~.ranking_tracker.RankingTracker`, the same
  tracking as a callback for any ``transformers.Trainer`` (TRL's
  ``DPOTrainer`` included);
- :mod:`.run_folder`: the output folder (its files, when a run may start
  there, checkpoints, marks, ``training_config.json`` and ``RunResult``);
- :mod:`.dpo` (``train_dpo``) and :mod:`.sft` (``train_sft``).

Kept import-light: torch and transformers are imported by the modules that
need them, so ``rankacc plot-training`` runs without them.
"""

from __future__ import annotations

__all__ = ["train_dpo", "train_sft", "DPOConfig", "SFTConfig", "plot_training", "RunResult", "RankingTracker"]

#: Where each public name lives (imported on first use).
_HOMES = {
    "train_dpo": "dpo",
    "train_sft": "sft",
    "DPOConfig": "config",
    "SFTConfig": "config",
    "plot_training": "figures",
    "RunResult": "run_folder.result",
    "RankingTracker": "ranking_tracker",
}


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
