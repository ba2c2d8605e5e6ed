"""The installed console scripts the end-to-end tests run (``lm_eval``,
``accelerate``, ``torchrun``, ``rankacc``): the one beside this Python, else
the one on ``PATH``; the test skips with the reason when there is none."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest


def command(name: str) -> str:
    """The path of console script ``name``; skips the calling test when it is not installed."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.is_file() else shutil.which(name)
    if not found:
        pytest.skip(f"the {name} command is not installed")
    return found
