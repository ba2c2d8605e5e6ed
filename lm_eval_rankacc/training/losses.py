"""Preference losses, per datapoint. Pure torch: no model, no I/O.

Every function takes the summed response log-probabilities of the policy
(``policy_chosen``, ``policy_rejected``: log pi(y_w|x), log pi(y_l|x)) and of
the reference model (``ref_chosen``, ``ref_rejected``), tensors of one shape,
and returns one loss per datapoint (no reduction).

- :func:`dpo`: Def. 2.2 (Rafailov et al. 2023), the sigmoid loss
  -log sigmoid(beta * [log pi(y_w)/pRef(y_w) - log pi(y_l)/pRef(y_l)]).
- :func:`dpo_gamma`: DPO^gamma (Chen et al. 2024, Eq. 4),
  -log sigmoid(beta * [log pi(y_w)/pi(y_l) + gamma * log pRef(y_l)/pRef(y_w)]);
  gamma = 1 is DPO, gamma = 0 is reference-free.
- :func:`ipo`: IPO (Azar et al. 2023; the paper's App. A.5),
  (h - 1/(2 tau))^2 with h = log pi(y_w)/pi(y_l) - log pRef(y_w)/pRef(y_l),
  on summed log-probabilities; with ``chosen_tokens`` / ``rejected_tokens``
  (``--ipo_average_log_prob``) on per-token means instead, as the released
  code's IPO does (each log-probability divided by its response's token
  count).

:func:`reward_margin` is the implicit reward margin of DPO,
beta * [log pi(y_w)/pRef(y_w) - log pi(y_l)/pRef(y_l)], so dpo = -log sigmoid(margin).
Theorem 4.1: the policy ranks a pair correctly (log pi(y_w) >= log pi(y_l))
exactly when its DPO loss is <= -log sigmoid(beta c), c = log pRef(y_l) -
log pRef(y_w) (:func:`lm_eval_rankacc.core.theory.dpo_loss_threshold`).

-log sigmoid(x) is computed as softplus(-x), exact for large |x|.
:func:`check_options` holds the rules on the options (a known loss; beta,
gamma and tau finite numbers; beta > 0; IPO's tau > 0), checked by
``DPOConfig`` (so a bad value stops the run before any model is loaded) and
the trainer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lm_eval_rankacc.core.errors import TrainingDataError

#: The losses :func:`preference_loss` knows.
LOSSES = ("dpo", "dpo_gamma", "ipo")


def check_options(loss: str, beta: float, tau: float, gamma: float = 1.0) -> None:
    """Reject an unknown ``loss``, a beta, gamma or tau that is not a finite
    number (NaN, inf), beta <= 0, or tau <= 0 for IPO, naming the option."""
    if loss not in LOSSES:
        raise TrainingDataError(f"unknown loss {loss!r}; one of {', '.join(LOSSES)}")
    for name, value in (("beta", beta), ("gamma", gamma), ("tau", tau)):
        if not math.isfinite(value):
            raise TrainingDataError(f"{name} must be a finite number, got {value}")
    if not beta > 0:
        raise TrainingDataError(f"beta must be > 0, got {beta}")
    if loss == "ipo" and not tau > 0:
        raise TrainingDataError(f"tau must be > 0, got {tau}")


def reward_margin(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """beta * [(log pi(y_w) - log pRef(y_w)) - (log pi(y_l) - log pRef(y_l))]."""
    return beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected))


def dpo_gamma(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
    gamma: float = 1.0,
) -> torch.Tensor:
    """Eq. 4: -log sigmoid(beta * (log pi(y_w)/pi(y_l) + gamma * log pRef(y_l)/pRef(y_w)))."""
    logits = beta * ((policy_chosen - policy_rejected) + gamma * (ref_rejected - ref_chosen))
    return F.softplus(-logits)


def dpo(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """Def. 2.2: -log sigmoid(reward margin), which is DPO^gamma with gamma = 1."""
    return dpo_gamma(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta, gamma=1)


def ipo(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    tau: float,
    chosen_tokens: torch.Tensor | None = None,
    rejected_tokens: torch.Tensor | None = None,
) -> torch.Tensor:
    """IPO: (h - 1/(2 tau))^2, h = log pi(y_w)/pi(y_l) - log pRef(y_w)/pRef(y_l).

    Given the responses' token counts, every log-probability is first divided
    by its response's count (per-token means, the released IPO code)."""
    if not tau > 0:
        raise ValueError(f"IPO needs tau > 0, got {tau!r}")
    if (chosen_tokens is None) != (rejected_tokens is None):
        raise ValueError("IPO averaging needs both chosen_tokens and rejected_tokens")
    if chosen_tokens is not None:
        n_w, n_l = chosen_tokens.to(policy_chosen.dtype), rejected_tokens.to(policy_chosen.dtype)
        if not bool((n_w > 0).all() and (n_l > 0).all()):
            raise ValueError("IPO averaging needs every response to have at least one token")
        policy_chosen, ref_chosen = policy_chosen / n_w, ref_chosen / n_w
        policy_rejected, ref_rejected = policy_rejected / n_l, ref_rejected / n_l
    h = (policy_chosen - policy_rejected) - (ref_chosen - ref_rejected)
    return (h - 1.0 / (2.0 * tau)) ** 2


def preference_loss(
    loss: str,
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    *,
    beta: float = 0.1,
    gamma: float = 1.0,
    tau: float = 0.1,
    chosen_tokens: torch.Tensor | None = None,
    rejected_tokens: torch.Tensor | None = None,
) -> torch.Tensor:
    """The per-datapoint training objective named by ``loss`` (one of :data:`LOSSES`);
    the token counts (IPO only) switch IPO to per-token mean log-probabilities."""
    if chosen_tokens is not None and loss != "ipo":
        raise ValueError(f"per-token averaging is only for loss='ipo', not {loss!r}")
    args = (policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    if loss == "dpo":
        return dpo(*args, beta)
    if loss == "dpo_gamma":
        return dpo_gamma(*args, beta, gamma)
    if loss == "ipo":
        return ipo(*args, tau, chosen_tokens, rejected_tokens)
    raise ValueError(f"unknown loss {loss!r}; one of {', '.join(LOSSES)}")
