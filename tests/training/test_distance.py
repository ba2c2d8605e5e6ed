"""Distance travelled (``weight_distance`` = ||theta_t - theta_ref||_2 and
its ratio to ||theta_ref||_2 in ``tracking_summary.jsonl``): it equals a
computation by hand from the saved checkpoint files and the reference's
files (read with safetensors / torch, not through the tracker), it is 0 at
step 0 when the reference is the starting policy, a separate reference
stored without safetensors is held as a copy, streaming casts to the model's
dtype, and a resumed run keeps the distance of the steps before the resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lm_eval_rankacc.training import DPOConfig, train_dpo
from lm_eval_rankacc.training.distance import WeightDistance, reference_weights
from lm_eval_rankacc.training.tracking_log import SUMMARY_FILE, TrackingLog
from tests.helpers import paths
from tests.helpers.commands import command


def _summaries(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / SUMMARY_FILE).read_text().splitlines()]


def _by_hand(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> tuple[float, float]:
    """(||a - b||_2, ||b||_2) over b's tensors, in float64, with plain torch."""
    assert set(a) == set(b)
    dist = sum(float(((a[k].double() - b[k].double()) ** 2).sum()) for k in b)
    norm = sum(float((b[k].double() ** 2).sum()) for k in b)
    return math.sqrt(dist), math.sqrt(norm)


def _dpo(model_dir, out: Path, **kw):
    values = dict(model_name_or_path=str(model_dir), task="rankacc_demo", tracking_size=6, plots=False,
                  output_dir=str(out), max_steps=4, eval_steps=2, save_steps=2, per_device_train_batch_size=4,
                  per_device_eval_batch_size=4, learning_rate=1e-3, warmup_steps=0, logging_steps=1,
                  use_cpu=True, disable_tqdm=True, seed=0)
    config = DPOConfig(**{**values, **kw})
    return train_dpo(config)


def test_distance_equals_a_computation_from_the_saved_weights(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    assert _dpo(tiny_model_dir, out).global_step == 4
    summaries = _summaries(out)
    assert [(s["step"], s["set"]) for s in summaries] == [(k, s) for k in (0, 2, 4) for s in ("train", "validation")]
    initial = load_file(str(Path(tiny_model_dir) / "model.safetensors"))
    for s in summaries:
        if s["step"] == 0:
            assert s["weight_distance"] == 0.0 and s["weight_distance_ratio"] == 0.0
            continue
        saved = load_file(str(out / f"checkpoint-{s['step']}" / "model.safetensors"))
        dist, norm = _by_hand(saved, initial)
        assert dist > 0
        assert s["weight_distance"] == pytest.approx(dist, rel=1e-9)
        assert s["weight_distance_ratio"] == pytest.approx(dist / norm, rel=1e-9)
    # the training subset and the validation set of a step share one distance
    by_step = {}
    for s in summaries:
        by_step.setdefault(s["step"], set()).add(s["weight_distance"])
    assert all(len(v) == 1 for v in by_step.values())


def test_separate_reference_without_safetensors_is_held_as_a_copy(tiny_model_dir, tmp_path):
    """A reference other than the starting policy, saved as pytorch_model.bin:
    the distance is from the reference's weights (not 0 at step 0)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ref_dir = tmp_path / "ref"
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        model.lm_head.weight.mul_(0.5)
    ref_dir.mkdir()
    model.config.save_pretrained(ref_dir)  # transformers 5 saves only safetensors: write the .bin by hand
    torch.save(model.state_dict(), ref_dir / "pytorch_model.bin")
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(ref_dir)
    out = tmp_path / "run"
    _dpo(tiny_model_dir, out, ref_model_name_or_path=str(ref_dir), max_steps=2)
    reference = {k: v for k, v in torch.load(ref_dir / "pytorch_model.bin", weights_only=True).items()}
    for s in _summaries(out):
        path = Path(tiny_model_dir) if s["step"] == 0 else out / f"checkpoint-{s['step']}"
        dist, norm = _by_hand(load_file(str(path / "model.safetensors")), reference)
        assert dist > 0
        assert s["weight_distance"] == pytest.approx(dist, rel=1e-9)
        assert s["weight_distance_ratio"] == pytest.approx(dist / norm, rel=1e-9)


def test_no_track_distance_records_none(tiny_model_dir, tmp_path):
    """``--no_track_distance``: no reference weights held, no distance fields."""
    from lm_eval_rankacc.cli import parse_training_options

    argv = ["--model_name_or_path", str(tiny_model_dir), "--task", "rankacc_demo", "--output_dir", str(tmp_path),
            "--no_track_distance"]
    assert parse_training_options("dpo", argv).track_distance is False
    out = tmp_path / "run"
    _dpo(tiny_model_dir, out, max_steps=1, eval_steps=1, track_distance=False)
    summaries = _summaries(out)
    assert summaries and not any("weight_distance" in s for s in summaries)


def test_streamed_and_copied_references_agree_with_torch(tiny_model_dir):
    """Both ways of holding theta_ref give the hand-computed distance after a
    change of the weights; streaming casts to the model's dtype (a bfloat16
    model is at distance 0 from the float32 files it was loaded from)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    streamed = reference_weights(model, tiny_model_dir)
    model.model.embed_tokens.weight.requires_grad_(False)  # frozen: left out of the copy, still in the norm
    copied = WeightDistance.copy_of(model)
    assert (streamed.how, copied.how) == ("safetensors", "copy")
    assert streamed.ref_norm == pytest.approx(copied.ref_norm, rel=1e-12)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=gen) * 1e-3)
    dist, norm = _by_hand(model.state_dict(), initial)
    assert streamed.distance(model) == pytest.approx(dist, rel=1e-9)
    assert copied.distance(model) == pytest.approx(dist, rel=1e-9)
    assert copied.fields(model)["weight_distance_ratio"] == pytest.approx(dist / norm, rel=1e-9)

    # a reference of another shape is refused (the trainer then records no distance), never half-summed
    assert copied.fits(model) and streamed.fits(model)
    other = torch.nn.Linear(3, 2)
    assert not WeightDistance.copy_of(torch.nn.Linear(4, 2)).fits(other) and not streamed.fits(other)

    half = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16)
    held = reference_weights(half, tiny_model_dir)
    assert held.how == "safetensors" and held.distance(half) == 0.0


