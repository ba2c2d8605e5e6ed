"""Training end to end on the tiny random model (CPU, a few steps each):
every loss trains and tracks, the tracking log is tidy and complete, gamma
acts as Eq. 4 says, a killed run resumes without losing or repeating a step,
SIGTERM saves before stopping, a NaN stops the run naming step and batch,
SFT trains, a run never starts beside another run (``--fresh_start`` clears
only its own), resume takes the newest complete checkpoint, and a checkpoint
loads in ``lm_eval`` (slow)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import TrainerCallback

from lm_eval_rankacc.core.errors import NonFiniteLossError
from lm_eval_rankacc.core.theory import CATEGORIES
from lm_eval_rankacc.cli import parse_training_options as parse
from lm_eval_rankacc.training import DPOConfig, SFTConfig, losses, train_dpo, train_sft
from lm_eval_rankacc.training.run_folder.lock import LOCK_FILE
from lm_eval_rankacc.training.run_folder.marks import BEST_FILE, BEST_LINK
from lm_eval_rankacc.training.tracking_log import SUMMARY_FILE, TRACKING_FILE, read_rows

# rankacc_demo: 33 documents, 16 held out for validation; 4 human ties among them
N_TRACKED = 8


def targs(out: Path, **kw):
    values = dict(output_dir=str(out), max_steps=4, eval_steps=2, per_device_train_batch_size=4,
                  per_device_eval_batch_size=4, learning_rate=1e-3, warmup_steps=0, logging_steps=1,
                  use_cpu=True, disable_tqdm=True, seed=0)
    values.update(kw)
    return values


def dpo(model_dir, out: Path, callbacks=None, args_kw=None, **kw):
    config = DPOConfig(model_name_or_path=str(model_dir), task="rankacc_demo", tracking_size=N_TRACKED,
                       plots=False, **(args_kw or {}), **targs(out, **kw))
    return train_dpo(config, callbacks=callbacks)


def rows_by_step(out: Path):
    rows = read_rows(out / TRACKING_FILE)
    by = {}
    for r in rows:
        by.setdefault((r["step"], r["set"]), []).append(r)
    return rows, by


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory):
    """One short run per loss (4 steps, evaluated at 0, 2 and 4)."""
    base = tmp_path_factory.mktemp("dpo-runs")
    out = {}
    for loss, extra in (("dpo", {}), ("dpo_gamma", {"gamma": 0.5}), ("ipo", {"tau": 0.5})):
        result = dpo(tiny_model_dir, base / loss, args_kw={"loss": loss, **extra})
        out[loss] = (result, base / loss)
    return out


@pytest.mark.parametrize("loss", ["dpo", "dpo_gamma", "ipo"])
def test_each_loss_trains_and_tracks(runs, loss):
    result, out = runs[loss]
    assert result.global_step == 4 and not result.stopped_by_signal
    for step in (2, 4):
        assert (out / f"checkpoint-{step}" / "model.safetensors").is_file()
        assert (out / f"checkpoint-{step}" / "tokenizer.json").is_file()
    best = json.loads((out / BEST_FILE).read_text())
    assert (out / BEST_LINK).resolve() == (out / best["checkpoint"]).resolve()
    state = json.loads((out / best["checkpoint"] / "trainer_state.json").read_text())
    assert state["best_metric"] == pytest.approx(min(  # step 0 (eval_on_start) is the reference: never "best"
        h["eval_validation_loss"] for h in state["log_history"] if "eval_validation_loss" in h and h["step"] > 0))

    rows, by = rows_by_step(out)
    config = json.loads((out / "training_config.json").read_text())
    n_val = config["data"]["validation"]["pairs"]
    assert config["data"]["tracking_pairs"] == N_TRACKED
    # exactly one row per tracked datapoint per evaluation step, no repeats
    assert sorted(by) == [(s, k) for s in (0, 2, 4) for k in ("train", "validation")]
    for (step, set_name), rs in by.items():
        ids = [r["pair_id"] for r in rs]
        assert len(ids) == len(set(ids)) == (N_TRACKED if set_name == "train" else n_val)
        counts = Counter(r["category"] for r in rs)
        assert set(counts) <= set(CATEGORIES) and sum(counts.values()) == len(rs)
    assert len(rows) == 3 * (N_TRACKED + n_val)
    # the same datapoints at every step
    assert len({tuple(sorted(r["pair_id"] for r in by[(s, "train")])) for s in (0, 2, 4)}) == 1
    # step 0: the policy is the reference (bit for bit): no flips yet
    for r in by[(0, "train")] + by[(0, "validation")]:
        assert (r["logp_chosen"], r["logp_rejected"]) == (r["ref_logp_chosen"], r["ref_logp_rejected"])
        assert r["category"] in ("correct->correct", "incorrect->incorrect")
        assert r["correct"] == (r["logp_chosen"] >= r["logp_rejected"])
    # the summary agrees with the rows
    summary = [json.loads(line) for line in (out / SUMMARY_FILE).read_text().splitlines()]
    assert [(s["step"], s["set"]) for s in summary] == sorted(by)
    for s in summary:
        rs = by[(s["step"], s["set"])]
        assert sum(c["count"] for c in s["categories"].values()) == s["n"] == len(rs)
        assert sum(c["share"] for c in s["categories"].values()) == pytest.approx(1.0)
        assert s["rank_acc"] == pytest.approx(np.mean([r["correct"] for r in rs]))
    # training moved the policy
    assert any(r["logp_chosen"] != r["ref_logp_chosen"] for r in by[(4, "train")])


def _recompute(rows, loss, beta=0.1, gamma=1.0, tau=0.1):
    cols = [torch.tensor([r[k] for r in rows], dtype=torch.float64)
            for k in ("logp_chosen", "logp_rejected", "ref_logp_chosen", "ref_logp_rejected")]
    return losses.preference_loss(loss, *cols, beta=beta, gamma=gamma, tau=tau).numpy(), losses.dpo(*cols, beta).numpy()


def test_logged_losses_follow_the_formulas(runs):
    for loss, kw in (("dpo", {}), ("dpo_gamma", {"gamma": 0.5}), ("ipo", {"tau": 0.5})):
        rows, by = rows_by_step(runs[loss][1])
        objective, dpo_loss = _recompute(rows, loss, **kw)
        np.testing.assert_allclose([r["loss"] for r in rows], objective, rtol=1e-9)
        np.testing.assert_allclose([r["dpo_loss"] for r in rows], dpo_loss, rtol=1e-9)


def test_gamma_changes_the_loss_as_eq4_says(runs):
    """At step 0 (policy = reference) DPO's loss is log 2 for every pair, while
    DPO^gamma's is -log sigmoid(beta (1 - gamma) log pRef(y_w)/pRef(y_l))."""
    _, by_dpo = rows_by_step(runs["dpo"][1])
    _, by_gamma = rows_by_step(runs["dpo_gamma"][1])
    assert all(r["loss"] == pytest.approx(math.log(2)) for r in by_dpo[(0, "validation")])
    for r in by_gamma[(0, "validation")]:
        expected = math.log1p(math.exp(-0.1 * 0.5 * (r["ref_logp_chosen"] - r["ref_logp_rejected"])))
        assert r["loss"] == pytest.approx(expected, rel=1e-9)
        assert r["dpo_loss"] == pytest.approx(math.log(2))
    # Theorem 4.1 on the tracked rows: correct iff dpo_loss <= -log sigmoid(beta c)
    from lm_eval_rankacc.core import theory

    rows, _ = rows_by_step(runs["dpo"][1])
    for r in rows:
        margin = abs(r["logp_chosen"] - r["logp_rejected"])
        if margin > 1e-4:
            assert r["correct"] == (r["dpo_loss"] <= theory.dpo_loss_threshold(r["c"], 0.1))


