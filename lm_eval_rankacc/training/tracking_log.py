"""The per-datapoint tracking log of a preference-training run: its rows, its
summaries, and how it is read and written. Pure: numpy and the standard
library (``rankacc plot-training`` reads it without torch).

At every evaluation step the trainer scores a fixed subset of the training
pairs (``set = "train"``) and the validation pairs (``set = "validation"``)
with the current policy; :class:`.tracking_callback.TrackingCallback` turns the scores
into rows (:func:`make_rows`) and :class:`TrackingLog` writes

- ``tracking.jsonl``: one row per datapoint per evaluation step (tidy):
  ``step``, ``epoch``, ``set``, ``pair_id``, ``doc_id``, the policy's and the
  reference's log-probabilities of both responses, Thm. 4.1's ``c``, the
  DPO ``reward_margin``, the ``dpo_loss`` (at the run's beta), the training
  objective ``loss`` (DPO, DPO^gamma or IPO), whether the policy ranks the pair
  correctly (``correct``), whether the reference does (``ref_correct``), and
  the ``category`` relative to the reference (correct->correct,
  correct->incorrect, incorrect->correct, incorrect->incorrect);
- ``tracking_summary.jsonl``: one row per set per step (counts, shares and
  means per category), and the distance travelled by the weights at that step
  (:data:`DISTANCE_FIELDS`: ``weight_distance`` = ||theta_t - theta_ref||_2,
  ``weight_distance_ratio`` = that over ||theta_ref||_2; :mod:`.distance`),
  absent from runs that did not record it.

Correctness is :func:`lm_eval_rankacc.core.theory.pairs_ranked_correctly` (Def. 2.3:
equal log-probabilities count as correct), the rule of the eval tasks; the
categories are :data:`lm_eval_rankacc.core.theory.CATEGORIES`
(:func:`~lm_eval_rankacc.core.theory.flip_categories`), as in ``rankacc flips``.

Resuming: at the start of training the log keeps only the rows of steps up to
the step training resumes from (none for a fresh run); a step evaluated again
(``eval_on_start`` after a resume) replaces its rows. A kill in the middle of
writing leaves at most one partial last line, which is dropped. So a resumed
run's log has every evaluation step exactly once (the distance of the kept
steps is kept from the summary file, where it alone is stored).
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

from lm_eval_rankacc.core.errors import TrainingDataError
from lm_eval_rankacc.core.theory import CATEGORIES
from lm_eval_rankacc.training.run_folder.files import write_atomic

TRACKING_FILE = "tracking.jsonl"
SUMMARY_FILE = "tracking_summary.jsonl"
SETS = ("train", "validation")
#: Per-step fields of the summary rows that are not computed from the rows.
DISTANCE_FIELDS = ("weight_distance", "weight_distance_ratio")


# ----------------------------------------------------------------- rows and summaries
def _num(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def make_rows(step: int, epoch: float | None, set_name: str, pair_ids: list[str], doc_ids: list[str],
              policy: np.ndarray, ref: np.ndarray, values: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """The log rows of one set at one step, from (N, 2) policy and reference
    log-probs (column 0 the preferred response) and the per-datapoint
    ``values`` (``c``, ``reward_margin``, ``dpo_loss``, ``loss``, ``correct``,
    ``ref_correct`` and ``category``, a code into :data:`CATEGORIES`)."""
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


def _order(step: int, set_name: str) -> tuple[int, int]:
    """Summaries are ordered by step, then set (training subset first)."""
    return step, SETS.index(set_name) if set_name in SETS else len(SETS)


def summarize(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary per (set, step), ordered by step then set."""
    groups: dict[tuple[int, str], list] = defaultdict(list)
    for row in rows:
        groups[(row["step"], row["set"])].append(row)
    return [summarize_step(groups[key]) for key in sorted(groups, key=lambda k: _order(*k))]


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


def step_fields(summaries: Iterable[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """step -> the :data:`DISTANCE_FIELDS` its summary rows hold (steps without them left out)."""
    out: dict[int, dict[str, Any]] = {}
    for s in summaries:
        values = {k: s[k] for k in DISTANCE_FIELDS if s.get(k) is not None}
        if values:
            out.setdefault(int(s["step"]), {}).update(values)
    return out


# ----------------------------------------------------------------- files
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
            raise TrainingDataError(f"{path}: line {i + 1} is not valid JSON") from None
        if max_step is None or row["step"] <= max_step:
            rows.append(row)
    return rows


def _jsonl(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def _append(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(_jsonl(rows))
        f.flush()
        os.fsync(f.fileno())


class TrackingLog:
    """``tracking.jsonl`` and ``tracking_summary.jsonl`` of one run folder,
    kept so that every evaluation step is in them exactly once (see the
    module docstring)."""

    def __init__(self, output_dir: str | Path):
        self.dir = Path(output_dir)
        self.path, self.summary_path = self.dir / TRACKING_FILE, self.dir / SUMMARY_FILE
        self.summaries: list[dict[str, Any]] = []
        self.last_step: dict[str, int] = {}

    def start(self, global_step: int) -> None:
        """Keep the rows of the steps up to ``global_step`` (the step training
        resumes from; none when it is 0) and drop the rest."""
        self.dir.mkdir(parents=True, exist_ok=True)
        rows = read_rows(self.path, max_step=global_step) if global_step > 0 else []
        kept = step_fields(read_rows(self.summary_path, max_step=global_step)) if global_step > 0 else {}
        write_atomic(self.path, _jsonl(rows))
        self.summaries = [{**s, **kept.get(s["step"], {})} for s in summarize(rows)]
        self.last_step = {}
        for s in self.summaries:
            self.last_step[s["set"]] = max(self.last_step.get(s["set"], -1), s["step"])
        self._write_summary()

    def add(self, set_name: str, step: int, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
        """Write the rows (and their ``summary``) of one set at one step; a
        step written before (evaluated again) is replaced."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.last_step.get(set_name, -1) >= step:  # evaluated again (e.g. eval_on_start after a resume)
            kept = [r for r in read_rows(self.path) if not (r["set"] == set_name and r["step"] >= step)]
            write_atomic(self.path, _jsonl(kept + rows))
            self.summaries = [s for s in self.summaries if not (s["set"] == set_name and s["step"] >= step)]
        else:
            _append(self.path, rows)
        self.last_step[set_name] = step
        self.summaries.append(summary)
        self.summaries.sort(key=lambda s: _order(s["step"], s["set"]))
        self._write_summary()

    def _write_summary(self) -> None:
        write_atomic(self.summary_path, _jsonl(self.summaries))
