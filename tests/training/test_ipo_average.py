"""``--ipo_average_log_prob``: IPO on per-token mean log-probabilities (the released IPO code), by hand."""

from __future__ import annotations

import pytest
import torch

from lm_eval_rankacc.training import losses, scoring
from lm_eval_rankacc.training.config import DPOConfig
from lm_eval_rankacc.training.trainer import PreferenceTrainer

# two pairs: summed log-probs (policy chosen, policy rejected, ref chosen, ref rejected) and token counts
PC, PR, RC, RR = (torch.tensor(v, dtype=torch.float64) for v in ([-6.0, -2.0], [-8.0, -3.0], [-9.0, -6.0],
                                                                  [-4.0, -1.0]))
N_W, N_L = torch.tensor([3, 2]), torch.tensor([4, 1])
TAU = 0.25  # 1 / (2 tau) = 2


def test_ipo_on_per_token_means_matches_a_hand_computation():
    # pair 0: means -6/3=-2, -8/4=-2, -9/3=-3, -4/4=-1 -> h = (-2 + 2) - (-3 + 1) = 2 -> (2 - 2)^2 = 0
    # pair 1: means -2/2=-1, -3/1=-3, -6/2=-3, -1/1=-1 -> h = (-1 + 3) - (-3 + 1) = 4 -> (4 - 2)^2 = 4
    got = losses.preference_loss("ipo", PC, PR, RC, RR, tau=TAU, chosen_tokens=N_W, rejected_tokens=N_L)
    assert got.tolist() == [0.0, 4.0]


def test_ipo_default_stays_on_summed_log_probs():
    # pair 0: h = (-6 + 8) - (-9 + 4) = 7 -> 25; pair 1: h = (-2 + 3) - (-6 + 1) = 6 -> 16
    assert losses.preference_loss("ipo", PC, PR, RC, RR, tau=TAU).tolist() == [25.0, 16.0]


def test_averaging_is_refused_for_other_losses():
    with pytest.raises(ValueError, match="only for loss='ipo'"):
        losses.preference_loss("dpo", PC, PR, RC, RR, chosen_tokens=N_W, rejected_tokens=N_L)
    with pytest.raises(ValueError, match="both"):
        losses.ipo(PC, PR, RC, RR, TAU, chosen_tokens=N_W)


@pytest.mark.parametrize("loss", ["dpo", "dpo_gamma"])
def test_config_refuses_the_flag_with_another_loss(tmp_path, loss):
    common = dict(model_name_or_path="m", task="rankacc_demo", output_dir=str(tmp_path), use_cpu=True)
    with pytest.raises(ValueError, match="only for --loss ipo"):
        DPOConfig(**common, loss=loss, ipo_average_log_prob=True)
    assert DPOConfig(**common, loss="ipo", ipo_average_log_prob=True).ipo_average_log_prob
    assert not DPOConfig(**common, loss=loss).ipo_average_log_prob


@pytest.mark.parametrize("packed", [True, False])
def test_trainer_counts_each_response_tokens_from_the_batch(packed):
    ds = scoring.PairDataset("train", ["a", "b"], ["d0", "d1"], [[1, 2], [3]],
                             chosen=[[4, 5, 6], [7, 8]], rejected=[[9, 10, 11, 12], [7, 8]])
    batch = scoring.PairCollator(0, packed)([ds[0], ds[1]])  # pair b: identical responses, scored once
    chosen, rejected = PreferenceTrainer._response_tokens(batch)
    assert chosen.tolist() == [3, 2] and rejected.tolist() == [4, 2]
