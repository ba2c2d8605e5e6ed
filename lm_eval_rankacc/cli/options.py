"""The options several sub-commands share, their defaults and help taken from
the constants they name (``core.stats``, ``analysis``)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence

from lm_eval_rankacc.core.theory import DEFAULT_BETAS, MIN_BETA
from lm_eval_rankacc.core.stats import LEVEL, MAX_BOOTSTRAP, N_BOOTSTRAP

#: ``--convention``'s help, shared by the analyses and the leaderboard.
CONVENTION_HELP = ("the rules the numbers follow: 'paper' (default), the paper's definitions; 'released', the "
                   "rules of the authors' released code, recomputed from the logged samples (docs/conventions.md)")
#: ``--tasks``' help, shared by the analyses and the leaderboard.
TASKS_HELP = "comma-separated task name globs (default: all)"
#: The interval level as help strings print it, e.g. ``95%%`` (argparse doubles ``%``).
LEVEL_PERCENT = f"{100 * LEVEL:g}%%"


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer in [low, high], checked at parse time
    (argparse prints the reason in one line and exits 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            bound = f">= {low:,}" if high is None else f"from {low:,} to {high:,}"
            raise argparse.ArgumentTypeError(f"expected an integer {bound}, got {text!r}")
        return value
    return parse


def number(low: float, high: float = math.inf, *, open_low: bool = True, open_high: bool = True
           ) -> Callable[[str], float]:
    """An argparse ``type``: a finite number between low and high (each end
    open unless said otherwise), checked at parse time."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        above = value > low if open_low else value >= low
        below = value < high if open_high else value <= high
        if not (math.isfinite(value) and above and below):
            lo, hi = "(" if open_low else "[", ")" if open_high else "]"
            span = (f"{'>' if open_low else '>='} {low:g}" if high == math.inf
                    else f"in {lo}{low:g}, {high:g}{hi}")
            raise argparse.ArgumentTypeError(f"expected a finite number {span}, got {text!r}")
        return value
    return parse


#: ``--beta``: DPO's beta, as the idealized rules take it (:data:`~lm_eval_rankacc.core.theory.MIN_BETA`).
BETA = number(MIN_BETA, open_low=False)
#: A seed: an integer >= 0.
SEED = integer(0)


def betas_text(betas: Sequence[float] = DEFAULT_BETAS) -> str:
    """A beta grid as ``--betas`` takes it, e.g. ``0.01,0.1,1,5,10``."""
    return ",".join(f"{beta:g}" for beta in betas)


def add_convention(p: argparse.ArgumentParser) -> None:
    p.add_argument("--convention", choices=("paper", "released"), default="paper", help=CONVENTION_HELP)


def add_bootstrap(p: argparse.ArgumentParser, what: str, none: str) -> None:
    """``--bootstrap N`` (default :data:`~lm_eval_rankacc.core.stats.N_BOOTSTRAP`;
    ``what`` the replicates are, ``none`` what 0 means) and ``--seed``."""
    p.add_argument("--bootstrap", type=integer(0, MAX_BOOTSTRAP), default=N_BOOTSTRAP, metavar="N",
                   help=f"{what} (default {N_BOOTSTRAP}; 0: {none}; at most {MAX_BOOTSTRAP:,})")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the bootstrap (default 0)")
