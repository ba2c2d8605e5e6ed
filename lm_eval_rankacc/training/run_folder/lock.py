"""One run at a time in a run folder: an exclusive OS file lock on
``OUTPUT_DIR/.rankacc.lock``, held from the start of a run to its end.

The lock is ``flock(LOCK_EX | LOCK_NB)`` on the lock file (POSIX): the kernel
drops it when the process ends, however it ends (``kill -9`` included), so
no stale lock is ever left and nothing has to clean up. The holder writes its
pid into the file, and a second run into the same folder (``--fresh_start``
included: it would delete the first run's files) stops before it touches
anything, with one line naming that pid (exit code 2). Taking the lock also
proves that the folder can be written, before any data or model is loaded:
a folder that cannot be created or written is the same kind of one-line
error. The lock file itself is never deleted (deleting a lock file another
process may be opening breaks the lock); it is not a file of the run
(:data:`.start.RUN_FILES`), so it keeps no folder from being reused.

Where ``fcntl`` is missing (Windows), runs are not locked, with a warning.
Under ``torchrun`` only the main process takes the lock; a refusal stops every
process with the same line (:mod:`.agree`).
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

from lm_eval_rankacc.core.errors import TrainingDataError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

log = logging.getLogger("lm_eval_rankacc.training")

LOCK_FILE = ".rankacc.lock"


def _reason(err: OSError) -> str:
    return err.strerror or errno.errorcode.get(err.errno or 0, "") or str(err)


def holder(path: str | Path) -> str:
    """The pid written in a lock file ("unknown pid" when unreadable)."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    return f"pid {text}" if text.isdigit() else "unknown pid"


class RunLock:
    """The lock of one run folder (:func:`lock_run_folder`); :meth:`release` frees it."""

    def __init__(self, path: Path, fd: int | None):
        self.path, self.fd = path, fd

    def release(self) -> None:
        """Drop the lock (closing the file drops it); safe to call twice."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_run_folder(out: str | Path) -> RunLock:
    """Create ``out`` if needed and lock it for this process; a folder that
    cannot be written, or that another living process holds, is a
    :class:`~lm_eval_rankacc.core.errors.TrainingDataError` (one line)."""
    out = Path(out)
    path = out / LOCK_FILE
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise TrainingDataError(f"--output_dir {out} cannot be written ({_reason(err)}: "
                                f"{err.filename or path})") from None
    if fcntl is None:  # pragma: no cover - not POSIX
        log.warning("no fcntl on this system: %s is not locked against a second run", out)
        return RunLock(path, fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        os.close(fd)
        if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise TrainingDataError(f"--output_dir {out}: cannot lock {path} ({_reason(err)})") from None
        raise TrainingDataError(
            f"--output_dir {out} is in use by another rankacc run ({holder(path)} holds {path}): wait for it "
            f"to end or choose another --output_dir (--fresh_start too is refused while it runs)") from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    except OSError as err:
        os.close(fd)
        raise TrainingDataError(f"--output_dir {out} cannot be written ({_reason(err)}: {path})") from None
    return RunLock(path, fd)
