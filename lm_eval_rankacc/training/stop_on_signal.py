"""How a run stops on a signal.

- During training, :class:`StopOnSignal`: SIGTERM (and SIGINT, once) asks the
  trainer to save a checkpoint at the end of the current optimisation step
  and stop, on every process; the run can then be continued with
  ``--resume_from_checkpoint``. A standard ``TrainerCallback``: it works with
  any ``transformers.Trainer``.
- Before training (loading, the reference pass), :class:`BeforeTraining`:
  there is nothing to save, so SIGINT or SIGTERM stops the run at once with
  :class:`Interrupted`, one line saying what is left and what to do (the
  command line exits 130 or 143, no traceback).
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path

from transformers import TrainerCallback

from lm_eval_rankacc.core.errors import RankAccError

log = logging.getLogger("lm_eval_rankacc.training")


class StopOnSignal(TrainerCallback):
    """Save and stop at the next step end after SIGTERM (or a first SIGINT)."""

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)):
        self.signals = signals
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def _handler(self, signum, frame):  # noqa: ANN001
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        self.received = signum
        log.warning("received %s: saving a checkpoint at the end of this step, then stopping",
                    signal.Signals(signum).name)

    def on_train_begin(self, args, state, control, **kwargs):
        self.received = None
        for sig in self.signals:
            try:
                self._previous[sig] = signal.signal(sig, self._handler)
            except ValueError:  # not the main thread: signals cannot be caught here
                pass

    def on_train_end(self, args, state, control, **kwargs):
        for sig, previous in self._previous.items():
            try:
                signal.signal(sig, previous)
            except (ValueError, TypeError):
                pass
        self._previous.clear()

    def _stop_everywhere(self) -> bool:
        """True on every process when any process received a signal."""
        flag = self.received is not None
        try:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
                import torch

                device = "cuda" if torch.cuda.is_available() and dist.get_backend() == "nccl" else "cpu"
                t = torch.tensor([1 if flag else 0], device=device)
                dist.all_reduce(t, op=dist.ReduceOp.MAX)
                flag = bool(t.item())
        except Exception:  # pragma: no cover - best effort outside torchrun
            pass
        return flag

    def on_step_end(self, args, state, control, **kwargs):
        if self._stop_everywhere():
            if self.received is None:
                self.received = signal.SIGTERM
            control.should_save = args.save_strategy != "no"
            control.should_training_stop = True
        return control


class Interrupted(RankAccError):
    """A run stopped by a signal before training began; exit code 128 + the signal."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.exit_code = 128 + signum


class BeforeTraining:
    """``with BeforeTraining(output_dir) as stage:`` a SIGINT or SIGTERM inside
    the block raises :class:`Interrupted` naming ``stage.phase`` (set it as
    the run goes on); the previous handlers are given back on leaving."""

    def __init__(self, output_dir: str | Path, phase: str = "loading the data and the model"):
        self.output_dir, self.phase = Path(output_dir), phase
        self._previous: dict[int, object] = {}

    def _handler(self, signum, frame):  # noqa: ANN001
        raise Interrupted(signum, (
            f"interrupted by {signal.Signals(signum).name} during {self.phase}, before any training step: nothing "
            f"was trained or saved and --resume_from_checkpoint has nothing to continue; run the same command "
            f"again (with --fresh_start if {self.output_dir} holds files of an earlier rankacc run)"))

    def __enter__(self) -> BeforeTraining:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handler)
            except ValueError:  # not the main thread: signals cannot be caught here
                pass
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
