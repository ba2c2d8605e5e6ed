"""Per-datapoint tracking of ranking flips during preference training.

At every evaluation step the trainer scores a fixed subset of the training
pairs (``set = "train"``) and the validation pairs (``set = "validation"``)
with the current policy and hands the log-probabilities to
:class:`TrackingCallback`, which writes

- ``tracking.jsonl``: one row per datapoint per evaluation step (tidy):
  ``step``, ``epoch``, ``set``, ``pair_id``, ``doc_id``, the policy's and the
  reference's log-probabilities of both responses, Thm. 4.1's ``c``, the
  DPO ``reward_margin``, the ``dpo_loss`` (at the run's beta), the training
  objective ``loss`` (DPO, DPO^gamma or IPO), whether the policy ranks the pair
  correctly (``correct``), whether the reference does (``ref_correct``), and
  the ``category`` relative to the reference (correct->correct,
  correct->incorrect, incorrect->correct, incorrect->incorrect);
- ``tracking_summary.jsonl``: one row per set per step (counts, shares and
  means per category).

Correctness is :func:`lm_eval_rankacc.theory.pairs_ranked_correctly` (Def. 2.3:
equal log-probabilities count as correct), the rule of the eval tasks; the
category names are :data:`lm_eval_rankacc.analysis.CATEGORIES`, as in
``rankacc flips``; losses come from :mod:`.losses`.

Resuming: at the start of training the log keeps only the rows of steps up to
the step training resumes from (none for a fresh run); a step evaluated again
(``eval_on_start`` after a resume) replaces its rows. A kill in the middle of
writing leaves at most one partial last line, which is dropped. So a resumed
run's log has every evaluation step exactly once.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback

from lm_eval_rankacc import theory
from lm_eval_rankacc.analysis import CATEGORIES
from lm_eval_rankacc.training import losses

TRACKING_FILE = "tracking.jsonl"
SUMMARY_FILE = "tracking_summary.jsonl"
SETS = ("train", "validation")


def _num(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def datapoint_arrays(
    policy: np.ndarray, ref: np.ndarray, *, loss: str, beta: float, gamma: float = 1.0, tau: float = 0.1
) -> dict[str, np.ndarray]:
    """Per-datapoint quantities from (N, 2) policy and reference log-probs
    (column 0 the preferred response, column 1 the dispreferred one)."""
    p = torch.as_tensor(np.asarray(policy, dtype=np.float64))
    r = torch.as_tensor(np.asarray(ref, dtype=np.float64))
    args = (p[:, 0], p[:, 1], r[:, 0], r[:, 1])
    correct = theory.pairs_ranked_correctly(policy[:, 0], policy[:, 1])
    ref_correct = theory.pairs_ranked_correctly(ref[:, 0], ref[:, 1])
    category = np.where(ref_correct, np.where(correct, 0, 1), np.where(correct, 2, 3))
    return {
        "c": theory.reference_log_ratio(ref[:, 0], ref[:, 1]),
        "reward_margin": losses.reward_margin(*args, beta).numpy(),
        "dpo_loss": losses.dpo(*args, beta).numpy(),
        "loss": losses.preference_loss(loss, *args, beta=beta, gamma=gamma, tau=tau).numpy(),
        "correct": correct,
        "ref_correct": ref_correct,
        "category": category,
    }


def make_rows(step: int, epoch: float | None, set_name: str, pair_ids: list[str], doc_ids: list[str],
              policy: np.ndarray, ref: np.ndarray, values: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    rows = []
    for k, pid in enumerate(pair_ids):
        rows.append({
            "step": int(step), "epoch": None if epoch is None else round(float(epoch), 6), "set": set_name,
            "pair_id": pid, "doc_id": doc_ids[k],
            "logp_chosen": _num(policy[k, 0]), "logp_rejected": _num(policy[k, 1]),
            "ref_logp_chosen": _num(ref[k, 0]), "ref_logp_rejected": _num(ref[k, 1]),
            "c": _num(values["c"][k]), "reward_margin": _num(values["reward_margin"][k]),
            "dpo_loss": _num(values["dpo_loss"][k]), "loss": _num(values["loss"][k]),
            "correct": bool(values["correct"][k]), "ref_correct": bool(values["ref_correct"][k]),
            "category": CATEGORIES[int(values["category"][k])],
        })
    return rows


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def summarize_step(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Summary of the rows of one set at one step."""
    first = rows[0]
    n = len(rows)
    out: dict[str, Any] = {
        "step": first["step"], "epoch": first["epoch"], "set": first["set"], "n": n,
        "loss": _mean([r["loss"] for r in rows]),
        "dpo_loss": _mean([r["dpo_loss"] for r in rows]),
        "reward_margin": _mean([r["reward_margin"] for r in rows]),
        "rank_acc": sum(r["correct"] for r in rows) / n,
        "ref_rank_acc": sum(r["ref_correct"] for r in rows) / n,
        "categories": {},
    }
    for cat in CATEGORIES:
        sel = [r for r in rows if r["category"] == cat]
        out["categories"][cat] = {
            "count": len(sel), "share": len(sel) / n,
            "dpo_loss": _mean([r["dpo_loss"] for r in sel]),
            "reward_margin": _mean([r["reward_margin"] for r in sel]),
        }
    return out


