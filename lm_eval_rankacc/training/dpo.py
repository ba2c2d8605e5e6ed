"""``train_dpo``: DPO, DPO^gamma or IPO with per-datapoint ranking tracking.

In order: the output folder and the checkpoint to resume from are checked
(:mod:`.run_folder.start`, :mod:`.run_folder.checkpoints`); documents -> pairs -> tokens
(:mod:`.pairs`); the scoring layout is chosen (packed where the model honours
a 4-D mask, checked on a few pairs);
the reference model scores every pair once (:mod:`.reference`; batched, no
grad) and is freed, or, when it is also the starting policy (the usual case),
simply trained on; the :class:`.trainer.PreferenceTrainer` trains, evaluates
the tracked sets at every evaluation step (:class:`.tracking_callback.TrackingCallback`),
saves checkpoints and marks the best one; the distance travelled by the
weights from the reference's is recorded at every evaluation step
(:mod:`.distance`: streamed from the reference's safetensors files, else a
CPU copy); then the figures are drawn (:mod:`.figures`).

Files in ``output_dir``: ``training_config.json`` (all options, data counts),
``reference_logps.npz`` (the reference pass, reused by a resumed run),
``tracking.jsonl`` and ``tracking_summary.jsonl``, ``figure2_flips.png`` and
``figure3_loss_vs_c.png``, ``figure4_distance.png`` (with
``figure4_points.csv``), the Trainer's ``checkpoint-<step>/`` folders (plain
transformers folders, tokenizer included, each with ``rankacc_run.json``
naming the run), ``best_checkpoint.json`` and the link ``best_checkpoint``.
"""

from __future__ import annotations

import gc
import logging
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from lm_eval_rankacc.core.checkpoint_names import CHECKPOINT_PREFIX
from lm_eval_rankacc.training import scoring
from lm_eval_rankacc.training.config import DPOConfig
from lm_eval_rankacc.training.figures import draw_figures
from lm_eval_rankacc.training.models import check_transformers, load_model, load_tokenizer, pad_id, same_model
from lm_eval_rankacc.training.pairs import PreferenceData, build_pair_sets
from lm_eval_rankacc.training.reference import fill_reference
from lm_eval_rankacc.training.run_folder.marks import MarkBestCheckpoint, MarkRunCheckpoints
from lm_eval_rankacc.training.run_folder.result import RunResult, finish_run, timed, write_run_config
from lm_eval_rankacc.training.run_folder.start import RunStart, start_run
from lm_eval_rankacc.training.run_folder.write_errors import output_failures
from lm_eval_rankacc.training.stop_on_signal import BeforeTraining, StopOnSignal
from lm_eval_rankacc.training.tracking_callback import TrackingCallback
from lm_eval_rankacc.training.trainer import PreferenceTrainer

log = logging.getLogger("lm_eval_rankacc.training")


class Layout(NamedTuple):
    """How pairs are scored (:mod:`.scoring`)."""

    packed: bool
    logits_to_keep: bool


def _self_check_pairs(train: scoring.PairDataset, n: int = 3) -> list[dict[str, Any]]:
    """The ``n`` shortest pairs whose responses differ: the packing self-check
    runs the model twice on them, which costs little."""
    distinct = [i for i in np.argsort(train.lengths(), kind="stable")
                if train.chosen[i] != train.rejected[i] and train.chosen[i]]
    return [train[int(i)] for i in (distinct or range(len(train)))[:n]]


def choose_layout(model, train: scoring.PairDataset, config: DPOConfig, pad_token_id: int) -> Layout:  # noqa: ANN001
    """Packed when ``--packing``, the attention honours custom 4-D masks and the
    packed scores agree with the plain ones on this model; logits only at the
    response positions when the model takes a boolean ``logits_to_keep``."""
    logits_to_keep = scoring.supports_logits_to_keep_mask(model)
    packed = bool(config.packing) and scoring.packing_possible(model)
    if packed:
        ok, diff = scoring.packing_agrees(model.to(config.device), _self_check_pairs(train), pad_token_id,
                                          logits_to_keep, config.device)
        if not ok:
            log.warning("packed scoring differs from the plain layout by %.3g on this model: not packing", diff)
            packed = False
    elif config.packing:
        log.info("attention %r cannot take a custom 4-D mask: not packing", scoring.attention_kind(model))
    log.info("scoring layout: %s; logits only at response positions: %s", "packed" if packed else "plain",
             logits_to_keep)
    return Layout(packed, logits_to_keep)


