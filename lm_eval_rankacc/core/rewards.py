"""Reward accuracy (Remark 2.5): what trainers and RewardBench report beside
ranking accuracy. A reward is a score per response; the rule is strict where
ranking accuracy's (Def. 2.3, :mod:`.theory`) is not. Pure functions, no I/O."""

from __future__ import annotations

import numpy as np

from .theory import check_shapes


def implicit_rewards(policy_loglik: np.ndarray, reference_loglik: np.ndarray) -> np.ndarray:
    """DPO's implicit reward up to the factor beta: log pi(y|x) - log pRef(y|x)
    on summed log-probabilities. beta > 0 scales every reward alike, so the
    sign of a reward margin, and reward accuracy, never depends on it."""
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, an invalid reward
        return np.asarray(policy_loglik, dtype=float) - np.asarray(reference_loglik, dtype=float)


def rewards_correct(rewards: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Reward accuracy of N two-response documents with a strict human
    preference, a boolean (N,) array: the preferred response's reward is
    strictly above the other's (``>``, where ranking accuracy's Def. 2.3 has
    ``>=``), both finite. With :func:`implicit_rewards` it is TRL's
    ``rewards/accuracies``; with the policy's summed or per-token
    log-probabilities, RewardBench's reference-free variants. Any other
    document (a human tie, n != 2) has no reward accuracy: ValueError.

    Examples:
        >>> rewards_correct(np.array([[0.2, -0.1], [0.0, 0.0]]), np.array([[1, 2], [1, 2]]))  # strict: equal is wrong
        array([ True, False])
    """
    rewards, ranks = check_shapes(rewards, ranks)
    if ranks.shape[1] != 2 or (ranks[:, 0] == ranks[:, 1]).any():
        raise ValueError("reward accuracy needs two-response documents with a strict human preference")
    first = ranks[:, 0] < ranks[:, 1]
    chosen = np.where(first, rewards[:, 0], rewards[:, 1])
    rejected = np.where(first, rewards[:, 1], rewards[:, 0])
    with np.errstate(invalid="ignore"):
        return np.isfinite(chosen) & np.isfinite(rejected) & (chosen > rejected)
