"""The project's cache folder: ``$LM_EVAL_RANKACC_CACHE``, else ``~/.cache/lm_eval_rankacc``
(the demo model is kept there, and the samples cache in its ``samples/``)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "LM_EVAL_RANKACC_CACHE"


def default_cache_dir() -> Path:
    """``$LM_EVAL_RANKACC_CACHE`` if set, else ``~/.cache/lm_eval_rankacc``."""
    return Path(os.environ.get(CACHE_ENV) or "~/.cache/lm_eval_rankacc").expanduser()
