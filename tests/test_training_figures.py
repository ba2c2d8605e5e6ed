"""``rankacc plot-training`` reads a finished run's tracking log alone: it draws
both figures without importing torch or transformers (checked in a fresh
interpreter, on a small log written here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# (pair id, policy chosen/rejected, reference chosen/rejected) at step 0 and step 2
PAIRS = [("p0", -10.0, -12.0), ("p1", -8.0, -7.5), ("p2", -20.0, -20.0)]


def _row(step: int, set_name: str, pair_id: str, chosen: float, rejected: float, ref_c: float, ref_r: float):
    correct, ref_correct = chosen >= rejected, ref_c >= ref_r
    category = ("correct" if ref_correct else "incorrect") + "->" + ("correct" if correct else "incorrect")
    margin = 0.1 * ((chosen - ref_c) - (rejected - ref_r))
    return {"step": step, "epoch": step / 4, "set": set_name, "pair_id": pair_id, "doc_id": pair_id,
            "logp_chosen": chosen, "logp_rejected": rejected, "ref_logp_chosen": ref_c, "ref_logp_rejected": ref_r,
            "c": ref_r - ref_c, "reward_margin": margin, "dpo_loss": 0.69 - margin, "loss": 0.69 - margin,
            "correct": correct, "ref_correct": ref_correct, "category": category}


def write_run(run_dir: Path) -> None:
    """A run folder with a tracking log of two evaluation steps and its options."""
    rows = []
    for step, shift in ((0, 0.0), (2, 1.5)):
        for set_name in ("train", "validation"):
            for pid, c, r in PAIRS:
                rows.append(_row(step, set_name, pid, c + shift, r - shift / 2, c, r))
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "tracking.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    config = {"command": "dpo", "dpo": {"model_name_or_path": "tiny", "loss": "dpo", "beta": 0.1}}
    (run_dir / "training_config.json").write_text(json.dumps(config), encoding="utf-8")


CHECK = """
import sys
from pathlib import Path

run_dir = Path(sys.argv[2])
if sys.argv[1] == "cli":
    from lm_eval_rankacc import cli

    assert cli.main(["plot-training", str(run_dir)]) == 0
else:
    from lm_eval_rankacc.training import plot_training

    plot_training(run_dir)
for name in ("figure2_flips.png", "figure3_loss_vs_c.png"):
    assert (run_dir / name).read_bytes()[:4] == b"\\x89PNG", name
heavy = sorted(m for m in ("torch", "transformers") if m in sys.modules)
assert not heavy, f"imported {heavy}"
"""


@pytest.mark.parametrize("entry", ["plot_training", "cli"])
def test_plot_training_imports_no_torch_or_transformers(tmp_path, entry):
    write_run(tmp_path / "run")
    proc = subprocess.run([sys.executable, "-c", CHECK, entry, str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
