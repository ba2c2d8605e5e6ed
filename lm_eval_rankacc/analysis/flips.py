"""Ranking flips between two runs of the same documents (Chen et al. 2024,
Sec. 4, Fig. 2): per document whether each run ranks it correctly, and per
task the four flip categories of :func:`theory.flip_categories`; beside
them the policy's reward accuracy (Remark 2.5: what TRL and RewardBench
report) with its agreement with ranking accuracy, and the paired statistics
of :mod:`.compare`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from lm_eval_rankacc.core import rewards, stats, theory
from lm_eval_rankacc.analysis.base import (
    LazyRows,
    Report,
    Section,
    check_convention,
    check_metric,
    invalid_note,
    observed_correct,
    subsets,
    common_tasks,
    unique_labels,
)
from lm_eval_rankacc.analysis.compare import PAIRED_COLUMNS, check_options, paired_meta, paired_note, paired_rows
from lm_eval_rankacc.outputs.columns import TaskSamples
from lm_eval_rankacc.outputs.matching import match_documents
from lm_eval_rankacc.outputs.runs import Run, as_runs


#: The category code of a document left out by the released convention (a NaN score in either run).
LEFT_OUT = -1


def _categories(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """:func:`theory.flip_categories` per document; :data:`LEFT_OUT` where
    either outcome is NaN (the released convention's left-out documents)."""
    if before.dtype.kind != "f":  # the paper convention: booleans, every document kept
        return theory.flip_categories(before, after)
    category = theory.flip_categories(before == 1.0, after == 1.0)
    return np.where(np.isnan(before) | np.isnan(after), LEFT_OUT, category)


def _outcome(value: float) -> bool | None:
    return None if np.isnan(value) else bool(value)


def _category_rows(task: str, ts: TaskSamples, category: np.ndarray) -> list[dict]:
    """Count and share of each category per ties setting (left-out documents not counted)."""
    rows = []
    for ties, mask in subsets(ts):
        mask = mask & (category != LEFT_OUT)
        n = int(mask.sum())
        counts = np.bincount(category[mask], minlength=len(theory.CATEGORIES))
        for name, count in zip(theory.CATEGORIES, counts):
            rows.append({"task": task, "ties": ties, "category": name, "count": int(count),
                         "share": (count / n) if n else None, "n": n})
    return rows


def _document_rows(task: str, ts: TaskSamples, before: np.ndarray, after: np.ndarray,
                   category: np.ndarray) -> tuple[int, Callable[[int], dict]]:
    """(number of rows, row(k)) of the per-document rows of one task, for :class:`LazyRows`."""
    tied = ts.tied

    def row(k: int) -> dict:
        return {
            "task": task, "id": ts.ids[k], "doc_hash": ts.hashes[k], "tie": bool(tied[k]),
            "reference_correct": _outcome(before[k]), "policy_correct": _outcome(after[k]),
            "category": "left out" if category[k] == LEFT_OUT else theory.CATEGORIES[category[k]],
        }
    return len(ts), row


#: The columns of the reward-accuracy rows (one per task).
REWARD_COLUMNS = ["task", "pairs", "not_counted", "reward_acc", "ref_free_sum_acc", "ref_free_mean_acc", "R",
                  "both", "reward_only", "R_only", "neither"]


def _share(outcomes: np.ndarray | None) -> float | None:
    return None if outcomes is None or not len(outcomes) else float(outcomes.mean())


def _reward_row(ref: TaskSamples, pol: TaskSamples, order: np.ndarray) -> dict:
    """The policy's reward accuracy on the two-response documents with a strict
    human preference (:func:`rewards.rewards_correct`): implicit (TRL's
    ``rewards/accuracies``), reference-free on summed and per-token
    log-probabilities (RewardBench), and its agreement with the policy's R."""
    pairs = np.flatnonzero((ref.sizes == 2) & ~ref.tied)
    ranks, pol_index = ref.array("ranks", pairs), order[pairs]
    policy = pol.array("loglik", pol_index)
    reward = rewards.rewards_correct(rewards.implicit_rewards(policy, ref.array("loglik", pairs)), ranks)
    tokens = pol.array("n_tokens", pol_index)
    mean = None if np.isnan(tokens).any() else rewards.rewards_correct(theory.per_units(policy, tokens), ranks)
    ranking = theory.rankings_correct(policy, ranks)
    return {"task": ref.task, "pairs": len(pairs), "not_counted": len(ref) - len(pairs), "reward_acc": _share(reward),
            "ref_free_sum_acc": _share(rewards.rewards_correct(policy, ranks)), "ref_free_mean_acc": _share(mean),
            "R": _share(ranking), "both": int((reward & ranking).sum()), "reward_only": int((reward & ~ranking).sum()),
            "R_only": int((~reward & ranking).sum()), "neither": int((~reward & ~ranking).sum())}


REWARD_NOTE = ("reward accuracy (of the policy): reward_acc is TRL's rewards/accuracies, log pi/pRef(y_w) > "
               "log pi/pRef(y_l) strictly on summed log-probabilities (its sign does not depend on beta); "
               "ref_free_sum_acc / ref_free_mean_acc: RewardBench's reference-free variants, the policy's summed / "
               "per-token log-probability, strictly; R: the policy's ranking accuracy on the same pairs (Def. 2.3, "
               ">=, summed log-probabilities, the paper's rule whatever the convention); both / reward_only / "
               "R_only / neither: the agreement of reward_acc and R. Only two-response documents with a strict "
               "human preference have a reward accuracy: not_counted counts the others (human ties, n > 2)")


def flips(
    reference: Run | str | Path,
    policy: Run | str | Path,
    tasks: str | Sequence[str] | None = None,
    metric: str = "rank_acc",
    convention: str = "paper",
    bootstrap: int = stats.N_BOOTSTRAP,
    seed: int = 0,
) -> Report:
    """Ranking flips between two runs of the same documents (any two
    checkpoints): per document whether each ranks it correctly under
    ``metric``, and per task the four categories with counts and shares.
    Tasks found in only one run are named in the notes; documents are
    matched by id and doc_hash (different documents: an error).
    ``convention="released"`` decides correctness with the released code's
    rules (:mod:`lm_eval_rankacc.core.released`); a document it leaves out (a NaN
    score in either run) is in no category and is counted in a note.

    Two more sections: per task the policy's reward accuracy and its
    agreement with ranking accuracy (:data:`REWARD_NOTE`), and per task, ties
    setting and metric the paired statistics of :func:`.compare.compare`
    (A = reference, B = policy; ``bootstrap`` replicates, ``seed``).

    Examples:
        >>> from lm_eval_rankacc.analysis.in_memory import in_memory_run
        >>> ranks = [[1, 2]] * 4  # four pairs, response 1 preferred
        >>> ref = in_memory_run("ref", {"t": ([[-1.0, -2.0], [-3.0, -1.0], [-2.0, -2.5], [-4.0, -1.0]], ranks)})
        >>> dpo = in_memory_run("dpo", {"t": ([[-0.5, -2.5], [-1.0, -1.5], [-3.0, -2.0], [-5.0, -1.0]], ranks)})
        >>> report = flips(ref, dpo, bootstrap=0)
        >>> [(r["category"], r["count"]) for r in report.sections[0].rows]
        [('correct->correct', 1), ('correct->incorrect', 1), ('incorrect->correct', 1), ('incorrect->incorrect', 1)]
    """
    check_metric(metric)
    check_convention(convention, [metric])
    check_options(bootstrap, seed)
    ref, pol = as_runs([reference, policy], tasks)
    label_ref, label_pol = unique_labels([ref, pol])
    notes: list[str] = []
    rows, documents, reward_rows, paired = [], [], [], []
    for task in common_tasks(ref, pol, label_ref, label_pol, notes):
        ts, other = ref.tasks[task], pol.tasks[task]
        order = match_documents(ts, other, f"reference {label_ref}", f"policy {label_pol}")
        notes += filter(None, [invalid_note(label_ref, task, ts, convention),
                               invalid_note(label_pol, task, other, convention)])
        reward_rows.append(_reward_row(ts, other, order))
        paired += paired_rows(ts, other, order, convention, bootstrap, seed, notes)
        before, after = observed_correct(ts, metric, convention), observed_correct(other, metric, convention)
        if before is None or after is None:
            notes.append(f"{task}: {metric} needs token counts, which a run lacks: not compared")
            continue
        after = after[order]
        category = _categories(before, after)
        left = int((category == LEFT_OUT).sum())
        if left:
            notes.append(f"{task}: {left} of {len(ts)} documents left out of the flips: a NaN score in either run "
                         "(released convention)")
        rows += _category_rows(task, ts, category)
        documents.append(_document_rows(task, ts, before, after, category))
    notes += [REWARD_NOTE, paired_note(label_ref, label_pol)]
    notes.extend(f"reference: {n}" for n in ref.notes)
    notes.extend(f"policy: {n}" for n in pol.notes)
    meta = {"convention": convention, "reference": label_ref, "reference_path": str(ref.folder), "policy": label_pol,
            "policy_path": str(pol.folder), "metric": metric, **paired_meta(bootstrap, seed)}
    meta.update({"tie_eps": theory.TIE_EPS} if convention == "paper" else
                {"rules": "the authors' released code (docs/conventions.md)"})
    return Report("flips", f"Ranking flips ({metric}, {convention} convention): {label_ref} -> {label_pol}", meta,
                  [Section("flips", ["task", "ties", "category", "count", "share", "n"], rows),
                   Section("reward accuracy", REWARD_COLUMNS, reward_rows),
                   Section("paired statistics", PAIRED_COLUMNS, paired)], notes, LazyRows(documents))
