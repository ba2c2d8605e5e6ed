"""The options several sub-commands share, their defaults and help taken from
the constants they name (``core.stats``, ``analysis``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from lm_eval_rankacc.core.theory import DEFAULT_BETAS
from lm_eval_rankacc.core.stats import LEVEL, N_BOOTSTRAP

#: ``--convention``'s help, shared by the analyses and the leaderboard.
CONVENTION_HELP = ("the rules the numbers follow: 'paper' (default), the paper's definitions; 'released', the "
                   "rules of the authors' released code, recomputed from the logged samples (docs/conventions.md)")
#: ``--tasks``' help, shared by the analyses and the leaderboard.
TASKS_HELP = "comma-separated task name globs (default: all)"
#: The interval level as help strings print it, e.g. ``95%%`` (argparse doubles ``%``).
LEVEL_PERCENT = f"{100 * LEVEL:g}%%"


def betas_text(betas: Sequence[float] = DEFAULT_BETAS) -> str:
    """A beta grid as ``--betas`` takes it, e.g. ``0.01,0.1,1,5,10``."""
    return ",".join(f"{beta:g}" for beta in betas)


def add_convention(p: argparse.ArgumentParser) -> None:
    p.add_argument("--convention", choices=("paper", "released"), default="paper", help=CONVENTION_HELP)


def add_bootstrap(p: argparse.ArgumentParser, what: str, none: str) -> None:
    """``--bootstrap N`` (default :data:`~lm_eval_rankacc.core.stats.N_BOOTSTRAP`;
    ``what`` the replicates are, ``none`` what 0 means) and ``--seed``."""
    p.add_argument("--bootstrap", type=int, default=N_BOOTSTRAP, metavar="N",
                   help=f"{what} (default {N_BOOTSTRAP}; 0: {none})")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