def test_separate_reference_model(tiny_model_dir, tmp_path):
    """A reference other than the starting policy: its log-probs are the
    reference's, the policy is scored by its own forward from step 0."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ref_dir = tmp_path / "ref"
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        model.lm_head.weight.mul_(0.5)
    model.save_pretrained(ref_dir)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(ref_dir)
    result = dpo(tiny_model_dir, tmp_path / "run", args_kw={"ref_model_name_or_path": str(ref_dir)},
                 max_steps=2, eval_steps=2)
    assert result.global_step == 2
    _, by = rows_by_step(tmp_path / "run")
    step0 = by[(0, "validation")]
    assert all(r["logp_chosen"] != r["ref_logp_chosen"] for r in step0)
    # the policy's step-0 scores are the tiny model's own: the same as a run whose reference is itself
    same = dpo(tiny_model_dir, tmp_path / "self", max_steps=1, eval_steps=1)
    assert same.global_step == 1
    _, by_self = rows_by_step(tmp_path / "self")
    own = {r["pair_id"]: r["logp_chosen"] for r in by_self[(0, "validation")]}
    for r in step0:
        assert r["logp_chosen"] == pytest.approx(own[r["pair_id"]], abs=1e-4)


class KillAt(TrainerCallback):
    """Simulates a crash in the middle of an evaluation (after the training
    subset's rows are written, before the validation set's)."""

    def __init__(self, step):
        self.step = step

    def on_evaluate(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt(f"killed at step {self.step}")


def _table(out: Path):
    rows = read_rows(out / TRACKING_FILE)
    return {(r["step"], r["set"], r["pair_id"]): r for r in rows}, rows


def test_resume_after_a_kill_matches_an_uninterrupted_run(tiny_model_dir, tmp_path):
    kw = dict(max_steps=6, eval_steps=1, save_steps=2)
    dpo(tiny_model_dir, tmp_path / "a", **kw)
    with pytest.raises(KeyboardInterrupt):
        dpo(tiny_model_dir, tmp_path / "b", callbacks=[KillAt(5)], **kw)
    partial = read_rows(tmp_path / "b" / TRACKING_FILE)
    assert max(r["step"] for r in partial) == 5  # rows after the last checkpoint (4) exist...
    assert not (tmp_path / "b" / "checkpoint-6").exists()
    result = dpo(tiny_model_dir, tmp_path / "b", resume_from_checkpoint=str(tmp_path / "b" / "checkpoint-4"), **kw)
    assert result.global_step == 6
    a, rows_a = _table(tmp_path / "a")
    b, rows_b = _table(tmp_path / "b")
    assert len(rows_b) == len(b) == len(rows_a)  # ...and are replaced, not repeated
    assert sorted(a) == sorted(b)
    for key, ra in a.items():
        rb = b[key]
        assert ra["category"] == rb["category"], key
        for col in ("logp_chosen", "logp_rejected", "ref_logp_chosen", "ref_logp_rejected", "loss"):
            assert rb[col] == pytest.approx(ra[col], abs=1e-5, rel=1e-6), (key, col)
    summary = [json.loads(x) for x in (tmp_path / "b" / SUMMARY_FILE).read_text().splitlines()]
    assert [(s["step"], s["set"]) for s in summary] == [(s, k) for s in range(7) for k in ("train", "validation")]
    # the distance travelled: kept for the steps before the checkpoint, streamed from the model's files after it
    summary_a = [json.loads(x) for x in (tmp_path / "a" / SUMMARY_FILE).read_text().splitlines()]
    for sa, sb in zip(summary_a, summary):
        assert sb["weight_distance"] == pytest.approx(sa["weight_distance"], rel=1e-5, abs=1e-8), sb["step"]


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> content) but the run lock (written by any run there)."""
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*"))
            if f.is_file() and f.name != LOCK_FILE}


