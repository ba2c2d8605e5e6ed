"""``RankingTracker``: the per-datapoint tracking of ``rankacc dpo`` for any
``transformers.Trainer``, TRL's ``DPOTrainer`` included (``docs/training.md``).

A ``TrainerCallback`` that, at every evaluation (``on_evaluate``), scores a
fixed set of tracked pairs with the current model and writes the rows of
``rankacc dpo``'s ``tracking.jsonl`` / ``tracking_summary.jsonl``
(:class:`.tracking_callback.TrackingCallback`, :mod:`.tracking_log`; set
``train``), and after training the figures (:func:`.figures.plot_training`).

- Tracked pairs: a rankacc task's documents (or data files), the pairs of
  :func:`.examples.documents_to_pairs`, a fixed sample of ``sample_size`` of them
  (``seed``; :func:`lm_eval_rankacc.loading.documents.sample_indices`, as ``rankacc
  dpo``'s ``--tracking_size``), tokenized as lm-eval's ``hf`` backend does
  (:mod:`.tokens`) with the trainer's tokenizer (or ``tokenizer=``).
- Defaults: those of ``rankacc dpo`` (:class:`.config.DPOConfig`'s fields,
  read from there: ``sample_size`` is ``--tracking_size``, ``seed``
  ``--tracking_seed``, ``batch_size`` ``--per_device_eval_batch_size``).
- Reference (``reference=``): ``"initial"`` (default), the model as training
  begins, scored in ``on_train_begin`` before any update; a model folder or
  hub name, loaded in the training model's dtype on its device, scored once
  and freed; or an lm-eval ``--log_samples`` run of the reference loaded with
  :func:`lm_eval_rankacc.outputs.runs.load_run` (a ``Run`` or one of its
  ``TaskSamples``), whose documents must be the tracked pairs' documents
  (same id, prompt and responses).
- Scoring: the packed layout of :mod:`.scoring` where the model's attention
  honours it (checked once on a few pairs, else the plain layout), no
  gradients, the model's own dtype and device, ``model.eval()`` and its mode
  restored.
- Distance travelled (``weight_distance``, ``weight_distance_ratio`` in the
  summary rows; :mod:`.distance`): from the initial weights (streamed from
  the model's own safetensors files when they equal it, else a CPU copy taken
  in ``on_train_begin``); with a model path ``reference=``, from that model's
  weights (streamed, else copied while it is loaded); with a run
  ``reference=``, from the initial weights.
- Distributed runs: the main process (rank 0) scores every tracked pair and
  writes the files; the other processes do nothing, so there is nothing to
  gather. The model must be whole on rank 0 (DDP or one device; not FSDP or
  DeepSpeed ZeRO-3, whose parameters are sharded).
- ``training_config.json`` (``command: "track"``: beta, loss and model, which
  the figures read) is written unless the folder has one from another command.
"""

from __future__ import annotations

import logging
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import numpy as np
from transformers import AutoModelForCausalLM

from lm_eval_rankacc.core.errors import TrainingDataError, UsageError
from lm_eval_rankacc.loading.documents import documents, sample_indices
from lm_eval_rankacc.training import losses, scoring
from lm_eval_rankacc.training.config import DPOConfig
from lm_eval_rankacc.training.examples import Pair, documents_to_pairs, log_skipped
from lm_eval_rankacc.training.figures import draw_figures
from lm_eval_rankacc.training.models import pad_id
from lm_eval_rankacc.training.pairs import tokenized_pairs
from lm_eval_rankacc.training.run_folder.files import CONFIG_FILE, read_config, write_json
from lm_eval_rankacc.training.splits import loader_options, training_data_errors
from lm_eval_rankacc.training.tokens import check_lengths
from lm_eval_rankacc.training.tracking_callback import TrackingCallback
from lm_eval_rankacc.training.tracking_log import SETS, TrackingLog

log = logging.getLogger("lm_eval_rankacc.training")

INITIAL = "initial"
COMMAND = "track"
#: ``rankacc dpo``'s option defaults (:class:`.config.DPOConfig`), which the tracker's are.
DPO_DEFAULTS = {f.name: f.default for f in fields(DPOConfig) if f.default is not MISSING}


def tracked_pairs(task: str | None, data_files: Any = None, split: str | None = None,
                  sample_size: int = DPO_DEFAULTS["tracking_size"],
                  seed: int = DPO_DEFAULTS["tracking_seed"]) -> tuple[str, list[Pair]]:
    """(task name, the tracked pairs): ``sample_size`` of the pairs of the
    task's documents (0: all), ``seed`` fixing which."""
    options = loader_options(task, data_files, split)
    task_name = options["task"]
    with training_data_errors():
        docs = documents(sample_size=0, **options)
    pairs, skipped = documents_to_pairs(docs)
    log_skipped(f"{task_name} (tracked)", skipped)
    keep = sample_indices(len(pairs), sample_size, seed)
    return task_name, [pairs[i] for i in keep]


