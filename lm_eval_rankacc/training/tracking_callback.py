"""Trainer callbacks of ``rankacc sft`` and ``rankacc dpo``, one job each; they
use only the standard callback events, so they work with any
``transformers.Trainer`` (TRL's included).

- :class:`TrackingCallback`: the per-datapoint tracking log
  (:mod:`.tracking`); the trainer hands it the scores of each tracked set at
  each evaluation (:meth:`TrackingCallback.record`), and it computes each
  datapoint's losses and ranking (:func:`datapoint_arrays`) and, once per
  step, the distance travelled by the weights (:mod:`.distance`).
- :class:`StopOnSignal`: SIGTERM (and SIGINT, once) asks the trainer to save
  a checkpoint at the end of the current optimisation step and stop; the run
  can then be continued with ``--resume_from_checkpoint``.
- :class:`MarkRunCheckpoints`: each checkpoint folder names the run that
  wrote it (for ``--fresh_start``, :mod:`.rundir`).
- :class:`MarkBestCheckpoint`: after every save, ``best_checkpoint.json`` and
  the link ``best_checkpoint`` name the checkpoint with the best
  ``metric_for_best_model`` (the lowest validation loss) that exists.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback

from lm_eval_rankacc.core import theory
from lm_eval_rankacc.training import losses
from lm_eval_rankacc.training.distance import WeightDistance, is_sharded, reference_weights
from lm_eval_rankacc.training.files import CHECKPOINT_PREFIX, RUN_MARKER, run_id_of, write_json
from lm_eval_rankacc.training.tracking import TrackingLog, make_rows, summarize_step

log = logging.getLogger("lm_eval_rankacc.training")

BEST_FILE = "best_checkpoint.json"
#: Not "checkpoint-*": the trainer rotates (deletes) folders matching that.
BEST_LINK = "best_checkpoint"


class StopOnSignal(TrainerCallback):
    """Save and stop at the next step end after SIGTERM (or a first SIGINT)."""

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)):
        self.signals = signals
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def _handler(self, signum, frame):  # noqa: ANN001
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        self.received = signum
        log.warning("received %s: saving a checkpoint at the end of this step, then stopping",
                    signal.Signals(signum).name)

    def on_train_begin(self, args, state, control, **kwargs):
        self.received = None
        for sig in self.signals:
            try:
                self._previous[sig] = signal.signal(sig, self._handler)
            except ValueError:  # not the main thread: signals cannot be caught here
                pass

    def on_train_end(self, args, state, control, **kwargs):
        for sig, previous in self._previous.items():
            try:
                signal.signal(sig, previous)
            except (ValueError, TypeError):
                pass
        self._previous.clear()

    def _stop_everywhere(self) -> bool:
        """True on every process when any process received a signal."""
        flag = self.received is not None
        try:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
                import torch

                device = "cuda" if torch.cuda.is_available() and dist.get_backend() == "nccl" else "cpu"
                t = torch.tensor([1 if flag else 0], device=device)
                dist.all_reduce(t, op=dist.ReduceOp.MAX)
                flag = bool(t.item())
        except Exception:  # pragma: no cover - best effort outside torchrun
            pass
        return flag

    def on_step_end(self, args, state, control, **kwargs):
        if self._stop_everywhere():
            if self.received is None:
                self.received = signal.SIGTERM
            control.should_save = args.save_strategy != "no"
            control.should_training_stop = True
        return control


def mark_best(output_dir: str | Path, state) -> Path | None:  # noqa: ANN001
    """Write ``best_checkpoint.json`` and point ``best_checkpoint`` at the
    trainer's best checkpoint (``state.best_model_checkpoint``)."""
    best = getattr(state, "best_model_checkpoint", None)
    if not best or not Path(best).is_dir():
        return None
    out = Path(output_dir)
    info = {
        "checkpoint": Path(best).name, "path": str(Path(best).resolve()),
        "step": getattr(state, "best_global_step", None), "metric": getattr(state, "best_metric", None),
    }
    write_json(out / BEST_FILE, info)
    link = out / BEST_LINK
    try:
        if link.is_symlink() or link.exists():
            if link.is_symlink() and os.readlink(link) == Path(best).name:
                return Path(best)
            link.unlink()
        link.symlink_to(Path(best).name, target_is_directory=True)
    except OSError as err:  # e.g. a file system without links: the JSON file still names it
        log.warning("could not link %s: %s", link, err)
    return Path(best)


