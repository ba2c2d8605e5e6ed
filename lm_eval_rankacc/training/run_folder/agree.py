"""The processes of a distributed run (``torchrun``) agree on its start: a
refusal on one stops every one with the same line.

Under ``torchrun`` only the main process takes the folder's lock and
compares a resume with the run it continues (:mod:`.start`); alone, its
refusal (exit code 2) would leave the other processes loading the model and
then failing, with a traceback, at their first collective operation with a
process that is gone. So every process ends :func:`.start.start_run` with
one collective call (:func:`agree`), before any data or model is loaded and
before any other collective: each sends its outcome (None, or its error)
and all receive all outcomes. Then:

- nobody failed: every process continues with the main process's
  ``run_id`` (one id for the run, whichever process writes it);
- a process refused with one of the package's errors
  (:class:`~lm_eval_rankacc.core.errors.RankAccError`): every process
  raises the same error message (the first such process's, by rank), so
  each prints the same one line and exits with its code (2);
- a process with an unexpected exception raises its own (its traceback);
  where no process refused, the others raise a ``RuntimeError`` naming it.

Outside a distributed run (one process) it returns or raises at once, no
collective call.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from lm_eval_rankacc.core.errors import RankAccError, TrainingDataError

if TYPE_CHECKING:
    from lm_eval_rankacc.training.run_folder.start import RunStart


def _outcome(error: BaseException | None) -> tuple[bool, str, str, int] | None:
    """What one process sends about its error: (ours, type name, message, exit code), or None."""
    if error is None:
        return None
    ours = isinstance(error, RankAccError)
    return ours, type(error).__name__, str(error), getattr(error, "exit_code", 1)


def _distributed() -> Any:
    """``torch.distributed`` when a process group is running with more than one process, else None."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch is a dependency
        return None
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    return dist


def decide(outcomes: list[Any]) -> BaseException | None:
    """The error a process raises given every process's outcome
    (:func:`_outcome`, indexed by rank), or None when all started; pure (see
    the module docstring). A process's own unexpected error is left to the caller."""
    failed = [(r, o) for r, o in enumerate(outcomes) if o is not None]
    ours = [(r, o) for r, o in failed if o[0]]
    if ours:
        _, (_, _, message, code) = ours[0]
        error = TrainingDataError(message)
        error.exit_code = code
        return error
    if failed:
        r, (_, name, message, _) = failed[0]
        return RuntimeError(f"process {r} of this run failed while starting it ({name}: {message}); see its traceback")
    return None


def agree(start: RunStart | None, error: BaseException | None) -> RunStart:
    """``start`` (this process's decision, None when ``error``) once every
    process of the run has decided, with the main process's ``run_id``; or
    the error every process raises (see the module docstring)."""
    dist = _distributed()
    if dist is None:
        if error is not None:
            raise error
        return start
    outcomes: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(outcomes, (_outcome(error), start.run_id if start is not None else None))
    raised = decide([o for o, _ in outcomes])
    if raised is None:
        return dataclasses.replace(start, run_id=outcomes[0][1])
    if start is not None:
        start.release()
    if error is not None and not isinstance(error, RankAccError):
        raise error  # this process's own unexpected error, with its traceback
    raise raised from None