def summarize(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary per (set, step), ordered by step then set."""
    groups: dict[tuple[int, str], list] = defaultdict(list)
    for row in rows:
        groups[(row["step"], row["set"])].append(row)
    return [summarize_step(groups[key]) for key in sorted(groups, key=lambda k: (k[0], SETS.index(k[1]) if k[1] in SETS else 9))]


def read_rows(path: str | Path, max_step: int | None = None) -> list[dict[str, Any]]:
    """Rows of a tracking file (a partial last line, left by a kill, is dropped)."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    with path.open("r", encoding="utf-8") as f:
        lines = f.readlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:  # interrupted write
                break
            raise ValueError(f"{path}: line {i + 1} is not valid JSON") from None
        if max_step is None or row["step"] <= max_step:
            rows.append(row)
    return rows


def best_step(summaries: list[dict[str, Any]]) -> int | None:
    """The step of the lowest mean validation loss (the first, on a tie),
    among the steps after the start (as the Trainer's best checkpoint: step 0
    is the reference itself and has no checkpoint)."""
    val = [s for s in summaries if s["set"] == "validation" and s["loss"] is not None]
    if any(s["step"] > 0 for s in val):
        val = [s for s in val if s["step"] > 0]
    if not val:
        return None
    return min(val, key=lambda s: (s["loss"], s["step"]))["step"]


def _write_lines(path: Path, rows: Iterable[dict[str, Any]], mode: str) -> None:
    with path.open(mode, encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


class TrackingCallback(TrainerCallback):
    """Writes the tracking log; :meth:`record` is called by the trainer with
    the scores of each tracked set at each evaluation (on the main process)."""

    def __init__(self, output_dir: str | Path, *, loss: str, beta: float, gamma: float = 1.0, tau: float = 0.1,
                 plots: bool = True):
        self.dir = Path(output_dir)
        self.path, self.summary_path = self.dir / TRACKING_FILE, self.dir / SUMMARY_FILE
        self.loss, self.beta, self.gamma, self.tau, self.plots = loss, beta, gamma, tau, plots
        self.summaries: list[dict[str, Any]] = []
        self.last_step: dict[str, int] = {}
        self.active = True

    # -------------------------------------------------------------- trainer events
    def on_train_begin(self, args, state, control, **kwargs):
        self.active = state.is_world_process_zero
        if not self.active:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        rows = read_rows(self.path, max_step=state.global_step) if state.global_step > 0 else []
        _write_lines(self.path, rows, "w")
        self.summaries = summarize(rows)
        self.last_step = {}
        for s in self.summaries:
            self.last_step[s["set"]] = max(self.last_step.get(s["set"], -1), s["step"])
        self._write_summary()

    def on_train_end(self, args, state, control, **kwargs):
        if self.active and self.plots and self.summaries:
            from lm_eval_rankacc.training.figures import plot_training

            try:
                plot_training(self.dir)
            except Exception as err:  # a figure must never lose a finished run
                import logging

                logging.getLogger("lm_eval_rankacc.training").warning("could not draw the figures: %s", err)

    # -------------------------------------------------------------- records
    def record(self, set_name: str, step: int, epoch: float | None, pair_ids: list[str], doc_ids: list[str],
               policy: np.ndarray, ref: np.ndarray) -> dict[str, Any]:
        """Write the rows of one set at one step; return its summary."""
        values = datapoint_arrays(policy, ref, loss=self.loss, beta=self.beta, gamma=self.gamma, tau=self.tau)
        rows = make_rows(step, epoch, set_name, pair_ids, doc_ids, policy, ref, values)
        summary = summarize_step(rows) if rows else None
        if not self.active or not rows:
            return summary
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.last_step.get(set_name, -1) >= step:  # evaluated again (e.g. eval_on_start after a resume)
            kept = [r for r in read_rows(self.path) if not (r["set"] == set_name and r["step"] >= step)]
            _write_lines(self.path, kept + rows, "w")
            self.summaries = [s for s in self.summaries if not (s["set"] == set_name and s["step"] >= step)]
        else:
            _write_lines(self.path, rows, "a")
        self.last_step[set_name] = step
        self.summaries.append(summary)
        self.summaries.sort(key=lambda s: (s["step"], SETS.index(s["set"]) if s["set"] in SETS else 9))
        self._write_summary()
        return summary

    def _write_summary(self) -> None:
        tmp = self.summary_path.with_suffix(".jsonl.tmp")
        _write_lines(tmp, self.summaries, "w")
        os.replace(tmp, self.summary_path)