def test_a_run_never_starts_beside_another_run(tiny_model_dir, tmp_path, capsys):
    """Issue 11, item 2: a fresh run refuses an --output_dir holding another
    run or foreign checkpoint folders (the Trainer's rotation would delete
    them), before any model is loaded; --fresh_start deletes only what the
    earlier rankacc run wrote."""
    from lm_eval_rankacc import cli
    from lm_eval_rankacc.core.errors import TrainingDataError

    out = tmp_path / "run"
    for name in ("checkpoint-100", "checkpoint-1"):  # the user's own folders
        (out / name).mkdir(parents=True)
        (out / name / "weights.bin").write_bytes(b"mine")
    (out / "notes.txt").write_text("keep me")
    foreign = _files(out)
    missing_model = tmp_path / "no-such-model"  # the check comes before any model is loaded
    for make, train in ((DPOConfig, train_dpo), (SFTConfig, train_sft)):
        for fresh in (False, True):
            config = make(model_name_or_path=str(missing_model), task="rankacc_demo", fresh_start=fresh,
                          save_total_limit=1, **targs(out))
            with pytest.raises(TrainingDataError, match="checkpoint-1, checkpoint-100") as err:
                train(config)
            assert str(out) in str(err.value) and ("did not write" in str(err.value)) == fresh
    assert _files(out) == foreign

    for name in ("checkpoint-100", "checkpoint-1"):
        for f in (out / name).iterdir():
            f.unlink()
        (out / name).rmdir()
    first = dpo(tiny_model_dir, out, save_total_limit=1)  # other files are fine, and never touched
    assert first.global_step == 4 and (out / "notes.txt").read_text() == "keep me"
    run_id = json.loads((out / "training_config.json").read_text())["run_id"]
    assert json.loads((out / "checkpoint-4" / "rankacc_run.json").read_text()) == {"run_id": run_id}
    before = _files(out)
    with pytest.raises(TrainingDataError, match="training_config.json.*--fresh_start"):
        dpo(missing_model, out)
    argv = ["dpo", "--model_name_or_path", str(missing_model), "--task", "rankacc_demo", "--output_dir", str(out)]
    capsys.readouterr()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds another run" in err and "Traceback" not in err
    (out / "checkpoint-100").mkdir()  # a folder the run did not write: --fresh_start deletes nothing
    with pytest.raises(TrainingDataError, match="checkpoint-100"):
        dpo(missing_model, out, args_kw={"fresh_start": True})
    assert _files(out) == before
    (out / "checkpoint-100").rmdir()

    second = dpo(tiny_model_dir, out, args_kw={"fresh_start": True}, max_steps=2)
    assert second.global_step == 2 and (out / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]
    assert json.loads((out / "training_config.json").read_text())["run_id"] != run_id
    assert max(r["step"] for r in read_rows(out / TRACKING_FILE)) == 2
    with pytest.raises(ValueError, match="fresh_start"):
        parse("dpo", argv[1:] + ["--fresh_start", "--resume_from_checkpoint", "true"])


