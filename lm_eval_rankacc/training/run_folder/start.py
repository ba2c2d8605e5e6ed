"""The output folder of a run: what a run of ours leaves in it, and when a run
may start there. Checked by :func:`start_run` before any model is loaded.

A run of ours writes the files of :data:`RUN_FILES` (``training_config.json``
records the run's ``run_id``) and the Trainer's ``checkpoint-<step>/``
folders, each marked with :data:`.files.RUN_MARKER` naming that ``run_id``
(written before the Trainer fills the folder, so a save killed half-way is
marked too: :class:`.marks.MarkRunCheckpoints`).

- One run at a time: a run holds an OS lock on its folder for its whole
  life (:mod:`.lock`); a second one, ``--fresh_start`` included, is refused.
- A run **resuming in its own folder** (``--resume_from_checkpoint true``, or
  a checkpoint of ``--output_dir``) continues it, if it keeps what defines
  the run (:mod:`.identity`).
- Any other run needs an ``--output_dir`` that holds no run of ours (none of
  :data:`RUN_FILES`) and no ``checkpoint-*`` folder: the Trainer's rotation
  (``--save_total_limit``) deletes the checkpoint folders it finds, and a new
  tracking log would replace the old one.
- ``--fresh_start`` first deletes what the earlier run of ours in the folder
  wrote (:data:`RUN_FILES` and the checkpoint folders marked with its
  ``run_id``); a ``checkpoint-*`` folder that run did not write stops the run
  and is never deleted.

Other files and folders of ``--output_dir`` are never touched.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lm_eval_rankacc.core.checkpoint_names import CHECKPOINT_PREFIX
from lm_eval_rankacc.core.errors import TrainingDataError
from lm_eval_rankacc.training.figures import FIGURE2, FIGURE3
from lm_eval_rankacc.training.reference import REFERENCE_CACHE
from lm_eval_rankacc.training.run_folder.agree import agree
from lm_eval_rankacc.training.run_folder.checkpoints import resume_point
from lm_eval_rankacc.training.run_folder.files import CONFIG_FILE, RUN_MARKER, read_config, run_id_of
from lm_eval_rankacc.training.run_folder.identity import describe, resume_changes
from lm_eval_rankacc.training.run_folder.lock import RunLock, lock_run_folder
from lm_eval_rankacc.training.run_folder.marks import BEST_FILE, BEST_LINK
from lm_eval_rankacc.training.tracking_log import SUMMARY_FILE, TRACKING_FILE

if TYPE_CHECKING:
    from lm_eval_rankacc.training.config import TrainingConfig

log = logging.getLogger("lm_eval_rankacc.training")

#: The files a run of ours writes at the top of its ``--output_dir`` (and
#: their ``.tmp`` twins, left by a kill during :func:`.files.write_atomic`).
RUN_FILES = (CONFIG_FILE, TRACKING_FILE, SUMMARY_FILE, REFERENCE_CACHE, BEST_FILE, BEST_LINK, FIGURE2, FIGURE3)


@dataclass(frozen=True)
class RunStart:
    """What :func:`start_run` decided: the run's id, the checkpoint it
    resumes from, the folder's lock (:mod:`.lock`; None off the main
    process), and for a resume in place the ``training_config.json`` it
    continues with what changed (:mod:`.identity`)."""

    run_id: str
    resume: str | None
    lock: RunLock | None = None
    recorded: dict | None = None
    resumed: dict | None = None

    def release(self) -> None:
        """Free the folder's lock (at the end of the run)."""
        if self.lock is not None:
            self.lock.release()


def run_files(out: Path) -> list[Path]:
    """The files of :data:`RUN_FILES` present in ``out`` (links included)."""
    names = [n for name in RUN_FILES for n in (name, name + ".tmp")]
    return [out / n for n in names if (out / n).is_symlink() or (out / n).is_file()]


def checkpoint_folders(out: Path) -> list[Path]:
    """Every ``checkpoint-*`` folder of ``out`` (the Trainer's rotation takes
    any such name with a number in it)."""
    if not out.is_dir():
        return []
    return sorted(p for p in out.iterdir() if p.name.startswith(CHECKPOINT_PREFIX) and p.is_dir())


