"""Issue 21, items 6 and 8 (scheduler): App. D.1's epochs beside our
default, and the released code's learning-rate schedule (the Trainer's
linear decay: its README commands set none) one documented flag away from
ours (constant after the warm-up), checked against the schedule written out
by hand."""

from __future__ import annotations

import json

import pytest

from lm_eval_rankacc.cli import parse_training_options as parse
from lm_eval_rankacc.training import DPOConfig, SFTConfig, train_sft
from lm_eval_rankacc.training.config import __doc__ as CONFIG_DOC


@pytest.mark.parametrize("kind", ["sft", "dpo"])
def test_one_epoch_by_default_with_app_d1s_values_beside_it(kind, tmp_path, capsys):
    config = parse(kind, ["--model_name_or_path", "m", "--task", "rankacc_demo", "--output_dir", str(tmp_path)])
    assert config.num_train_epochs == 1  # not the Trainer's 3, which is none of App. D.1's values
    help_text = (SFTConfig if kind == "sft" else DPOConfig).__dataclass_fields__["num_train_epochs"].metadata["help"]
    assert "5 epochs for GPT2 and Pythia 2.8B, 1 for Llama 2 7B" in help_text
    assert "5 epochs" in CONFIG_DOC and "--num_train_epochs 5" in CONFIG_DOC
    assert parse(kind, ["--model_name_or_path", "m", "--task", "rankacc_demo", "--output_dir", str(tmp_path),
                        "--num_train_epochs", "5"]).num_train_epochs == 5


def _logged_rates(tiny_model_dir, out, **kw) -> list[float]:
    config = SFTConfig(model_name_or_path=str(tiny_model_dir), task="rankacc_demo", output_dir=str(out),
                       max_steps=6, eval_steps=6, per_device_train_batch_size=2, learning_rate=1e-3,
                       warmup_steps=2, logging_steps=1, use_cpu=True, disable_tqdm=True, **kw)
    train_sft(config)
    state = json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())
    return [h["learning_rate"] for h in state["log_history"] if "learning_rate" in h]


def test_the_released_linear_schedule_is_one_flag_away(tiny_model_dir, tmp_path):
    lr, warmup, steps = 1e-3, 2, 6
    ours = _logged_rates(tiny_model_dir, tmp_path / "ours")
    released = _logged_rates(tiny_model_dir, tmp_path / "linear", lr_scheduler_type="linear")
    # the rate that optimizer step s + 1 uses (logged with it), after s scheduler steps: warm-up s / warmup,
    # then ours holds it; the released code's (the Trainer's default, "linear") falls linearly towards 0
    # at the end: (steps - s) / (steps - warmup)
    by_hand_ours = [lr * min(s / warmup, 1.0) for s in range(steps)]
    by_hand_linear = [lr * (s / warmup if s < warmup else (steps - s) / (steps - warmup)) for s in range(steps)]
    assert ours == pytest.approx(by_hand_ours, rel=1e-6)
    assert released == pytest.approx(by_hand_linear, rel=1e-6, abs=1e-12)
    assert parse("dpo", ["--model_name_or_path", "m", "--task", "rankacc_demo", "--output_dir", str(tmp_path),
                         "--lr_scheduler_type", "linear"]).lr_scheduler_type == "linear"
