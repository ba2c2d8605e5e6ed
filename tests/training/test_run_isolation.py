"""Issue 20, items 1 and 2: training runs that cannot mix. A run holds an
exclusive OS lock on its folder for its whole life (a second run,
``--fresh_start`` included, is refused naming the holder's pid; kill -9
leaves no stale lock); a resume that would change what defines the run is
refused listing each difference, unless ``--allow_run_changes``, which the
run then records."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from transformers import TrainerCallback

from lm_eval_rankacc import cli
from lm_eval_rankacc.core.errors import TrainingDataError
from lm_eval_rankacc.training import DPOConfig, SFTConfig, train_dpo, train_sft
from lm_eval_rankacc.training.run_folder.lock import LOCK_FILE, lock_run_folder
from tests.training.test_training import targs as training_targs

ROOT = Path(__file__).resolve().parents[2]


def targs(out: Path, **kw):
    """The tiny run of the training tests, 2 steps."""
    return training_targs(out, **{"max_steps": 2, **kw})


def dpo_config(model, out: Path, own=None, **kw) -> DPOConfig:
    return DPOConfig(model_name_or_path=str(model), task="rankacc_demo", plots=False,
                     **{"tracking_size": 4, **(own or {})}, **targs(out, **kw))


def _files(folder: Path) -> dict[str, bytes]:
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()}


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock of ``tmp_path / "run"``: (its Popen, the folder)."""
    out = tmp_path / "run"
    code = textwrap.dedent(f"""
        import sys, time
        from lm_eval_rankacc.training.run_folder.lock import lock_run_folder
        lock = lock_run_folder({str(out)!r})
        print("locked", flush=True)
        time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout.readline().strip() == "locked"
    yield proc, out
    proc.kill()
    proc.wait()


def test_a_second_run_is_refused_naming_the_holders_pid(holder, tmp_path, capsys):
    proc, out = holder
    (out / "notes.txt").write_text("the first run's")
    before = _files(out)
    missing = tmp_path / "no-such-model"  # refused before any model is loaded
    for make, train in ((DPOConfig, train_dpo), (SFTConfig, train_sft)):
        for fresh in (False, True):
            config = make(model_name_or_path=str(missing), task="rankacc_demo", fresh_start=fresh, **targs(out))
            with pytest.raises(TrainingDataError, match=f"in use by another rankacc run \\(pid {proc.pid} "):
                train(config)
    assert _files(out) == before  # --fresh_start deleted nothing
    capsys.readouterr()
    argv = ["dpo", "--model_name_or_path", str(missing), "--task", "rankacc_demo", "--output_dir", str(out),
            "--fresh_start"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"pid {proc.pid}" in err and "Traceback" not in err
    proc.kill()  # kill -9: the kernel drops the lock, none is left behind
    proc.wait()
    with lock_run_folder(out):
        assert (out / LOCK_FILE).is_file()


def test_the_lock_is_held_for_the_whole_run_and_released_after(tiny_model_dir, tmp_path):
    seen = []

    class TryToLock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            with pytest.raises(TrainingDataError, match="in use by another rankacc run") as err:
                lock_run_folder(args.output_dir)
            seen.append(str(err.value))

    train_dpo(dpo_config(tiny_model_dir, tmp_path / "run"), callbacks=[TryToLock()])
    assert len(seen) == 2 and all("pid " in s for s in seen)
    lock_run_folder(tmp_path / "run").release()  # free again once the run returned


def test_a_resume_that_changes_the_run_is_refused_listing_each_change(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "run"
    train_dpo(dpo_config(tiny_model_dir, out))
    recorded = json.loads((out / "training_config.json").read_text())
    before = _files(out)
    changed = dpo_config(tiny_model_dir, out, own={"beta": 0.5, "loss": "ipo", "tracking_size": 6},
                         max_steps=4, resume_from_checkpoint="true")
    with pytest.raises(TrainingDataError) as err:
        train_dpo(changed)
    message = str(err.value)
    for part in ("beta: 0.1 -> 0.5", 'loss: "dpo" -> "ipo"', "tracking_size: 4 -> 6", "--allow_run_changes"):
        assert part in message
    assert "max_steps" not in message  # when to stop may change
    assert _files(out) == before

    capsys.readouterr()  # the command line: one line, exit code 2
    argv = ["dpo", "--model_name_or_path", str(tiny_model_dir), "--task", "rankacc_demo", "--output_dir", str(out),
            "--resume_from_checkpoint", "true", "--data_files", str(tmp_path / "other.jsonl"), "--use_cpu", "true"]
    (tmp_path / "other.jsonl").write_text("")
    assert cli.main(argv) == 2
    err_line = capsys.readouterr().err.strip()
    assert len(err_line.splitlines()) == 1 and "data_files: null ->" in err_line

    allowed = dpo_config(tiny_model_dir, out, own={"beta": 0.5, "allow_run_changes": True}, max_steps=4,
                         resume_from_checkpoint="true")
    assert train_dpo(allowed).global_step == 4
    now = json.loads((out / "training_config.json").read_text())
    assert now["dpo"] == recorded["dpo"] and now["run_id"] == recorded["run_id"]  # what the run started with
    (resume,) = now["resumes"]
    assert resume["changed"] == {"beta": [0.1, 0.5]} and resume["allowed_by"] == "--allow_run_changes"
    assert resume["other_changes"]["max_steps"] == [2, 4] and resume["from_checkpoint"].endswith("checkpoint-2")


def test_an_sft_resume_with_other_data_or_learning_rate_is_refused(tiny_model_dir, tmp_path):
    out = tmp_path / "sft"
    args = dict(model_name_or_path=str(tiny_model_dir), task="rankacc_demo")
    train_sft(SFTConfig(**args, **targs(out)))
    for change, shown in (({"learning_rate": 5e-4}, "learning_rate: 0.001 -> 0.0005"),
                          ({"train_sample_size": 8}, "train_sample_size: 0 -> 8"),
                          ({"sft_all_turns": True}, "sft_all_turns: false -> true")):
        config = SFTConfig(**args, **targs(out, max_steps=4, resume_from_checkpoint="true", **change))
        with pytest.raises(TrainingDataError, match=shown.replace("(", r"\(")):
            train_sft(config)
    resumed = train_sft(SFTConfig(**args, **targs(out, max_steps=4, logging_steps=2, resume_from_checkpoint="true")))
    assert resumed.global_step == 4
    (resume,) = json.loads((out / "training_config.json").read_text())["resumes"]
    assert resume["changed"] == {} and resume["other_changes"]["logging_steps"] == [1, 2]