def test_resume_keeps_the_distance_of_earlier_steps(tmp_path):
    log = TrackingLog(tmp_path)
    log.start(0)
    row = {"step": 0, "epoch": 0.0, "set": "train", "pair_id": "a", "doc_id": "a", "logp_chosen": -1.0,
           "logp_rejected": -2.0, "ref_logp_chosen": -1.0, "ref_logp_rejected": -2.0, "c": -1.0,
           "reward_margin": 0.0, "dpo_loss": 0.69, "loss": 0.69, "correct": True, "ref_correct": True,
           "category": "correct->correct"}
    from lm_eval_rankacc.training.tracking_log import summarize_step

    for step, d in ((0, 0.0), (2, 0.5), (4, 0.9)):
        rows = [{**row, "step": step}]
        log.add("train", step, rows, {**summarize_step(rows), "weight_distance": d, "weight_distance_ratio": d / 10})
    resumed = TrackingLog(tmp_path)
    resumed.start(2)  # resumes from checkpoint-2: step 4 is dropped, steps 0 and 2 keep their distance
    assert [(s["step"], s["weight_distance"], s["weight_distance_ratio"]) for s in _summaries(tmp_path)] == [
        (0, 0.0, 0.0), (2, 0.5, 0.05)]


# ----------------------------------------------------------------- two processes (gloo, CPU)
REPO = paths.REPO

SHARDED = """
import json, math, sys
import torch, torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from lm_eval_rankacc.training.distance import WeightDistance, is_sharded

dist.init_process_group("gloo")
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.Linear(5, 3))
mesh = init_device_mesh("cpu", (dist.get_world_size(),))
for layer in model:
    fully_shard(layer, mesh=mesh)
fully_shard(model, mesh=mesh)
before = {k: p.full_tensor().clone() for k, p in model.named_parameters()}
held = WeightDistance.copy_of(model)
with torch.no_grad():
    for k, p in enumerate(model.parameters()):
        p.mul_(1.5 + k)
after = {k: p.full_tensor() for k, p in model.named_parameters()}
out = {"sharded": is_sharded(model), "distance": held.distance(model), "ref_norm": held.ref_norm,
       "local": [p.to_local().numel() for p in model.parameters()],
       "expected": math.sqrt(sum(float(((after[k].double() - before[k].double()) ** 2).sum()) for k in before)),
       "expected_norm": math.sqrt(sum(float((v.double() ** 2).sum()) for v in before.values()))}
with open(sys.argv[1] + f".{dist.get_rank()}.json", "w") as f:
    json.dump(out, f)
dist.destroy_process_group()
"""


def _torchrun(offline_env, args: list[str], cwd: Path) -> None:
    import subprocess

    torchrun = command("torchrun")
    env = {**offline_env, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


@pytest.mark.slow
def test_sharded_parameters_sum_each_shard_once(offline_env, tmp_path):
    """FSDP2 on two CPU processes: each holds a copy of its own shards, and the
    all_reduced distance and norm equal the ones of the full tensors."""
    script = tmp_path / "sharded.py"
    script.write_text(SHARDED)
    _torchrun(offline_env, [str(script), str(tmp_path / "out")], tmp_path)
    results = [json.loads((tmp_path / f"out.{rank}.json").read_text()) for rank in (0, 1)]
    for r in results:
        assert r["sharded"] and r["distance"] > 0
        assert r["distance"] == pytest.approx(r["expected"], rel=1e-12)
        assert r["ref_norm"] == pytest.approx(r["expected_norm"], rel=1e-12)
    assert results[0]["local"] != [0] * 4 and results[1]["local"] != [0] * 4  # both ranks hold a shard


@pytest.mark.slow
def test_torchrun_ddp_records_the_distance_once(tiny_model_dir, offline_env, tmp_path):
    """``rankacc dpo`` under torchrun (DDP, gloo): rank 0 records the distance,
    equal to the hand computation from the saved checkpoint."""
    out = tmp_path / "run"
    _torchrun(offline_env, ["-m", "lm_eval_rankacc", "dpo", "--model_name_or_path", str(tiny_model_dir),
                            "--task", "rankacc_demo", "--max_steps", "2", "--eval_steps", "2", "--warmup_steps", "0",
                            "--learning_rate", "1e-3", "--per_device_train_batch_size", "2",
                            "--per_device_eval_batch_size", "2", "--tracking_size", "4", "--use_cpu",
                            "--disable_tqdm", "true", "--no_plots", "--output_dir", str(out)], tmp_path)
    summaries = _summaries(out)
    assert [(s["step"], s["set"]) for s in summaries] == [(k, s) for k in (0, 2) for s in ("train", "validation")]
    dist, norm = _by_hand(load_file(str(out / "checkpoint-2" / "model.safetensors")),
                          load_file(str(Path(tiny_model_dir) / "model.safetensors")))
    for s in summaries:
        assert s["weight_distance"] == (0.0 if s["step"] == 0 else pytest.approx(dist, rel=1e-9))
    assert summaries[-1]["weight_distance_ratio"] == pytest.approx(dist / norm, rel=1e-9) and dist > 0
