"""``PreferenceTrainer``: ``transformers.Trainer`` with the DPO / DPO^gamma / IPO loss.

Only the loss and the evaluation are custom; checkpointing, resuming, logging
(``report_to``), mixed precision, gradient accumulation and multi-GPU are the
Trainer's own:

- :meth:`compute_loss`: response log-probabilities of the policy for a batch
  of pairs (:mod:`.scoring`), the reference log-probabilities stored with
  each pair, and the configured loss (:mod:`.losses`). A NaN or infinite loss
  (or gradient norm) stops training with :class:`NonFiniteLossError` naming
  the step and the pairs of the batch, before the optimiser step, so no
  checkpoint is written with bad weights.
- :meth:`prediction_step` returns the policy's log-probabilities per pair as
  "predictions" and (set, index) as "labels", so the Trainer's own evaluation
  loop batches, gathers across processes and de-duplicates them;
  ``compute_metrics`` turns them into the per-datapoint tracking rows
  (:class:`.tracking_callback.TrackingCallback`) and the logged metrics
  (``eval_validation_loss``, ``eval_validation_rank_acc``, ...).
- :meth:`compute_reference_logps`: the same evaluation loop run once with the
  reference model before training fills in each pair's reference
  log-probabilities.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch
from transformers import Trainer
from transformers.trainer_utils import EvalPrediction, get_last_checkpoint

from lm_eval_rankacc.core.errors import NonFiniteLossError
from lm_eval_rankacc.training import losses
from lm_eval_rankacc.training.scoring import SET_NAMES, PairDataset, attention_kind, response_logps
from lm_eval_rankacc.training.tracking_callback import tracked_rows
from lm_eval_rankacc.training.tracking_log import summarize_step

log = logging.getLogger("lm_eval_rankacc.training")

#: Metric names (logged) of the four categories.
CATEGORY_KEYS = ("correct_to_correct", "correct_to_incorrect", "incorrect_to_correct", "incorrect_to_incorrect")


class PreferenceTrainer(Trainer):
    """A Trainer for preference pairs (see the module docstring)."""

    #: compute_loss returns a per-batch mean: the Trainer divides by the accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(self, *args: Any, loss: str = "dpo", beta: float = 0.1, gamma: float = 1.0, tau: float = 0.1,
                 pair_sets: dict[str, PairDataset] | None = None, tracker=None, logits_to_keep: bool = True,
                 policy_is_reference: bool = False, ipo_average_log_prob: bool = False, **kwargs: Any):
        losses.check_options(loss, beta, tau, gamma)
        if ipo_average_log_prob and loss != "ipo":
            raise ValueError(f"ipo_average_log_prob is only for loss='ipo', got {loss!r}")
        kwargs.setdefault("compute_metrics", self._compute_metrics)
        super().__init__(*args, **kwargs)
        self.loss_name, self.beta, self.gamma, self.tau = loss, beta, gamma, tau
        self.ipo_average_log_prob = ipo_average_log_prob
        self.pair_sets = dict(pair_sets or {})
        self.tracker = tracker
        self.use_logits_to_keep = logits_to_keep
        #: True when the policy starts as the reference model (step 0 then needs no forward pass)
        self.policy_is_reference = policy_is_reference
        self.attention = attention_kind(self.model)
        self._train_stats: list[torch.Tensor] = []

    # ------------------------------------------------------------------ loss
    def _logps(self, model, inputs) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
        return response_logps(model, inputs, inputs["pair_index"].shape[0], self.use_logits_to_keep, self.attention)

    @staticmethod
    def _response_tokens(inputs) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
        """Token counts of each pair's (chosen, rejected) response, from the batch's target owners."""
        n = inputs["pair_index"].shape[0]
        counts = torch.bincount(inputs["target_owner"], minlength=2 * n)
        chosen, rejected = counts[:n], counts[n:]
        if "same_response" in inputs:  # an identical rejected response is not scored again
            rejected = torch.where(inputs["same_response"].to(chosen.device), chosen, rejected)
        return chosen, rejected

    def _objective(self, pc: torch.Tensor, pr: torch.Tensor, ref: torch.Tensor,
                   inputs=None) -> torch.Tensor:  # noqa: ANN001
        tokens = (None, None)
        if self.ipo_average_log_prob and inputs is not None:
            tokens = tuple(t.to(pc.device) for t in self._response_tokens(inputs))
        return losses.preference_loss(self.loss_name, pc, pr, ref[:, 0], ref[:, 1], beta=self.beta,
                                      gamma=self.gamma, tau=self.tau, chosen_tokens=tokens[0],
                                      rejected_tokens=tokens[1])

    def _pair_ids(self, pair_index: torch.Tensor) -> list[str]:
        out = []
        for code, idx in pair_index.tolist():
            ds = self.pair_sets.get(SET_NAMES[code])
            out.append(ds.ids[idx] if ds is not None else f"{SET_NAMES[code]}[{idx}]")
        return out

    def _non_finite(self, what: str, detail: str) -> NonFiniteLossError:
        step = self.state.global_step + 1
        last = None
        try:
            last = get_last_checkpoint(self.args.output_dir)
        except OSError:
            pass
        return NonFiniteLossError(
            f"non-finite {what} at training step {step} (epoch {self.state.epoch or 0:.4f}): {detail}; "
            f"training stopped before the optimiser step, nothing was saved after step {step - 1}; "
            f"last checkpoint: {last or 'none'}"
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
        pc, pr = self._logps(model, inputs)
        ref = inputs["ref_logps"].to(device=pc.device, dtype=pc.dtype)
        per_pair = self._objective(pc, pr, ref, inputs)
        finite = torch.isfinite(per_pair)
        if not bool(finite.all()):
            ids = self._pair_ids(inputs["pair_index"])
            bad = [i for i, ok in zip(ids, finite.tolist()) if not ok]
            shown = ", ".join(ids[:12]) + (" ..." if len(ids) > 12 else "")
            raise self._non_finite(
                f"{self.loss_name} loss",
                f"batch of {len(ids)} pairs [{shown}]; non-finite for {bad[:12]} "
                f"(policy log-probs {[round(x, 4) for x in torch.stack([pc, pr], 1)[~finite].flatten().tolist()[:8]]})",
            )
        with torch.no_grad():
            margin = losses.reward_margin(pc, pr, ref[:, 0], ref[:, 1], self.beta)
            self._train_stats.append(torch.stack([(pc >= pr).float().sum(), margin.sum(),
                                                  torch.tensor(float(len(pc)), device=pc.device)]))
        loss = per_pair.mean()
        return (loss, {"chosen_logps": pc, "rejected_logps": pr}) if return_outputs else loss

    def _get_grad_norm(self, model, grad_norm=None):  # noqa: ANN001
        norm = super()._get_grad_norm(model, grad_norm=grad_norm)
        try:
            value = float(norm)
        except (TypeError, ValueError):
            return norm
        if not math.isfinite(value):
            raise self._non_finite("gradient norm", f"gradient norm {value} with a finite loss")
        return norm

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Adds the training pairs' ranking accuracy and mean reward margin since the last log."""
        if "loss" in logs and self._train_stats:
            total = torch.stack(self._train_stats).sum(0)
            if self.args.world_size > 1:
                total = self.accelerator.reduce(total, reduction="sum")
            correct, margin, n = total.tolist()
            if n:
                logs["rank_acc"] = round(correct / n, 4)
                logs["reward_margin"] = round(margin / n, 6)
            self._train_stats = []
        super().log(logs, start_time)

    # ------------------------------------------------------------------ evaluation
    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):  # noqa: ANN001
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            pc, pr = self._logps(model, inputs)
        if prediction_loss_only:
            return None, None, None
        return None, torch.stack([pc, pr], dim=1).double(), inputs["pair_index"]

    def _compute_metrics(self, pred: EvalPrediction) -> dict[str, float]:
        policy = np.asarray(pred.predictions, dtype=np.float64).reshape(-1, 2)
        labels = np.asarray(pred.label_ids).reshape(-1, 2).astype(np.int64)
        if not len(labels):
            return {}
        name = SET_NAMES[int(labels[0, 0])]
        ds = self.pair_sets[name]
        idx = labels[:, 1]
        ref = ds.ref[idx]
        set_name = "train" if name == "tracking" else name
        where = (set_name, self.state.global_step, self.state.epoch, [ds.ids[i] for i in idx],
                 [ds.doc_ids[i] for i in idx], policy, ref)
        if self.tracker is not None:
            summary = self.tracker.record(*where)
        else:
            summary = summarize_step(tracked_rows(*where, loss=self.loss_name, beta=self.beta, gamma=self.gamma,
                                                  tau=self.tau))
        metrics = {
            "loss": summary["loss"], "dpo_loss": summary["dpo_loss"], "reward_margin": summary["reward_margin"],
            "rank_acc": summary["rank_acc"], "ref_rank_acc": summary["ref_rank_acc"],
        }
        for key, cat in zip(CATEGORY_KEYS, summary["categories"]):
            metrics[f"{key}_share"] = summary["categories"][cat]["share"]
        return {k: (float("nan") if v is None else v) for k, v in metrics.items()}

    def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None,
                        metric_key_prefix="eval"):  # noqa: ANN001
        """At step 0, when the policy is the reference model itself and no
        update has happened, its scores are the reference pass's: reuse them
        instead of running the model again (bit-identical)."""
        ds = getattr(dataloader, "dataset", None)
        if (self.policy_is_reference and self.state.global_step == 0 and isinstance(ds, PairDataset)
                and self.compute_metrics is not None and np.isfinite(ds.ref[ds.order]).all()):
            from transformers.trainer_utils import EvalLoopOutput, denumpify_detensorize

            preds = ds.ref[ds.order]
            labels = np.stack([np.full(len(ds.order), ds.code), ds.order], axis=1)
            metrics = denumpify_detensorize(self.compute_metrics(EvalPrediction(predictions=preds, label_ids=labels)))
            metrics = {k if k.startswith(f"{metric_key_prefix}_") else f"{metric_key_prefix}_{k}": v
                       for k, v in metrics.items()}
            return EvalLoopOutput(predictions=preds, label_ids=labels, metrics=metrics, num_samples=len(ds))
        return super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)

    # ------------------------------------------------------------------ reference pass
    def compute_reference_logps(self, datasets: list[PairDataset]) -> None:
        """Fill each dataset's ``ref`` with the current model's log-probabilities
        (batched, no grad, through the evaluation loop)."""
        saved = self.compute_metrics
        self.compute_metrics = None
        try:
            for ds in datasets:
                if not len(ds):
                    continue
                self.pair_sets.setdefault(ds.name, ds)
                out = self.evaluation_loop(
                    self.get_eval_dataloader(ds), description=f"Reference log-probabilities ({ds.name})",
                    prediction_loss_only=False, metric_key_prefix="reference",
                )
                preds = np.asarray(out.predictions, dtype=np.float64).reshape(-1, 2)
                labels = np.asarray(out.label_ids).reshape(-1, 2).astype(np.int64)
                ds.ref[labels[:, 1]] = preds
        finally:
            self.compute_metrics = saved