def _task_samples(run: Any, task: str) -> Any:
    """The ``TaskSamples`` of ``task`` in a loaded run (or the run's only task)."""
    if hasattr(run, "loglik"):
        return run
    tasks = getattr(run, "tasks", None)
    if not isinstance(tasks, dict):
        raise UsageError(f"reference={run!r}: not 'initial', a model path or a run loaded with "
                         "lm_eval_rankacc.outputs.runs.load_run")
    if task in tasks:
        return tasks[task]
    if len(tasks) == 1:
        return next(iter(tasks.values()))
    raise TrainingDataError(f"the reference run {getattr(run, 'path', '')} has no task {task!r} "
                            f"(it has {', '.join(sorted(tasks)) or 'none'})")


def reference_from_run(run: Any, task: str, pairs: list[Pair]) -> np.ndarray:
    """(N, 2) reference log-probabilities of ``pairs`` read from an lm-eval
    ``--log_samples`` run; every pair's document must be in it, unchanged."""
    samples = _task_samples(run, task)
    where = {doc_id: k for k, doc_id in enumerate(samples.ids)}
    out = np.full((len(pairs), 2), np.nan)
    missing, changed = [], []
    for n, pair in enumerate(pairs):
        k = where.get(pair.doc_id)
        if k is None:
            missing.append(pair.doc_id)
            continue
        doc, (i, j) = samples.docs[k], pair.at
        responses = list(doc.get("responses") or [])
        if doc.get("prompt") != pair.prompt or responses[i:i + 1] != [pair.chosen] or responses[j:j + 1] != [pair.rejected]:
            changed.append(pair.doc_id)
            continue
        out[n] = samples.loglik[k][i], samples.loglik[k][j]
    if missing or changed:
        raise TrainingDataError(
            f"the reference run {samples.path} does not hold the tracked documents of {task}: "
            + "; ".join(f"{len(ids)} {what} (e.g. {', '.join(sorted(set(ids))[:5])})"
                        for what, ids in (("missing", missing), ("with other content", changed)) if ids))
    return out


def _tokenizer_of(processing_class: Any) -> Any:
    return getattr(processing_class, "tokenizer", None) or processing_class


