"""The one rule for a checkpoint's step (lm_eval_rankacc.core.checkpoint_names), as the
checkpoint finder, `rankacc winrate` and Figure 4 read it."""

import json

import pytest

from lm_eval_rankacc.core.checkpoint_names import checkpoint_step


@pytest.mark.parametrize("name, step", [
    ("checkpoint-12", 12),
    ("runs/dpo/checkpoint-40", 40),
    ("pretrained=runs/dpo/checkpoint-8,dtype=float32", 8),  # an lm-eval model_args string
    ("runs/checkpoint-4/export/checkpoint-9", 9),  # the last one
    ("checkpoint-0", 0),
    ("checkpoint-12x", None), ("mycheckpoint-3", None), ("checkpoint-", None), ("runs/dpo", None), (None, None),
])
def test_checkpoint_step(name, step):
    assert checkpoint_step(name) == step


def test_winrate_summary_at_step_zero_keeps_step_zero(tmp_path):
    """A null step is read from policy_model first; step 0 there is a step, not a miss."""
    from lm_eval_rankacc.training.figure4 import read_winrate

    path = tmp_path / "winrate.json"
    path.write_text(json.dumps({"win_rate": 0.5, "ci_low": 0.4, "ci_high": 0.6, "step": None,
                                "policy": "runs/other/checkpoint-7", "baseline": "base",
                                "policy_model": "runs/dpo/checkpoint-0"}))
    assert read_winrate(path)["step"] == 0
