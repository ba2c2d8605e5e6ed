"""The package's errors: one base class, one subclass per kind of bad input.

Every error a user can fix by changing an input (a data row, a task option, an
lm-eval output folder, a training option) is a :class:`RankAccError`; its
message is one line naming the file, task, row or option. The command line
(:mod:`lm_eval_rankacc.cli`) prints it and exits with its ``exit_code`` (2, or
1 for a training run stopped by a non-finite loss), in one place. Pure: no
imports beyond the standard library.
"""

from __future__ import annotations

from typing import Any


class RankAccError(ValueError):
    """Bad input a user can fix; the message is one line. Exit code 2."""

    exit_code = 2


class RowError(RankAccError):
    """A source row that cannot be converted; names the row and the field."""

    def __init__(self, row: Any, field: str, message: str):
        self.row, self.field, self.message = row, field, message
        super().__init__(f"row {row}: field '{field}': {message}")


class TaskDataError(RankAccError):
    """Bad task input (a malformed row, a bad option, missing files); names the task."""


class RunError(RankAccError):
    """Unusable lm-eval output (missing, malformed, not a rankacc task, runs
    over different documents); the message is one line naming the file."""


class TrainingDataError(RankAccError):
    """Unusable training options or data; the message names the task or option."""


class NonFiniteLossError(RankAccError, RuntimeError):
    """A NaN or infinite loss or gradient: training stops before the weights change. Exit code 1."""

    exit_code = 1


class UsageError(RankAccError):
    """A command-line option a user can fix (e.g. an output file with the wrong suffix)."""