class MarkRunCheckpoints(TrainerCallback):
    """Writes the run's id (:data:`.files.RUN_MARKER`) into each checkpoint
    folder the run saves, so that ``--fresh_start`` tells the run's own
    checkpoints from anyone else's (:mod:`.rundir`). It writes it when a save
    is due, before the Trainer fills the folder (so a save killed half-way
    leaves a marked folder), and after the save if it was missed (a save
    decided later, e.g. ``--save_strategy best``). Place it after the
    callbacks that ask for a save (:class:`StopOnSignal`)."""

    def __init__(self, run_id: str):
        self.run_id = run_id

    def _mark(self, args, state) -> None:  # noqa: ANN001
        if not state.is_world_process_zero:
            return
        folder = Path(args.output_dir) / f"{CHECKPOINT_PREFIX}{state.global_step}"
        if run_id_of(folder, RUN_MARKER) != self.run_id:
            folder.mkdir(parents=True, exist_ok=True)
            write_json(folder / RUN_MARKER, {"run_id": self.run_id})

    def on_step_end(self, args, state, control, **kwargs):
        if control.should_save:
            self._mark(args, state)

    def on_epoch_end(self, args, state, control, **kwargs):
        if control.should_save:
            self._mark(args, state)

    def on_save(self, args, state, control, **kwargs):
        self._mark(args, state)


class MarkBestCheckpoint(TrainerCallback):
    """Keeps ``best_checkpoint.json`` and ``best_checkpoint`` up to date (:func:`mark_best`)."""

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            mark_best(args.output_dir, state)

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            mark_best(args.output_dir, state)


# ----------------------------------------------------------------- per-datapoint tracking
def datapoint_arrays(
    policy: np.ndarray, ref: np.ndarray, *, loss: str, beta: float, gamma: float = 1.0, tau: float = 0.1
) -> dict[str, np.ndarray]:
    """Per-datapoint quantities from (N, 2) policy and reference log-probs
    (column 0 the preferred response, column 1 the dispreferred one): Thm.
    4.1's ``c``, the DPO reward margin and loss (:mod:`.losses`), the training
    objective ``loss``, the rankings (Def. 2.3) and the flip category."""
    p = torch.as_tensor(np.asarray(policy, dtype=np.float64))
    r = torch.as_tensor(np.asarray(ref, dtype=np.float64))
    args = (p[:, 0], p[:, 1], r[:, 0], r[:, 1])
    correct = theory.pairs_ranked_correctly(policy[:, 0], policy[:, 1])
    ref_correct = theory.pairs_ranked_correctly(ref[:, 0], ref[:, 1])
    return {
        "c": theory.reference_log_ratio(ref[:, 0], ref[:, 1]),
        "reward_margin": losses.reward_margin(*args, beta).numpy(),
        "dpo_loss": losses.dpo(*args, beta).numpy(),
        "loss": losses.preference_loss(loss, *args, beta=beta, gamma=gamma, tau=tau).numpy(),
        "correct": correct,
        "ref_correct": ref_correct,
        "category": theory.flip_categories(ref_correct, correct),
    }


def tracked_rows(set_name: str, step: int, epoch: float | None, pair_ids: list[str], doc_ids: list[str],
                 policy: np.ndarray, ref: np.ndarray, **objective: Any) -> list[dict[str, Any]]:
    """The tracking rows of one set at one step (``objective``: ``loss``,
    ``beta``, ``gamma``, ``tau`` of :func:`datapoint_arrays`)."""
    values = datapoint_arrays(policy, ref, **objective)
    return make_rows(step, epoch, set_name, pair_ids, doc_ids, policy, ref, values)