def _cut_save(folder: Path, source: Path) -> None:
    """What a kill during the Trainer's save of ``folder`` leaves: the config files only."""
    folder.mkdir()
    for name in ("config.json", "generation_config.json", "rankacc_run.json"):
        if (source / name).is_file():
            (folder / name).write_bytes((source / name).read_bytes())


def test_resume_picks_the_newest_complete_checkpoint(tiny_model_dir, tmp_path, caplog, capsys):
    """Issue 11, item 6 (and 13's corrupted checkpoint): after a kill during a
    save, ``--resume_from_checkpoint true`` resumes from the newest complete
    checkpoint and says so; a named incomplete or corrupted checkpoint is one
    line naming the folder and the file."""
    import logging

    from lm_eval_rankacc import cli
    from lm_eval_rankacc.core.errors import TrainingDataError

    kw = dict(max_steps=6, eval_steps=2)
    dpo(tiny_model_dir, tmp_path, max_steps=4, eval_steps=2)
    _cut_save(tmp_path / "checkpoint-6", tmp_path / "checkpoint-4")
    caplog.set_level(logging.INFO, logger="lm_eval_rankacc.training")
    result = dpo(tiny_model_dir, tmp_path, resume_from_checkpoint="true", **kw)
    assert result.global_step == 6 and (tmp_path / "checkpoint-6" / "trainer_state.json").is_file()
    log = caplog.text
    assert "skipped incomplete checkpoints" in log and "checkpoint-6 (no weights" in log
    assert "no trainer state (trainer_state.json)" in log
    assert f"resuming from {tmp_path / 'checkpoint-4'}, the newest complete checkpoint" in log
    _, by = rows_by_step(tmp_path)
    assert sorted({s for s, _ in by}) == [0, 2, 4, 6]

    _cut_save(tmp_path / "checkpoint-8", tmp_path / "checkpoint-6")
    with pytest.raises(TrainingDataError, match=r"checkpoint-8: no weights .*no trainer state \(trainer_state.json"):
        dpo(tiny_model_dir, tmp_path, resume_from_checkpoint=str(tmp_path / "checkpoint-8"), max_steps=8)
    weights = tmp_path / "checkpoint-6" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])  # cut
    argv = ["dpo", "--model_name_or_path", str(tiny_model_dir), "--task", "rankacc_demo", "--output_dir",
            str(tmp_path), "--resume_from_checkpoint", str(tmp_path / "checkpoint-6"), "--use_cpu"]
    capsys.readouterr()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"{tmp_path / 'checkpoint-6'}: model.safetensors is cut" in err
    (tmp_path / "checkpoint-4" / "trainer_state.json").write_text('{"global_step": 4, "log_hist')
    with pytest.raises(TrainingDataError, match=r"checkpoint-4: trainer_state.json is cut or not JSON"):
        dpo(tiny_model_dir, tmp_path, resume_from_checkpoint=str(tmp_path / "checkpoint-4"), **kw)
    caplog.clear()
    from lm_eval_rankacc.training.run_folder.checkpoints import resume_point

    assert resume_point("latest", tmp_path) == tmp_path / "checkpoint-2"
    assert "checkpoint-8 (no weights" in caplog.text and "checkpoint-6 (model.safetensors is cut" in caplog.text
    assert "checkpoint-4 (trainer_state.json is cut or not JSON)" in caplog.text


