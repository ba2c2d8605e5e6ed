"""Issue 20, items 1 and 2 under ``torchrun``: when the main process refuses
the run (its folder locked by another run, a resume that changes the run),
every process stops with the same one line and exit code 2, before any model
is loaded (training/run_folder/agree.py).

- :func:`agree` and :func:`decide` with a stand-in for ``torch.distributed``
  (each process's outcome given by hand);
- ``torchrun --standalone --nproc_per_node 2 -m lm_eval_rankacc dpo`` on the
  CPU (gloo) and a tiny model, each rank's output in its own file
  (``--log-dir``/``--redirects``): into a folder another process holds, and
  resuming a finished run with another ``--beta``. Each process prints the
  same line; torchrun reports the first to end (exit code 2) and stops the
  others with SIGTERM, which may catch one after its line, before its exit.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lm_eval_rankacc.core.errors import TrainingDataError
from lm_eval_rankacc.training.run_folder import agree as agree_module
from lm_eval_rankacc.training.run_folder.agree import agree, decide
from lm_eval_rankacc.training.run_folder.start import RunStart
from tests.helpers.commands import command
from tests.training.test_run_isolation import holder  # noqa: F401 - a fixture: another process holds the lock

REFUSED = "--output_dir out is in use by another rankacc run (pid 7 holds out/.rankacc.lock)"


class FakeDist:
    """``torch.distributed`` of process ``rank`` among processes whose outcomes are ``others`` (by rank)."""

    def __init__(self, rank: int, others: dict[int, tuple]):
        self.rank, self.others, self.sent = rank, others, []

    def get_world_size(self) -> int:
        return len(self.others) + 1

    def get_rank(self) -> int:
        return self.rank

    def all_gather_object(self, out: list, obj) -> None:
        self.sent.append(obj)
        for r in range(len(out)):
            out[r] = obj if r == self.rank else self.others[r]


class Lock:
    released = 0

    def release(self) -> None:
        Lock.released += 1


def _fake(monkeypatch, rank: int, others: dict[int, tuple]) -> FakeDist:
    dist = FakeDist(rank, others)
    monkeypatch.setattr(agree_module, "_distributed", lambda: dist)
    return dist


def test_one_process_returns_or_raises_its_own(monkeypatch):
    monkeypatch.setattr(agree_module, "_distributed", lambda: None)
    start = RunStart("abc", None)
    assert agree(start, None) is start
    err = TrainingDataError("refused")
    with pytest.raises(TrainingDataError) as raised:
        agree(None, err)
    assert raised.value is err


def test_every_process_raises_the_main_process_refusal(monkeypatch):
    # process 1 started fine; process 0 (the main one, holding nothing) refused
    dist = _fake(monkeypatch, 1, {0: ((True, "TrainingDataError", REFUSED, 2), None)})
    Lock.released = 0
    with pytest.raises(TrainingDataError) as raised:
        agree(RunStart("mine", None, Lock()), None)
    assert str(raised.value) == REFUSED and raised.value.exit_code == 2 and Lock.released == 1
    assert dist.sent == [(None, "mine")]
    # and the main process itself raises the same line
    _fake(monkeypatch, 0, {1: (None, "theirs")})
    with pytest.raises(TrainingDataError, match=re.escape(REFUSED)):
        agree(None, TrainingDataError(REFUSED))


def test_all_started_continue_with_the_main_process_run_id(monkeypatch):
    _fake(monkeypatch, 1, {0: (None, "main-id")})
    start = agree(RunStart("own-id", "checkpoint-2"), None)
    assert (start.run_id, start.resume) == ("main-id", "checkpoint-2")


def test_an_unexpected_error_keeps_its_traceback_where_it_happened(monkeypatch):
    crash = KeyError("boom")
    _fake(monkeypatch, 1, {0: (None, "main-id")})
    with pytest.raises(KeyError) as raised:  # its own error, unchanged
        agree(None, crash)
    assert raised.value is crash
    _fake(monkeypatch, 0, {1: ((False, "KeyError", "'boom'", 1), None)})
    with pytest.raises(RuntimeError, match=r"^process 1 of this run failed while starting it \(KeyError: 'boom'\)"):
        agree(RunStart("main-id", None), None)


def test_decide_prefers_the_first_refusal_by_rank():
    ours = lambda message: (True, "TrainingDataError", message, 2)  # noqa: E731
    assert decide([None, None, None]) is None
    error = decide([None, (False, "OSError", "disk", 1), ours("second"), ours("third")])
    assert isinstance(error, TrainingDataError) and str(error) == "second"


# ------------------------------------------------------------------ under torchrun
DPO = ["-m", "lm_eval_rankacc", "dpo", "--task", "rankacc_demo", "--max_steps", "2", "--eval_steps", "2",
       "--warmup_steps", "0", "--per_device_train_batch_size", "2", "--per_device_eval_batch_size", "2",
       "--tracking_size", "4", "--use_cpu", "--disable_tqdm", "true", "--no_plots"]


def _torchrun(args: list[str], env: dict, work: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    """torchrun with 2 processes; (its result, each rank's stderr)."""
    logs = work / "logs"
    proc = subprocess.run([command("torchrun"), "--standalone", "--nproc_per_node", "2", "--log-dir", str(logs),
                           "--redirects", "3", *args], check=False, env=env, cwd=work, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    ranks = [sorted(logs.rglob(f"attempt_0/{rank}/stderr.log")) for rank in (0, 1)]
    assert all(len(r) == 1 for r in ranks), (ranks, proc.stderr[-3000:])
    return proc, [r[0].read_text(errors="replace") for r in ranks]


def _same_line_on_every_rank(proc, ranks: list[str], needle: str) -> str:
    lines = [[line for line in text.splitlines() if line.startswith("rankacc dpo: error:")] for text in ranks]
    assert all(len(found) == 1 for found in lines), (lines, ranks)
    assert lines[0] == lines[1] and needle in lines[0][0], lines
    for text in ranks:  # stopped at the start: no traceback, no model loaded, no collective left hanging
        assert "Traceback" not in text and "Connection closed by peer" not in text, text[-3000:]
    # torchrun's report: the first process to end exits 2 (its root cause); torchrun then sends SIGTERM to
    # the others, which may still be in the interpreter's shutdown after printing the line (-15)
    root = re.search(r"Root Cause.*?exitcode\s*:\s*(-?\d+)", proc.stderr, re.DOTALL)
    codes = set(re.findall(r"exitcode\s*:\s*(-?\d+)", proc.stderr))
    assert proc.returncode != 0 and root and root.group(1) == "2" and codes <= {"2", "-15"}, proc.stderr[-3000:]
    return lines[0][0]


@pytest.mark.slow
def test_torchrun_every_rank_refuses_a_locked_folder(holder, tiny_model_dir, offline_env, tmp_path):  # noqa: F811
    lock_holder, out = holder
    proc, ranks = _torchrun([*DPO, "--model_name_or_path", str(tiny_model_dir), "--output_dir", str(out)],
                            offline_env, tmp_path)
    line = _same_line_on_every_rank(proc, ranks, f"is in use by another rankacc run (pid {lock_holder.pid} holds")
    assert "choose another --output_dir" in line
    assert sorted(p.name for p in out.iterdir()) == [".rankacc.lock"]  # nothing written


@pytest.mark.slow
def test_torchrun_every_rank_refuses_a_resume_that_changes_the_run(tiny_model_dir, offline_env, tmp_path):
    out = tmp_path / "run"
    base = [*DPO, "--model_name_or_path", str(tiny_model_dir), "--output_dir", str(out)]
    first = subprocess.run([sys.executable, *base], check=False, env=offline_env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert first.returncode == 0, first.stderr[-3000:]
    config = (out / "training_config.json").read_text()
    proc, ranks = _torchrun([*base, "--resume_from_checkpoint", "true", "--max_steps", "4", "--beta", "0.5"],
                            offline_env, tmp_path)
    _same_line_on_every_rank(proc, ranks, "this resume would change the run of")
    assert "beta: 0.1 -> 0.5" in ranks[1]  # the main process's comparison, on the other rank too
    assert (out / "training_config.json").read_text() == config and json.loads(config)["dpo"]["beta"] == 0.1