class RankingTracker(TrackingCallback):
    """Per-datapoint ranking tracking for any ``transformers.Trainer`` (see the module docstring)."""

    def __init__(self, output_dir: str | Path | None = None, *, task: str | None = None, data_files: Any = None,
                 split: str | None = None, sample_size: int = DPO_DEFAULTS["tracking_size"],
                 seed: int = DPO_DEFAULTS["tracking_seed"], reference: Any = INITIAL, tokenizer: Any = None,
                 beta: float | None = None, loss: str = DPO_DEFAULTS["loss"], gamma: float = DPO_DEFAULTS["gamma"],
                 tau: float = DPO_DEFAULTS["tau"], max_length: int = DPO_DEFAULTS["max_length"],
                 max_prompt_length: int = DPO_DEFAULTS["max_prompt_length"],
                 batch_size: int = DPO_DEFAULTS["per_device_eval_batch_size"], packing: bool = DPO_DEFAULTS["packing"],
                 plots: bool = DPO_DEFAULTS["plots"], set_name: str = "train"):
        if set_name not in SETS:
            raise UsageError(f"set_name must be one of {', '.join(SETS)}, got {set_name!r}")
        check_lengths(max_length, max_prompt_length)
        super().__init__(output_dir or ".", loss=loss, beta=DPO_DEFAULTS["beta"] if beta is None else beta, gamma=gamma, tau=tau)
        self.output_dir, self.beta_given = output_dir, beta
        self.task, self.pairs = tracked_pairs(task, data_files, split, sample_size, seed)
        self.reference, self.tokenizer = reference, tokenizer
        self.lengths = (max_length, max_prompt_length)
        self.batch_size, self.packing, self.plots, self.set_name = batch_size, packing, plots, set_name
        self.dataset: scoring.PairDataset | None = None
        self.ref: np.ndarray | None = None
        self.layout: dict[str, bool] = {}
        self._pad = 0
        self._last_step = -1

    # ------------------------------------------------------------------ set up
    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kwargs):  # noqa: ANN001
        self.log = TrackingLog(self.output_dir or args.output_dir)
        beta = self.beta_given if self.beta_given is not None else float(getattr(args, "beta", DPO_DEFAULTS["beta"]))
        self.objective["beta"] = beta
        losses.check_options(self.objective["loss"], beta, self.objective["tau"], self.objective["gamma"])
        self._last_step = -1
        if isinstance(self.reference, (str, Path)) and self.reference != INITIAL:
            self.reference_weights, self.reference_is_initial = self.reference, False
        if not state.is_world_process_zero:
            super().on_train_begin(args, state, control, model=model, **kwargs)
            return
        self._prepare(model, _tokenizer_of(self.tokenizer or processing_class))
        self.ref = self._reference(model, state.global_step)  # a separate reference model is held here
        super().on_train_begin(args, state, control, model=model, **kwargs)
        self._write_config(model)

    def _prepare(self, model, tokenizer) -> None:  # noqa: ANN001
        """Tokenize the tracked pairs and choose the scoring layout."""
        if tokenizer is None:
            raise UsageError("RankingTracker needs a tokenizer: give tokenizer= or the trainer's processing_class")
        name = "validation" if self.set_name == "validation" else "tracking"
        pairs, _ = tokenized_pairs(name, self.task, self.pairs, tokenizer, *self.lengths)
        self.dataset = pairs.view(name, np.arange(len(pairs.ids)))
        self._pad = pad_id(tokenizer)
        keep = scoring.supports_logits_to_keep_mask(model)
        packed = bool(self.packing) and scoring.packing_possible(model)
        if packed:
            items = [self.dataset[k] for k in range(len(self.dataset) - 1, max(-1, len(self.dataset) - 4), -1)]
            packed, diff = scoring.packing_agrees(model, items, self._pad, keep, next(model.parameters()).device)
            if not packed:
                log.warning("packed scoring differs from the plain layout by %.3g on this model: not packing", diff)
        self.layout = {"packed": packed, "logits_to_keep": keep}

    def _score(self, model) -> np.ndarray:  # noqa: ANN001
        return scoring.score_pairs(model, self.dataset, self._pad, self.batch_size, **self.layout)

    def _reference(self, model, step: int) -> np.ndarray:  # noqa: ANN001
        ref = self.reference
        if isinstance(ref, str) and ref == INITIAL:
            if step > 0:
                raise UsageError(f"training resumes at step {step}: the initial model is gone; give the tracker "
                                 "reference= the initial model's path or an lm-eval run of it")
            values = self._score(model)
        elif isinstance(ref, (str, Path)):
            param = next(model.parameters())
            ref_model = AutoModelForCausalLM.from_pretrained(str(ref), dtype=param.dtype).to(param.device)
            values = self._score(ref_model)
            self.hold_reference(ref_model, ref)
            del ref_model
        else:
            values = reference_from_run(ref, self.task, self.pairs)
        if not np.isfinite(values).all():
            raise TrainingDataError(f"the reference gives non-finite log-probabilities for "
                                    f"{int((~np.isfinite(values).all(1)).sum())} tracked pairs")
        return values

    def _write_config(self, model) -> None:  # noqa: ANN001
        existing = read_config(self.log.dir)
        if existing and existing.get("command") != COMMAND:
            log.info("%s has a %s from `%s`: not replacing it", self.log.dir, CONFIG_FILE, existing.get("command"))
            return
        name = str(getattr(getattr(model, "config", None), "_name_or_path", "") or "")
        ref = self.reference if isinstance(self.reference, (str, Path)) else str(getattr(self.reference, "path", ""))
        write_json(self.log.dir / CONFIG_FILE, {
            "command": COMMAND, "dpo": {"model_name_or_path": name, **self.objective},
            "tracking": {"task": self.task, "pairs": len(self.pairs), "set": self.set_name,
                         "reference": str(ref), "scoring": self.layout},
        })

    # ------------------------------------------------------------------ events
    def on_evaluate(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
        if not self.active or self.dataset is None or state.global_step == self._last_step:
            return  # rank 0 only; once per step (a dict of eval sets calls this once per set)
        self._last_step = state.global_step
        self._model = model if model is not None else self._model
        policy = self._score(model)
        summary = self.record(self.set_name, state.global_step, state.epoch, self.dataset.ids,
                              self.dataset.doc_ids, policy, self.ref)
        if summary is not None:
            log.info("step %d: rank accuracy %.4f (reference %.4f) on %d tracked pairs", state.global_step,
                     summary["rank_acc"], summary["ref_rank_acc"], summary["n"])

    def on_train_end(self, args, state, control, **kwargs):  # noqa: ANN001
        if self.active and self.plots and self.summaries:
            draw_figures(self.log.dir)