def test_complete_checkpoint_rules(tmp_path, caplog):
    """The criterion of a complete checkpoint (training/run_folder/checkpoints.py), on
    hand-made folders: every required file, every file whole."""
    import logging

    from safetensors.torch import save_file

    from lm_eval_rankacc.core.errors import TrainingDataError
    from lm_eval_rankacc.training.run_folder.checkpoints import checkpoint_problems, resume_point

    def make(step):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        save_file({"w": torch.zeros(4, 4)}, str(folder / "model.safetensors"))
        torch.save({"state": {}}, folder / "optimizer.pt")
        torch.save({"last_epoch": step}, folder / "scheduler.pt")
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
        return folder

    one, two = make(1), make(2)
    assert checkpoint_problems(one) == []
    optimizer = two / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[:50])
    assert checkpoint_problems(two) == ["optimizer.pt is cut or not a torch file (not a whole zip archive)"]
    caplog.set_level(logging.INFO, logger="lm_eval_rankacc.training")
    assert resume_point("true", tmp_path) == one and "checkpoint-2 (optimizer.pt is cut" in caplog.text
    (two / "optimizer.pt").unlink()
    assert checkpoint_problems(two) == ["no optimizer state (optimizer.pt or optimizer.bin)"]
    assert checkpoint_problems(two, full_state=False) == []  # --save_only_model, DeepSpeed, FSDP
    (one / "model.safetensors").rename(one / "model-00001-of-00002.safetensors")
    (one / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "w": "model-00001-of-00002.safetensors", "v": "model-00002-of-00002.safetensors"}}))
    assert checkpoint_problems(one) == [
        "model.safetensors.index.json lists missing shards ['model-00002-of-00002.safetensors']"]
    (one / "trainer_state.json").write_text("[]")
    assert "trainer_state.json has no global_step" in checkpoint_problems(one)
    assert resume_point("last", tmp_path, full_state=False) == two
    with pytest.raises(TrainingDataError, match=r"cannot resume from .*checkpoint-1: .*missing shards"):
        resume_point(str(one), tmp_path)
    with pytest.raises(TrainingDataError, match="no such folder"):
        resume_point(str(tmp_path / "checkpoint-9"), tmp_path)
    with pytest.raises(TrainingDataError, match="no complete checkpoint in .*checkpoint-2 .*checkpoint-1"):
        resume_point("latest", tmp_path)
    assert resume_point("latest", tmp_path, restart_allowed=True) is None  # a run of ours that saved none yet
    assert resume_point(None, tmp_path) is None


