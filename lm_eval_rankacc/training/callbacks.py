"""Trainer callbacks shared by ``rankacc sft`` and ``rankacc dpo``.

- :class:`StopOnSignal`: SIGTERM (and SIGINT, once) asks the trainer to save
  a checkpoint at the end of the current optimisation step and stop; the run
  can then be continued with ``--resume_from_checkpoint``.
- :class:`MarkBestCheckpoint`: after every save, ``best_checkpoint.json`` and
  the link ``best_checkpoint`` name the checkpoint with the best
  ``metric_for_best_model`` (the lowest validation loss) that exists.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path

from transformers import TrainerCallback

log = logging.getLogger("lm_eval_rankacc.training")

BEST_FILE = "best_checkpoint.json"
#: Not "checkpoint-*": the trainer rotates (deletes) folders matching that.
BEST_LINK = "best_checkpoint"


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


def mark_best(output_dir: str | Path, state) -> Path | None:  # noqa: ANN001
    """Write ``best_checkpoint.json`` and point ``best_checkpoint`` at the
    trainer's best checkpoint (``state.best_model_checkpoint``)."""
    best = getattr(state, "best_model_checkpoint", None)
    if not best or not Path(best).is_dir():
        return None
    out = Path(output_dir)
    info = {
        "checkpoint": Path(best).name, "path": str(Path(best).resolve()),
        "step": getattr(state, "best_global_step", None), "metric": getattr(state, "best_metric", None),
    }
    tmp = out / (BEST_FILE + ".tmp")
    tmp.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, out / BEST_FILE)
    link = out / BEST_LINK
    try:
        if link.is_symlink() or link.exists():
            if link.is_symlink() and os.readlink(link) == Path(best).name:
                return Path(best)
            link.unlink()
        link.symlink_to(Path(best).name, target_is_directory=True)
    except OSError as err:  # e.g. a file system without links: the JSON file still names it
        log.warning("could not link %s: %s", link, err)
    return Path(best)


class MarkBestCheckpoint(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            mark_best(args.output_dir, state)

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            mark_best(args.output_dir, state)
