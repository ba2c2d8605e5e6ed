"""``TrackingCallback``: the per-datapoint tracking of ``rankacc dpo`` at each
evaluation. The trainer hands it the scores of each tracked set
(:meth:`TrackingCallback.record`); it computes each datapoint's losses and
ranking (:func:`datapoint_arrays`), once per step the distance travelled by
the weights (:mod:`.distance`), and writes the log (:mod:`.tracking_log`).
A standard ``TrainerCallback`` (:class:`.ranking_tracker.RankingTracker`
builds on it for any ``transformers.Trainer``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback

from lm_eval_rankacc.core import theory
from lm_eval_rankacc.training import losses
from lm_eval_rankacc.training.distance import WeightDistance, is_sharded, reference_weights
from lm_eval_rankacc.training.tracking_log import TrackingLog, make_rows, summarize_step

log = logging.getLogger("lm_eval_rankacc.training")


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
    """Writes the tracking log (:class:`.tracking_log.TrackingLog`) on the main
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
