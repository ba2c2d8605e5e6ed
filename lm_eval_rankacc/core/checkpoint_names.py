"""The training step in a ``transformers.Trainer`` checkpoint's name (its
``checkpoint-<step>`` folders). Pure: no I/O. The one rule, read by the
checkpoint finder of ``rankacc dpo``, by ``rankacc winrate`` (the policy's
step) and by Figure 4 (a win rate's step)."""

from __future__ import annotations

import re
from pathlib import PurePath

CHECKPOINT_PREFIX = "checkpoint-"
# a whole path component ``checkpoint-<step>``: after a start, a path separator or
# the "=" of lm-eval's ``pretrained=...``; before an end, a separator or a ","
_STEP = re.compile(rf"(?:^|(?<=[\\/=])){re.escape(CHECKPOINT_PREFIX)}(\d+)(?=$|[\\/,])")


def checkpoint_step(name: str | PurePath | None) -> int | None:
    """The step of the last ``checkpoint-<step>`` component of a folder name,
    a path or an lm-eval ``model_args`` string; None when there is none."""
    found = _STEP.findall(str(name or ""))
    return int(found[-1]) if found else None