def _make_trainer(config: DPOConfig, tokenizer, pdata: PreferenceData, layout: Layout,  # noqa: ANN001
                  tracker: TrackingCallback, callbacks: list, model, is_reference: bool  # noqa: ANN001
                  ) -> PreferenceTrainer:
    """A :class:`PreferenceTrainer` of this run for ``model`` (the reference, or the policy)."""
    return PreferenceTrainer(
        model=model, args=config,
        data_collator=scoring.PairCollator(pad_id(tokenizer), layout.packed, attention_cost=scoring.attention_cost(model)),
        train_dataset=pdata.train, eval_dataset=pdata.eval_sets(), processing_class=tokenizer,
        callbacks=[tracker, MarkBestCheckpoint(), *callbacks],
        loss=config.loss, beta=config.beta, gamma=config.gamma, tau=config.tau, pair_sets=pdata.named_sets(),
        tracker=tracker, logits_to_keep=layout.logits_to_keep, policy_is_reference=is_reference,
        ipo_average_log_prob=config.ipo_average_log_prob,
    )


def _release_memory() -> None:
    """Give the memory of a model nothing refers to any more back (to the GPU too)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _load_data(config: DPOConfig, timings: dict[str, float]):  # noqa: ANN202
    """(tokenizer, pair sets), timed as ``data_s``."""
    with timed(timings, "data_s"):
        tokenizer = load_tokenizer(config)
        pdata = build_pair_sets(config, tokenizer)
    log.info("%s: %d training pairs (%d tracked), %d validation pairs (%s)", pdata.info["task"],
             len(pdata.train.ids), pdata.info["tracking_pairs"], len(pdata.validation.ids),
             pdata.info["validation_source"])
    return tokenizer, pdata


def train_dpo(config: DPOConfig, callbacks: list | None = None) -> RunResult:
    """Train with DPO / DPO^gamma / IPO and track ranking flips (see the module docstring)."""
    check_transformers()
    start = start_run(config)
    try:
        return _train(config, start, callbacks)
    finally:
        start.release()  # the folder's lock (:mod:`.run_folder.lock`)


def _train(config: DPOConfig, start: RunStart, callbacks: list | None) -> RunResult:
    if config.eval_strategy == "no":
        log.warning("evaluation is off (--eval_strategy no): nothing will be tracked")
    out, timings = Path(config.output_dir), {}
    with BeforeTraining(out) as stage:  # Ctrl-C / SIGTERM before training: one line, nothing to save
        tokenizer, pdata = _load_data(config, timings)
        ref_path = config.ref_model_name_or_path or config.model_name_or_path
        shared = same_model(ref_path, config.model_name_or_path)
        model = load_model(ref_path, config)
        layout = choose_layout(model, pdata.train, config, pad_id(tokenizer))
        tracker = TrackingCallback(out, loss=config.loss, beta=config.beta, gamma=config.gamma, tau=config.tau,
                                   reference_weights=ref_path, reference_is_initial=shared,
                                   track_distance=config.track_distance)
        stopper = StopOnSignal()
        make_trainer = partial(_make_trainer, config, tokenizer, pdata, layout, tracker,
                               [stopper, MarkRunCheckpoints(start.run_id), *(callbacks or [])])

        stage.phase = "the reference pass"
        with timed(timings, "reference_s"):
            trainer = make_trainer(model, shared)
            fill_reference(trainer, pdata, config, ref_path, layout.packed)
        if not shared:  # the reference is done: hold its weights for the distance travelled, free it, load the policy
            stage.phase = "loading the policy"
            tracker.hold_reference(model, ref_path)
            del trainer, model
            _release_memory()
            trainer = make_trainer(load_model(config.model_name_or_path, config), False)

    if trainer.is_world_process_zero():
        write_run_config("dpo", config, start, data=pdata.info, scoring=layout._asdict(), reference_model=ref_path)
    resume = start.resume
    if resume:  # the steps up to the checkpoint are already in the log: evaluate as the uninterrupted run would
        config.eval_on_start = False
    with timed(timings, "train_s"), output_failures(trainer):
        train_output = trainer.train(resume_from_checkpoint=resume)
    incomplete = []
    if config.plots and tracker.active and tracker.summaries:
        _, problem = draw_figures(out)
        incomplete += [problem] if problem else []

    result = finish_run(trainer, stopper, train_output, timings)
    result.incomplete = incomplete
    if result.stopped_by_signal:
        log.warning("stopped by a signal at step %d; continue with --resume_from_checkpoint %s",
                    result.global_step, out / f"{CHECKPOINT_PREFIX}{result.global_step}")
    return result
