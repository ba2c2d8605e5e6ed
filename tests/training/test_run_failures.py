"""Issue 20, item 3: how a run ends when it is interrupted or cannot write.
Ctrl-C or SIGTERM before training (the reference pass) is one line naming
what to do (``--fresh_start``), never a traceback; a folder that cannot be
written is found before any data or model is loaded; a full disk or a
read-only folder during a save is one line naming the path; figures that
cannot be written at the end make the run exit non-zero.

The tests run as root, whom ``chmod`` does not stop: a read-only folder is
simulated by a monkeypatched ``os.open`` / ``torch.save`` raising ``EACCES``
or ``EROFS``, and a full disk by writes raising ``ENOSPC`` (the real
``chmod`` variant runs where the tests do not run as root)."""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path

import pytest

from lm_eval_rankacc import cli
from lm_eval_rankacc.core.errors import TrainingDataError
from lm_eval_rankacc.training import DPOConfig, train_dpo

FULL = OSError(errno.ENOSPC, "No space left on device")


def argv(kind: str, model, out: Path, *extra: str) -> list[str]:
    return [kind, "--model_name_or_path", str(model), "--task", "rankacc_demo", "--output_dir", str(out),
            "--max_steps", "2", "--eval_steps", "2", "--per_device_train_batch_size", "4",
            "--per_device_eval_batch_size", "4", "--warmup_steps", "0", "--use_cpu", "true",
            "--disable_tqdm", "true", *extra]


def one_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("rankacc ")]
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_the_reference_pass_is_one_line_naming_fresh_start(tiny_model_dir, tmp_path, monkeypatch,
                                                                         capsys, sig, code):
    from lm_eval_rankacc.training.trainer import PreferenceTrainer

    def interrupted(self, datasets):
        os.kill(os.getpid(), sig)
        time.sleep(30)  # the handler interrupts the sleep
        raise AssertionError("the signal did not stop the reference pass")

    monkeypatch.setattr(PreferenceTrainer, "compute_reference_logps", interrupted)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    capsys.readouterr()
    assert cli.main(argv("dpo", tiny_model_dir, tmp_path / "run", "--tracking_size", "4")) == code
    line = one_line(capsys)
    assert "reference pass" in line and "--fresh_start" in line and signal.Signals(sig).name in line
    assert {s: signal.getsignal(s) for s in before} == before  # the handlers are given back
    assert not list((tmp_path / "run").glob("checkpoint-*"))
    monkeypatch.undo()
    resumed = argv("dpo", tiny_model_dir, tmp_path / "run", "--resume_from_checkpoint", "true")
    assert cli.main(resumed) == 2  # nothing to resume: the message says what to do
    line = one_line(capsys)
    assert "no complete checkpoint" in line and "without --resume_from_checkpoint" in line and "--fresh_start" in line


def test_a_read_only_output_dir_is_found_before_loading(tmp_path, monkeypatch):
    from lm_eval_rankacc.training.run_folder import lock

    real_open = os.open

    def read_only(path, flags, *args):
        if Path(path).name == lock.LOCK_FILE:
            raise PermissionError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(lock.os, "open", read_only)
    config = DPOConfig(model_name_or_path=str(tmp_path / "no-such-model"), task="rankacc_demo",
                       output_dir=str(tmp_path / "out"), use_cpu=True)
    with pytest.raises(TrainingDataError, match="cannot be written \\(Read-only file system"):
        train_dpo(config)  # the missing model is never reached


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a chmod 0555 folder: the monkeypatched test above")
def test_a_chmod_read_only_output_dir_is_found_before_loading(tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        config = DPOConfig(model_name_or_path=str(tmp_path / "no-such-model"), task="rankacc_demo",
                           output_dir=str(out), use_cpu=True)
        with pytest.raises(TrainingDataError, match="cannot be written"):
            train_dpo(config)
    finally:
        out.chmod(0o755)


def _fail_weights(error):
    def save_file(*args, **kwargs):
        raise error
    return save_file


@pytest.mark.parametrize("error", [FULL, "safetensors"])
def test_a_full_disk_during_a_save_is_one_line_naming_the_checkpoint(tiny_model_dir, tmp_path, monkeypatch, capsys,
                                                                    error):
    import transformers.modeling_utils as modeling_utils
    from safetensors import SafetensorError

    if error == "safetensors":  # what safetensors raises on a full disk
        error = SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: '
                                '"No space left on device" })')
    monkeypatch.setattr(modeling_utils, "safe_save_file", _fail_weights(error))
    out = tmp_path / "run"
    capsys.readouterr()
    assert cli.main(argv("sft", tiny_model_dir, out)) == 1
    line = one_line(capsys)
    assert f"cannot write {out / 'checkpoint-2'} (No space left on device)" in line
    assert "--resume_from_checkpoint true" in line


def test_a_read_only_folder_during_a_save_names_the_file(tiny_model_dir, tmp_path, monkeypatch, capsys):
    import torch

    real_save = torch.save

    def read_only(obj, f, *args, **kwargs):
        if str(f).endswith("optimizer.pt"):
            raise PermissionError(errno.EACCES, "Permission denied", str(f))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", read_only)
    out = tmp_path / "run"
    capsys.readouterr()
    assert cli.main(argv("sft", tiny_model_dir, out)) == 1
    assert f"cannot write {out / 'checkpoint-2' / 'optimizer.pt'} (Permission denied)" in one_line(capsys)


def test_figures_that_cannot_be_written_make_the_run_exit_non_zero(tiny_model_dir, tmp_path, monkeypatch, capsys):
    from lm_eval_rankacc.training import figures

    def full(fig, plt, path):
        plt.close(fig)
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(figures, "save", full)
    out = tmp_path / "run"
    capsys.readouterr()
    assert cli.main(argv("dpo", tiny_model_dir, out, "--tracking_size", "4")) == 1
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("rankacc ")]
    assert len(lines) == 1 and "outputs incomplete" in lines[0] and "No space left on device" in lines[0]
    assert "rankacc plot-training" in lines[0] and (out / "checkpoint-2" / "model.safetensors").is_file()