class SendSignal(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 2:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_saves_a_checkpoint_then_stops(tiny_model_dir, tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    result = dpo(tiny_model_dir, tmp_path, callbacks=[SendSignal()], max_steps=8, eval_steps=4, save_steps=4)
    assert signal.getsignal(signal.SIGTERM) is before  # handler restored
    assert result.stopped_by_signal and result.global_step in (2, 3)
    assert (tmp_path / f"checkpoint-{result.global_step}" / "optimizer.pt").is_file()
    resumed = dpo(tiny_model_dir, tmp_path, max_steps=8, eval_steps=4, save_steps=4,
                  resume_from_checkpoint=str(tmp_path / f"checkpoint-{result.global_step}"))
    assert resumed.global_step == 8 and not resumed.stopped_by_signal
    _, by = rows_by_step(tmp_path)
    assert sorted({s for s, _ in by}) == [0, 4, 8]


class PoisonAfterSave(TrainerCallback):
    def on_save(self, args, state, control, model=None, **kwargs):
        if state.global_step == 2:
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))


def test_nan_loss_stops_naming_step_and_batch(tiny_model_dir, tmp_path):
    with pytest.raises(NonFiniteLossError) as err:
        dpo(tiny_model_dir, tmp_path, callbacks=[PoisonAfterSave()], max_steps=6, eval_steps=2)
    message = str(err.value)
    assert "training step 3" in message and "batch of 4 pairs [demo/" in message
    assert "checkpoint-2" in message
    assert not (tmp_path / "checkpoint-3").exists()
    from safetensors.torch import load_file

    weights = load_file(tmp_path / "checkpoint-2" / "model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_sft_trains_on_preferred_responses(tiny_model_dir, tmp_path):
    config = SFTConfig(model_name_or_path=str(tiny_model_dir), task="rankacc_demo", output_dir=str(tmp_path),
                       max_steps=2, eval_steps=1, per_device_train_batch_size=4, learning_rate=1e-3, warmup_steps=0,
                       use_cpu=True, disable_tqdm=True)
    result = train_sft(config)
    assert result.global_step == 2 and (tmp_path / "checkpoint-2" / "model.safetensors").is_file()
    assert json.loads((tmp_path / BEST_FILE).read_text())["checkpoint"] in ("checkpoint-1", "checkpoint-2")
    config = json.loads((tmp_path / "training_config.json").read_text())
    assert config["data"]["train"]["examples"] == 17 - 3  # 17 training documents, 3 of them human ties
    from lm_eval_rankacc.training.sft import SFTCollator, SFTDataset
    from lm_eval_rankacc.training.tokens import Encoded

    batch = SFTCollator(0)([SFTDataset(Encoded(["x"], [[5, 6, 7]], [[[8, 9]]]))[0]])
    assert batch["labels"].tolist() == [[-100, -100, -100, 8, 9]]


def test_parse_dpo_defaults(tmp_path):
    # one DPOConfig holds our options and the Trainer's; RMSProp as App. D.1 states for DPO, beta 0.1 and
    # learning rate 1e-6 as Rafailov et al. 2023 (App. D.1 names neither), max length 512 our own choice
    ours = t = parse("dpo", ["--model_name_or_path", "m", "--task", "rankacc_demo", "--output_dir", str(tmp_path),
                             "--eval_steps", "7"])
    assert (ours.loss, ours.beta, ours.max_length, ours.tracking_size) == ("dpo", 0.1, 512, 1000)
    assert t.optim == "rmsprop" and t.weight_decay == 0.0 and t.learning_rate == 1e-6
    assert t.eval_on_start and t.save_steps == 7 and t.metric_for_best_model == "validation_loss"
    from transformers import Trainer

    cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(t)
    opt = cls([torch.nn.Parameter(torch.zeros(2))], **kwargs)
    assert cls is torch.optim.RMSprop and {k: opt.defaults[k] for k in ("alpha", "eps", "weight_decay", "momentum")} \
        == {"alpha": 0.99, "eps": 1e-8, "weight_decay": 0, "momentum": 0}
    ours = t = parse("dpo", ["--model_name_or_path", "m", "--task", "rankacc_demo", "--output_dir", str(tmp_path),
                             "--loss", "dpo_gamma", "--gamma", "0", "--optim", "adamw_torch", "--save_steps", "3"])
    assert ours.gamma == 0.0 and t.optim == "adamw_torch" and t.save_steps == 3
    config = tmp_path / "c.yaml"
    config.write_text(f"model_name_or_path: m\ntask: rankacc_demo\noutput_dir: {tmp_path}\nbeta: 0.5\n")
    ours = t = parse("dpo", [str(config)])
    assert ours.beta == 0.5 and t.optim == "rmsprop"
    with pytest.raises(ValueError, match="no training data"):
        parse("dpo", ["--model_name_or_path", "m", "--output_dir", str(tmp_path)])
    with pytest.raises(ValueError, match="max_prompt_length"):
        parse("sft", ["--model_name_or_path", "m", "--task", "t", "--output_dir", str(tmp_path),
                      "--max_length", "8", "--max_prompt_length", "8"])
    with pytest.raises(SystemExit):
        parse("dpo", ["--model_name_or_path", "m", "--task", "t", "--output_dir", str(tmp_path), "--loss", "kto"])


def test_parse_sft_defaults_to_adamw_as_app_d1(tmp_path, capsys):
    """Issue 12, fix 1: App. D.1 trains SFT with AdamW (beta1 0.9, beta2
    0.999, eps 1e-8) and DPO with RMSProp; ``rankacc sft --help`` shows it."""
    from transformers import Trainer

    from lm_eval_rankacc import cli

    base = ["--model_name_or_path", "m", "--task", "rankacc_demo", "--output_dir", str(tmp_path)]
    t = parse("sft", base)
    assert (t.optim, t.adam_beta1, t.adam_beta2, t.adam_epsilon) == ("adamw_torch", 0.9, 0.999, 1e-8)
    cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(t)
    assert cls is torch.optim.AdamW and kwargs["betas"] == (0.9, 0.999) and kwargs["eps"] == 1e-8
    assert kwargs["lr"] == t.learning_rate == 1e-6 and t.weight_decay == 0.0
    cls, _ = Trainer.get_optimizer_cls_and_kwargs(parse("dpo", base))
    assert cls is torch.optim.RMSprop
    assert parse("sft", [*base, "--optim", "rmsprop"]).optim == "rmsprop"  # still an option
    with pytest.raises(SystemExit):
        cli.main(["sft", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "(default: adamw_torch)" in help_text and "(default: 1e-08)" in help_text
    assert "(default: 0.9)" in help_text and "(default: 0.999)" in help_text


def test_dpo_help_says_what_no_plots_does(capsys):
    """``--no_plots`` shares ``--plots``' help text (HfArgumentParser): it says that it skips drawing."""
    from lm_eval_rankacc import cli

    with pytest.raises(SystemExit):
        cli.main(["dpo", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    no_plots = help_text[help_text.index("--no_plots, --no-plots"):]
    assert no_plots.startswith("--no_plots, --no-plots draw figures 2, 3 and 4 at the end of training; "
                               "--no_plots skips drawing them")


def test_the_trackers_defaults_are_rankacc_dpos():
    """RankingTracker reads its defaults from DPOConfig's fields (one place for both)."""
    import inspect
    from dataclasses import fields

    from lm_eval_rankacc.training import RankingTracker

    options = {f.name: f.default for f in fields(DPOConfig)}
    given = inspect.signature(RankingTracker.__init__).parameters
    same = {"sample_size": "tracking_size", "seed": "tracking_seed", "loss": "loss", "gamma": "gamma", "tau": "tau",
            "max_length": "max_length", "max_prompt_length": "max_prompt_length",
            "batch_size": "per_device_eval_batch_size", "packing": "packing", "plots": "plots"}
    assert {arg: given[arg].default for arg in same} == {arg: options[name] for arg, name in same.items()}
    assert (given["sample_size"].default, given["max_length"].default, given["batch_size"].default) == (1000, 512, 8)


@pytest.mark.parametrize("option,value", [("beta", "inf"), ("beta", "nan"), ("gamma", "nan"), ("gamma", "inf"),
                                          ("gamma", "-inf"), ("tau", "nan"), ("tau", "inf")])
def test_parse_rejects_non_finite_loss_options(tmp_path, capsys, option, value):
    """Issue 11, item 13: refused when the options are parsed (exit 2, one
    line), not after the reference pass."""
    from lm_eval_rankacc import cli

    argv = ["--model_name_or_path", str(tmp_path / "no-model"), "--task", "rankacc_demo", "--output_dir",
            str(tmp_path / "out"), "--loss", "dpo_gamma", f"--{option}={value}"]
    with pytest.raises(ValueError, match=f"{option} must be a finite number"):
        parse("dpo", argv)
    capsys.readouterr()
    assert cli.main(["dpo", *argv]) == 2
    assert "finite" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_cli_dpo_and_plot_training(tiny_model_dir, tmp_path, capsys):
    from lm_eval_rankacc import cli

    out = tmp_path / "run"
    code = cli.main(["dpo", "--model_name_or_path", str(tiny_model_dir), "--task", "rankacc_demo",
                     "--output_dir", str(out), "--max_steps", "2", "--eval_steps", "2", "--warmup_steps", "0",
                     "--learning_rate", "1e-3", "--per_device_train_batch_size", "4", "--tracking_size", "6",
                     "--use_cpu", "--disable_tqdm", "true", "--no_plots"])
    assert code == 0
    assert "best checkpoint" in capsys.readouterr().out
    config = json.loads((out / "training_config.json").read_text())
    assert config["training"]["optim"] == "rmsprop" and config["scoring"]["packed"] is True
    assert not (out / "figure2_flips.png").exists()
    assert cli.main(["plot-training", str(out)]) == 0
    for name in ("figure2_flips.png", "figure3_loss_vs_c.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert cli.main(["plot-training", str(tmp_path)]) == 2
    assert cli.main(["dpo", "--model_name_or_path", str(tiny_model_dir), "--output_dir", str(out)]) == 2


@pytest.mark.slow
def test_checkpoint_loads_in_lm_eval(runs, offline_env, tmp_path):
    """``lm_eval --model hf`` reads a checkpoint as it is, and scores the
    tracked pairs with the log-probabilities the tracking log recorded."""
    _, out = runs["dpo"]
    ckpt = out / BEST_LINK
    step = int(json.loads((out / BEST_FILE).read_text())["step"])
    proc = subprocess.run(
        [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={ckpt}", "--device", "cpu",
         "--tasks", "rankacc_demo", "--output_path", str(tmp_path), "--log_samples"],
        env=offline_env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    samples = list(tmp_path.rglob("samples_rankacc_demo_*.jsonl"))
    assert len(samples) == 1
    tracked = {r["pair_id"]: r for r in read_rows(out / TRACKING_FILE) if r["step"] == step}
    matched = 0
    for line in samples[0].read_text().splitlines():
        s = json.loads(line)
        d = s["doc"]
        if d["id"] not in tracked:
            continue
        r, ranks, ll = tracked[d["id"]], d["ranks"], s["scores"]["loglik"]
        w = ranks.index(min(ranks))
        assert ll[w] == pytest.approx(r["logp_chosen"], abs=1e-3)
        assert ll[1 - w] == pytest.approx(r["logp_rejected"], abs=1e-3)
        assert bool(s["rank_acc"]) == r["correct"]
        matched += 1
    assert matched == N_TRACKED + json.loads((out / "training_config.json").read_text())["data"]["validation"]["pairs"]
