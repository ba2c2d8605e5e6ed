"""The files ``rankacc winrate`` writes: their names, the keys of its
summary (``winrate.json``), building a summary (the writer,
:mod:`lm_eval_rankacc.judging.winrate`) and checking a parsed one (the
reader, Figure 4: :mod:`lm_eval_rankacc.training.figure4`). Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lm_eval_rankacc.core.checkpoint_names import checkpoint_step
from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.core.verdicts import UNPARSED, WinRate

#: Every judge call, one JSON object a line (verdict, raw reply, attempts, error).
JUDGEMENTS_FILE = "judgements.jsonl"
#: The summary: one JSON object (:func:`summary_record`).
SUMMARY_FILE = "winrate.json"
#: The key of the interval's level (``level``, e.g. 0.95): ``confidence`` in the file since release 0.1.
LEVEL_KEY = "confidence"
#: The keys a reader needs: the win rate and its interval, the policy's step, the two runs.
REQUIRED_KEYS = ("win_rate", "ci_low", "ci_high", "step", "policy", "baseline")
#: The keys holding a share in [0, 1], or null when nothing was scored.
SHARE_KEYS = ("win_rate", "ci_low", "ci_high")


def summary_record(rate: WinRate, *, level: float, bootstrap: int, seed: int, judgements: Sequence[Mapping],
                   only_in_policy: list[Any], only_in_baseline: list[Any], judge: str, policy: str,
                   baseline: str, policy_model: Any, baseline_model: Any, task: str, step: int | None,
                   retries: int, notes: list[str]) -> dict[str, Any]:
    """The summary of a judging (``winrate.json``'s content, in its key
    order): the win rate (:class:`~lm_eval_rankacc.core.verdicts.WinRate`),
    the judge calls' counts (``judgements``: each with ``verdict`` and
    ``attempts``), the prompts of one run only, and what was compared."""
    return {
        "win_rate": rate.win_rate, "ci_low": rate.ci_low, "ci_high": rate.ci_high, LEVEL_KEY: level,
        "bootstrap": bootstrap, "seed": seed, "n_prompts": rate.n_prompts, "n_scored": rate.scored,
        "wins": rate.wins, "ties": rate.ties, "losses": rate.losses, "unparsed": rate.unparsed,
        "unparsed_verdicts": sum(j["verdict"] == UNPARSED for j in judgements),
        "position_consistency": rate.position_consistency, "position_inconsistent": rate.scored - rate.consistent,
        "judge_calls": len(judgements), "attempts": sum(j["attempts"] for j in judgements),
        "only_in_policy": len(only_in_policy), "only_in_baseline": len(only_in_baseline),
        "only_in_policy_ids": only_in_policy, "only_in_baseline_ids": only_in_baseline,
        "judge": judge, "policy": policy, "baseline": baseline,
        "policy_model": policy_model, "baseline_model": baseline_model, "task": task,
        "step": step, "retries": retries, "notes": notes,
    }


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def check_summary(data: Any, where: str) -> dict[str, Any]:
    """A parsed summary, checked (:data:`REQUIRED_KEYS`; shares in [0, 1] or
    null; the step an integer >= 0 or null), each problem a
    :class:`~lm_eval_rankacc.core.errors.RunError` naming ``where`` (its
    file). Returned with its step: a null ``step`` is read from a
    ``checkpoint-<step>`` in ``policy_model`` or ``policy`` if there is one."""
    missing = [k for k in REQUIRED_KEYS if k not in data] if isinstance(data, dict) else list(REQUIRED_KEYS)
    if missing:
        raise RunError(f"{where}: not a `rankacc winrate` summary (no {', '.join(missing)})")
    for key in SHARE_KEYS:  # null: nothing was scored (reported, not plotted)
        if data[key] is not None and (not _is_number(data[key]) or not 0 <= data[key] <= 1):
            raise RunError(f"{where}: {key} {data[key]!r} is not a number in [0, 1]")
    step = data["step"]
    if step is None:
        step = checkpoint_step(data.get("policy_model"))
        step = checkpoint_step(data["policy"]) if step is None else step
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise RunError(f"{where}: step {data['step']!r} is not a training step (an integer >= 0, or null)")
    return {**data, "step": step}