def _listing(paths: list[Path], most: int = 6) -> str:
    names = [p.name for p in paths]
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def clear_earlier_run(out: Path) -> None:
    """``--fresh_start``: delete the earlier run of ours in ``out`` (its
    :data:`RUN_FILES` and the checkpoint folders marked with its ``run_id``);
    stop, deleting nothing, when a ``checkpoint-*`` folder is not its own."""
    files, folders = run_files(out), checkpoint_folders(out)
    run_id = run_id_of(out)
    foreign = [c for c in folders if c.is_symlink() or run_id is None or run_id_of(c, RUN_MARKER) != run_id]
    if foreign:
        raise TrainingDataError(
            f"--fresh_start: {out} holds checkpoint folders its rankacc run did not write ({_listing(foreign)}); "
            f"they are never deleted: move them away or choose another --output_dir")
    for path in files:
        path.unlink()
    for folder in folders:
        shutil.rmtree(folder)
    if files or folders:
        log.warning("--fresh_start: deleted the earlier run in %s: %s", out, _listing(files + folders, most=20))


def check_output_dir(out: Path, fresh_start: bool) -> None:
    """A run that does not resume in ``out`` starts only in a folder without
    a run (see the module docstring); ``fresh_start`` clears the earlier run."""
    if out.exists() and not out.is_dir():
        raise TrainingDataError(f"--output_dir {out} is a file, not a folder")
    if fresh_start:
        clear_earlier_run(out)
        return
    found = run_files(out) + checkpoint_folders(out)
    if found:
        raise TrainingDataError(
            f"--output_dir {out} holds another run ({_listing(found)}): continue it with "
            f"--resume_from_checkpoint true, start afresh there with --fresh_start (deletes only the files and "
            f"checkpoints a rankacc run wrote), or choose another --output_dir")


def check_resume(config: TrainingConfig, out: Path, resume: str | None) -> tuple[dict, dict] | None:
    """(the recorded ``training_config.json``, what this resume changes) for a
    resume in place; a change of what defines the run stops it, listing each
    change, unless ``--allow_run_changes`` (:mod:`.identity`)."""
    recorded = read_config(out)
    if not recorded:
        return None
    options = {**config.trainer_options(), **config.own_options()}
    changed, others = resume_changes(config.command, recorded, options)
    if changed and not config.allow_run_changes:
        raise TrainingDataError(
            f"--resume_from_checkpoint: this resume would change the run of {out}: {describe(changed)}; resume "
            f"with the options it started with, start a new run (another --output_dir, or --fresh_start), or "
            f"pass --allow_run_changes to continue with the change recorded in {CONFIG_FILE}")
    if changed:
        log.warning("--allow_run_changes: the resumed run changes %s", describe(changed))
    entry = {"from_checkpoint": resume, "changed": changed, "other_changes": others}
    if changed:
        entry["allowed_by"] = "--allow_run_changes"
    return recorded, entry


def start_run(config: TrainingConfig) -> RunStart:
    """Before any data or model is loaded: the folder's lock (main process;
    it also proves the folder can be written, :mod:`.lock`), the checkpoint
    to resume from (checked, :func:`.checkpoints.resume_point`), a resume in
    place compared with the run it continues (:func:`check_resume`), the rule
    on ``--output_dir`` (main process), and the run's id: the earlier one
    when the run resumes in place, else a new one (``training_config.json``
    records it before training starts: :func:`.result.write_run_config`).
    Under ``torchrun`` every process takes the same decision: a refusal on
    one stops all with the same line (:func:`.agree.agree`)."""
    try:
        start, error = _start_here(config), None
    except Exception as err:  # shared with the other processes first (.agree)
        start, error = None, err
    return agree(start, error)


def _start_here(config: TrainingConfig) -> RunStart:
    """:func:`start_run`'s decision in this process alone."""
    out = Path(config.output_dir)
    main = config.process_index == 0
    lock = lock_run_folder(out) if main else None
    try:
        in_place = config.resumes_in_place()
        earlier = run_id_of(out)
        resume = resume_point(config.resume_checkpoint(), out, config.full_checkpoint_state(),
                              restart_allowed=bool(run_files(out)))
        resume = None if resume is None else str(resume)
        found = check_resume(config, out, resume) if main and in_place else None
        if main and not in_place:
            check_output_dir(out, config.fresh_start)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    run_id = (earlier if in_place else None) or uuid.uuid4().hex
    recorded, resumed = found if found else (None, None)
    return RunStart(run_id, resume, lock, recorded, resumed)
