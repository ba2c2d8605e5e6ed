"""``rankacc``: the package's companion command line. Thin: parse, call, print.

Evaluation itself stays ``lm_eval --tasks 'rankacc_*'``; these sub-commands
help around it. Each module of :data:`COMMANDS` adds its sub-commands
(``make_parser(subparsers)``, each parser beside the function it calls);
:func:`main` runs one and maps the package's errors to one line and an exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from lm_eval_rankacc.cli import analyses, explore, judging, leaderboard, setup, training
from lm_eval_rankacc.cli.options import CONVENTION_HELP
from lm_eval_rankacc.cli.training import TRAINING_COMMANDS, parse_training_options, train
from lm_eval_rankacc.core.errors import RankAccError, UsageError

# the module's public names of release 0.1 (CONVENTION_HELP, TRAINING_COMMANDS too) stay importable from here
__all__ = ["COMMANDS", "CONVENTION_HELP", "TRAINING_COMMANDS", "build_parser", "main", "parse_training_options",
           "train"]

#: The sub-command modules, in ``rankacc --help``'s order. Each has
#: ``make_parser(subparsers)``; one whose commands read their own command line
#: (HfArgumentParser's) also has ``OWN_OPTIONS``: name -> run(argv) -> exit code.
COMMANDS = (setup, analyses, training, leaderboard, judging, explore)
#: Errors of a sub-command other than training that are a usage error: a missing
#: file, a failed download (``demo-model`` offline). A crash inside training keeps its traceback.
USAGE_ERRORS = (FileNotFoundError, RuntimeError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rankacc", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.make_parser(sub)
    return parser


def _own_options() -> dict[str, Callable[[list[str]], int]]:
    """The sub-commands that read their own command line, by name."""
    return {name: run for module in COMMANDS for name, run in getattr(module, "OWN_OPTIONS", {}).items()}


def _parsed(args: argparse.Namespace) -> int:
    """A sub-command that argparse parsed, with :data:`USAGE_ERRORS` as usage errors."""
    try:
        return args.func(args)
    except USAGE_ERRORS as err:
        raise UsageError(str(err)) from None


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command; a :class:`~lm_eval_rankacc.core.errors.RankAccError` (or a
    missing file, or a failed download) is printed as one line and becomes the
    exit code (2, or 1 for a training run stopped by a non-finite loss)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    own = _own_options()
    if argv and argv[0] in own:
        command, run = argv[0], lambda: own[argv[0]](argv[1:])
    else:
        args = build_parser().parse_args(argv)
        command, run = args.command, lambda: _parsed(args)
    try:
        return run()
    except RankAccError as err:
        print(f"rankacc {command}: error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