class TrackingCallback(TrainerCallback):
    """Writes the tracking log (:class:`.tracking.TrackingLog`) on the main
    process; :meth:`record` is called by the trainer with the scores of each
    tracked set at each evaluation.

    Distance travelled (``weight_distance``, ``weight_distance_ratio`` in the
    summary rows; :mod:`.distance`): theta_ref is the weights held by
    :meth:`hold_reference`, else ``reference_weights`` (a model folder or hub
    name whose safetensors files hold it; default: the model's own
    ``name_or_path``), else, at step 0 when ``reference_is_initial``, a copy
    of the model as training begins. ``track_distance=False`` records none."""

    def __init__(self, output_dir: str | Path, *, loss: str, beta: float, gamma: float = 1.0, tau: float = 0.1,
                 reference_weights: str | Path | None = None, reference_is_initial: bool = True,
                 track_distance: bool = True):
        self.log = TrackingLog(output_dir)
        self.objective = {"loss": loss, "beta": beta, "gamma": gamma, "tau": tau}
        self.active = True
        self.reference_weights, self.reference_is_initial = reference_weights, reference_is_initial
        self.track_distance = track_distance
        self.weights: WeightDistance | None = None
        self._model: Any = None
        self._distance: tuple[int, dict[str, Any]] | None = None

    @property
    def summaries(self) -> list[dict[str, Any]]:
        """The summaries written so far (one per set per evaluation step)."""
        return self.log.summaries

    def on_train_begin(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
        self.active = state.is_world_process_zero
        if self.active:
            self.log.start(state.global_step)
        self._distance = None
        if self.track_distance and model is not None:
            self._model = model
            if self.weights is not None and self.weights.sharded != is_sharded(model):
                log.warning("distance travelled is not recorded: the reference weights were held %s, the trained "
                            "model's are %s", *(("whole", "sharded") if is_sharded(model) else ("sharded", "whole")))
                self.weights, self.track_distance = None, False
            elif self.weights is not None and not self.weights.fits(model):
                log.warning("distance travelled is not recorded: the reference's parameters are not the trained "
                            "model's (names or shapes differ)")
                self.weights, self.track_distance = None, False
            elif self.weights is None and (self.active or is_sharded(model)):
                self.weights = reference_weights(model, self.reference_weights or _name_of(model),
                                                 is_reference=state.global_step == 0 and self.reference_is_initial)

    def hold_reference(self, model: Any, path: str | Path | None = None) -> None:
        """Hold ``model`` (a reference other than the starting policy, about to
        be freed) as theta_ref: streamed from ``path`` when it can be, else copied."""
        if self.track_distance and (_main_process() or is_sharded(model)):
            self.weights = reference_weights(model, path, is_reference=True)

    def distance_fields(self, step: int) -> dict[str, Any]:
        """The distance travelled at ``step`` (computed once per step, on every
        process when the model is sharded, else on the main one); {} when not tracked."""
        if self.weights is None or self._model is None or not (self.active or self.weights.sharded):
            return {}
        if self._distance is None or self._distance[0] != step:
            self._distance = (step, self.weights.fields(self._model))
        return dict(self._distance[1])

    def record(self, set_name: str, step: int, epoch: float | None, pair_ids: list[str], doc_ids: list[str],
               policy: np.ndarray, ref: np.ndarray) -> dict[str, Any] | None:
        """Write the rows of one set at one step; return its summary."""
        rows = tracked_rows(set_name, step, epoch, pair_ids, doc_ids, policy, ref, **self.objective)
        if not rows:
            return None
        summary = {**summarize_step(rows), **self.distance_fields(step)}
        if self.active:
            self.log.add(set_name, step, rows, summary)
        return summary


def _name_of(model: Any) -> str | None:
    return getattr(getattr(model, "config", None), "_name_or_path", None) or None


def _main_process() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
