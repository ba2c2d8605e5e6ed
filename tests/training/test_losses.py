"""The preference losses (training/losses.py): hand-computed values, Eq. 4's
gamma, and Theorem 4.1 (ranking correct iff DPO loss <= -log sigmoid(beta c))."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lm_eval_rankacc.core import theory
from lm_eval_rankacc.training import losses


def t(*xs):
    return torch.tensor(xs, dtype=torch.float64)


def softplus(x: float) -> float:
    return math.log1p(math.exp(x)) if x < 30 else x + math.log1p(math.exp(-x))


def test_dpo_hand_computed():
    # pi: y_w -10, y_l -12; ref: both -11; beta 0.1
    # margin = 0.1 * ((-10 + 11) - (-12 + 11)) = 0.2; loss = log(1 + e^-0.2)
    loss = losses.dpo(t(-10.0), t(-12.0), t(-11.0), t(-11.0), 0.1)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-0.2)), abs=1e-12)
    assert loss.item() == pytest.approx(0.5981388693815918, abs=1e-12)
    margin = losses.reward_margin(t(-10.0), t(-12.0), t(-11.0), t(-11.0), 0.1)
    assert margin.item() == pytest.approx(0.2)
    # at the reference (policy == reference) the DPO loss is log 2 whatever the pair
    same = losses.dpo(t(-3.0, -50.0), t(-7.0, -1.0), t(-3.0, -50.0), t(-7.0, -1.0), 0.1)
    assert torch.allclose(same, torch.full((2,), math.log(2.0), dtype=torch.float64))


def test_dpo_gamma_is_eq4():
    pc, pr, rc, rr, beta = -20.0, -25.0, -18.0, -30.0, 0.5
    for gamma in (0.0, 0.25, 0.5, 1.0, 2.0):
        expected = softplus(-beta * ((pc - pr) + gamma * (rr - rc)))
        got = losses.dpo_gamma(t(pc), t(pr), t(rc), t(rr), beta, gamma).item()
        assert got == pytest.approx(expected, abs=1e-12), gamma
    # gamma = 1 is DPO; gamma = 0 ignores the reference entirely
    assert losses.dpo_gamma(t(pc), t(pr), t(rc), t(rr), beta, 1.0).item() == pytest.approx(
        losses.dpo(t(pc), t(pr), t(rc), t(rr), beta).item(), abs=1e-12)
    a = losses.dpo_gamma(t(pc), t(pr), t(rc), t(rr), beta, 0.0)
    b = losses.dpo_gamma(t(pc), t(pr), t(0.0), t(-999.0), beta, 0.0)
    assert a.item() == b.item() == pytest.approx(softplus(-beta * 5.0), abs=1e-12)


def test_gamma_moves_the_loss_as_eq4_says():
    """The loss's argument is linear in gamma with slope beta * log pRef(y_l)/pRef(y_w) = beta * c."""
    rng = np.random.default_rng(1)
    pc, pr, rc, rr = (torch.tensor(rng.normal(-50, 10, 64)) for _ in range(4))
    beta = 0.1
    gammas = [0.0, 0.5, 1.0]
    args = [-torch.log(torch.expm1(losses.dpo_gamma(pc, pr, rc, rr, beta, g))) for g in gammas]  # = beta * logits
    c = rr - rc
    assert torch.allclose(args[1] - args[0], beta * 0.5 * c, atol=1e-8)
    assert torch.allclose(args[2] - args[1], beta * 0.5 * c, atol=1e-8)


def test_ipo_hand_computed():
    # h = (pc - pr) - (rc - rr) = (-10 + 12) - (-11 + 13) = 0; loss = (0 - 1/(2 * 0.1))^2 = 25
    assert losses.ipo(t(-10.0), t(-12.0), t(-11.0), t(-13.0), 0.1).item() == pytest.approx(25.0)
    # h = 3, tau = 0.5: (3 - 1)^2 = 4
    assert losses.ipo(t(-9.0), t(-12.0), t(-11.0), t(-11.0), 0.5).item() == pytest.approx(4.0)
    with pytest.raises(ValueError, match="tau"):
        losses.ipo(t(0.0), t(0.0), t(0.0), t(0.0), 0.0)


def test_preference_loss_dispatch():
    args = (t(-1.0), t(-2.0), t(-1.5), t(-1.5))
    assert losses.preference_loss("dpo", *args, beta=0.2).item() == losses.dpo(*args, 0.2).item()
    assert losses.preference_loss("dpo_gamma", *args, beta=0.2, gamma=0.3).item() == \
        losses.dpo_gamma(*args, 0.2, 0.3).item()
    assert losses.preference_loss("ipo", *args, tau=0.7).item() == losses.ipo(*args, 0.7).item()
    with pytest.raises(ValueError, match="unknown loss"):
        losses.preference_loss("kto", *args)


def test_extreme_margins_are_finite_and_exact():
    loss = losses.dpo(t(0.0, -1e4), t(-1e4, 0.0), t(0.0, 0.0), t(0.0, 0.0), 0.1)
    assert loss[0].item() == pytest.approx(0.0, abs=1e-300)
    assert loss[1].item() == pytest.approx(1000.0, rel=1e-12)


@pytest.mark.parametrize("beta", [0.01, 0.1, 1.0, 5.0])
def test_theorem_4_1(beta):
    """Ranking correct (theory.ranking_correct, Def. 2.3) iff DPO loss <= -log sigmoid(beta c)."""
    rng = np.random.default_rng(int(beta * 1000))
    n = 2000
    ref = rng.normal(-80, 30, (n, 2))
    policy = ref + rng.normal(0, 15, (n, 2))
    keep = np.abs(policy[:, 0] - policy[:, 1]) > 1e-6  # off the boundary, where rounding decides
    policy, ref = policy[keep], ref[keep]
    loss = losses.dpo(*(torch.tensor(x) for x in (policy[:, 0], policy[:, 1], ref[:, 0], ref[:, 1])), beta).numpy()
    c = theory.reference_log_ratio(ref[:, 0], ref[:, 1])
    below = loss <= theory.dpo_loss_threshold(c, beta)
    correct = np.array([theory.ranking_correct([a, b], [1, 2]) for a, b in policy])
    assert correct.any() and (~correct).any()
    assert (below == correct).all()


@pytest.mark.parametrize("option", ["beta", "gamma", "tau"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_options_must_be_finite(option, value):
    """Issue 11, item 13: beta, gamma and tau are finite numbers, for every loss
    (a NaN gamma would only show after the reference pass, as a NaN loss)."""
    for loss in losses.LOSSES:
        options = {"beta": 0.1, "gamma": 1.0, "tau": 0.1, option: value}
        with pytest.raises(losses.TrainingDataError, match=f"{option} must be a finite number"):
            losses.check_options(loss, options["beta"], options["tau"], options["gamma"])
    losses.check_options("dpo_gamma", 0.1, 0.1, -2.0)  # any finite gamma
