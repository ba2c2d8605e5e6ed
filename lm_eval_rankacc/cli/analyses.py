"""``rankacc idealized | flips | compare | hardness``: the analyses of finished
lm-eval runs (:mod:`lm_eval_rankacc.analysis`), each sub-command's parser
beside the function it calls."""

from __future__ import annotations

import argparse

from lm_eval_rankacc.cli.options import (
    BETA, LEVEL_PERCENT, TASKS_HELP, add_bootstrap, add_convention, betas_text, integer, number,
)
from lm_eval_rankacc.cli.output_files import add_force, run_report, write_table
from lm_eval_rankacc.core.theory import ALPHA_EPS

RUN_HELP = "lm-eval --output_path folder, model sub-folder or samples file (run with --log_samples)"


def _write(report, args: argparse.Namespace) -> int:
    """Write an analysis ``report`` and any per-document CSV (--csv) / histogram (--plot)."""
    from pathlib import Path

    from lm_eval_rankacc.report import tables

    write_table(report, args)
    if getattr(args, "csv", None):
        Path(args.csv).write_text(tables.documents_csv(report), encoding="utf-8", newline="")
    if getattr(args, "plot", None):
        from lm_eval_rankacc.report import figures

        figures.c_histogram(report, args.plot)
    return 0


def idealized(args: argparse.Namespace) -> int:
    """:func:`lm_eval_rankacc.analysis.idealized`, written as the options say."""
    from lm_eval_rankacc import analysis

    return run_report(args, lambda: analysis.idealized(
        args.ref_run, args.policy, args.betas, args.tasks, args.alpha_eps, convention=args.convention,
        bootstrap=args.bootstrap, seed=args.seed), _write)


def flips(args: argparse.Namespace) -> int:
    """:func:`lm_eval_rankacc.analysis.flips`, written as the options say."""
    from lm_eval_rankacc import analysis

    return run_report(args, lambda: analysis.flips(
        args.ref_run, args.policy_run, args.tasks, args.metric, convention=args.convention,
        bootstrap=args.bootstrap, seed=args.seed), _write)


def compare(args: argparse.Namespace) -> int:
    """:func:`lm_eval_rankacc.analysis.compare`, written as the options say."""
    from lm_eval_rankacc import analysis

    return run_report(args, lambda: analysis.compare(
        args.run_a, args.run_b, args.tasks, convention=args.convention, bootstrap=args.bootstrap,
        seed=args.seed), _write)


def hardness(args: argparse.Namespace) -> int:
    """:func:`lm_eval_rankacc.analysis.hardness`, written as the options say."""
    from lm_eval_rankacc import analysis

    return run_report(args, lambda: analysis.hardness(args.ref_run, args.beta, args.top, args.tasks), _write)


def _add_statistics(p: argparse.ArgumentParser) -> None:
    """--convention, --bootstrap and --seed of a comparison of runs."""
    add_convention(p)
    add_bootstrap(p, f"paired-bootstrap replicates of the {LEVEL_PERCENT} intervals", "no intervals")


def make_parser(sub) -> None:  # noqa: ANN001 - argparse's private subparsers type
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--tasks", default=None, help=TASKS_HELP)
    common.add_argument("--format", choices=("md", "csv", "json"), default="md")
    add_force(common)
    common.add_argument("-o", "--output", default=None, metavar="FILE",
                        help="write here instead of stdout (into an existing folder)")
    p = sub.add_parser("idealized", parents=[common],
                       help="idealized ranking accuracy R*, R~* of a reference model and the alignment gap")
    p.add_argument("ref_run", metavar="REF_RUN", help=RUN_HELP)
    p.add_argument("--policy", nargs="+", action="extend", default=[], metavar="RUN",
                   help="policy runs (fine-tuned from the reference) to compare")
    p.add_argument("--betas", default=betas_text(), help=f"comma-separated beta grid (default {betas_text()})")
    p.add_argument("--alpha-eps", type=number(0.0, 0.5), default=ALPHA_EPS,
                   help=f"alpha = 1 or 0 is clipped by this (default {ALPHA_EPS:g})")
    _add_statistics(p)
    p.set_defaults(func=idealized)
    p = sub.add_parser("flips", parents=[common], help="ranking flips between two runs of the same documents")
    p.add_argument("ref_run", metavar="REF_RUN", help=RUN_HELP)
    p.add_argument("policy_run", metavar="POLICY_RUN", help=RUN_HELP)
    p.add_argument("--metric", choices=("rank_acc", "rank_acc_norm", "rank_acc_bytes"), default="rank_acc")
    p.add_argument("--csv", default=None, metavar="FILE.csv", help="also write one CSV row per document")
    _add_statistics(p)
    p.set_defaults(func=flips)
    p = sub.add_parser("compare", parents=[common],
                       help="is the difference real? paired bootstrap and McNemar's test of two runs of the same "
                            "documents")
    p.add_argument("run_a", metavar="RUN_A", help=RUN_HELP)
    p.add_argument("run_b", metavar="RUN_B", help=RUN_HELP)
    _add_statistics(p)
    p.set_defaults(func=compare)
    p = sub.add_parser("hardness", parents=[common],
                       help="Thm. 4.1: reference log-ratio c, DPO loss thresholds, hard/easy datapoints")
    p.add_argument("ref_run", metavar="REF_RUN", help=RUN_HELP)
    p.add_argument("--beta", type=BETA, default=0.1)
    p.add_argument("--top", type=integer(1), default=20, help="datapoints per list")
    p.add_argument("--csv", default=None, metavar="FILE.csv", help="also write one CSV row per document")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="also draw a histogram of c (.png or .svg)")
    p.set_defaults(func=hardness)
