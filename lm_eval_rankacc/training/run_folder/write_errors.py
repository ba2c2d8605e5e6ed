"""A run that cannot write its outputs (a full disk, a folder made read-only
while it trains): one line naming the path, not a traceback.

:func:`output_failures` wraps the training loop: an ``OSError`` (``ENOSPC``
"No space left on device", ``EROFS``, ``EACCES``, a quota), safetensors'
``SafetensorError`` and torch's "PytorchStreamWriter failed" (how
``save_file`` and ``torch.save`` report the same failures) become an
:class:`OutputWriteError` naming the file when the error says which, else
the checkpoint folder being saved. Exit code 1: the run stopped; the newest
complete checkpoint (:mod:`.checkpoints`) is what ``--resume_from_checkpoint
true`` continues from once there is room again.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lm_eval_rankacc.core.checkpoint_names import CHECKPOINT_PREFIX
from lm_eval_rankacc.core.errors import RankAccError

#: What torch.save and safetensors say when a write fails.
_WRITE_FAILED = re.compile(r"PytorchStreamWriter failed|file write failed|IoError|Error while serializing")
_OS_CODE = re.compile(r"code: (\d+)")


class OutputWriteError(RankAccError):
    """The run could not write a file of its output folder; exit code 1."""

    exit_code = 1


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.errno is not None:
        return err.strerror or errno.errorcode.get(err.errno, str(err))
    code = _OS_CODE.search(str(err))
    if code:
        return os.strerror(int(code.group(1)))
    return str(err).splitlines()[0][:200] if str(err) else type(err).__name__


#: The errno values of a write that failed for want of room or permission.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG, errno.EIO})


def is_write_failure(err: BaseException) -> bool:
    """Whether ``err`` is a failed write (see the module docstring)."""
    if isinstance(err, OSError):
        return err.errno in WRITE_ERRNOS
    name = type(err).__name__
    return (name == "SafetensorError" or isinstance(err, RuntimeError)) and bool(_WRITE_FAILED.search(str(err)))


def describe(err: BaseException, output_dir: str | Path, step: int) -> str:
    """One line: what could not be written, where, and how to go on."""
    path = getattr(err, "filename", None) or Path(output_dir) / f"{CHECKPOINT_PREFIX}{step}"
    return (f"cannot write {path} ({_reason(err)}) at training step {step}: the run stopped; free space or "
            f"make {output_dir} writable, then continue with --resume_from_checkpoint true")


@contextmanager
def output_failures(trainer: Any) -> Iterator[None]:
    """Turn a failed write inside the block (the Trainer's loop, its saves and
    callbacks) into an :class:`OutputWriteError`; anything else passes."""
    try:
        yield
    except Exception as err:  # noqa: BLE001 - filtered right below
        if not is_write_failure(err):
            raise
        raise OutputWriteError(describe(err, trainer.args.output_dir, trainer.state.global_step)) from None
