"""Marks in a run folder that name checkpoints, kept by two ``TrainerCallback`` s
(standard events only, so they work with any ``transformers.Trainer``):

- :class:`MarkRunCheckpoints`: each checkpoint folder names the run that
  wrote it (:data:`.files.RUN_MARKER`, for ``--fresh_start``: :mod:`.start`);
- :class:`MarkBestCheckpoint`: after every save, ``best_checkpoint.json`` and
  the link ``best_checkpoint`` name the checkpoint with the best
  ``metric_for_best_model`` (the lowest validation loss) that exists
  (:func:`mark_best`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from transformers import TrainerCallback

from lm_eval_rankacc.core.checkpoint_names import CHECKPOINT_PREFIX
from lm_eval_rankacc.training.run_folder.files import RUN_MARKER, run_id_of, write_json

log = logging.getLogger("lm_eval_rankacc.training")

BEST_FILE = "best_checkpoint.json"
#: Not "checkpoint-*": the trainer rotates (deletes) folders matching that.
BEST_LINK = "best_checkpoint"


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
    write_json(out / BEST_FILE, info)
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


class MarkRunCheckpoints(TrainerCallback):
    """Writes the run's id (:data:`.files.RUN_MARKER`) into each checkpoint
    folder the run saves, so that ``--fresh_start`` tells the run's own
    checkpoints from anyone else's (:mod:`.start`). It writes it when a save
    is due, before the Trainer fills the folder (so a save killed half-way
    leaves a marked folder), and after the save if it was missed (a save
    decided later, e.g. ``--save_strategy best``). Place it after the
    callbacks that ask for a save (:class:`StopOnSignal`)."""

    def __init__(self, run_id: str):
        self.run_id = run_id

    def _mark(self, args, state) -> None:  # noqa: ANN001
        if not state.is_world_process_zero:
            return
        folder = Path(args.output_dir) / f"{CHECKPOINT_PREFIX}{state.global_step}"
        if run_id_of(folder, RUN_MARKER) != self.run_id:
            folder.mkdir(parents=True, exist_ok=True)
            write_json(folder / RUN_MARKER, {"run_id": self.run_id})

    def on_step_end(self, args, state, control, **kwargs):
        if control.should_save:
            self._mark(args, state)

    def on_epoch_end(self, args, state, control, **kwargs):
        if control.should_save:
            self._mark(args, state)

    def on_save(self, args, state, control, **kwargs):
        self._mark(args, state)


class MarkBestCheckpoint(TrainerCallback):
    """Keeps ``best_checkpoint.json`` and ``best_checkpoint`` up to date (:func:`mark_best`)."""

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            mark_best(args.output_dir, state)

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            mark_best(args.output_dir, state)
