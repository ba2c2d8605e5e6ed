"""``rankacc leaderboard``: one row per model, one column per task and metric
(:func:`lm_eval_rankacc.analysis.leaderboard`), as a table, a figure and an HTML page."""

from __future__ import annotations

import argparse

from lm_eval_rankacc.core.theory import DEFAULT_METRICS
from lm_eval_rankacc.cli.options import TASKS_HELP, add_convention, betas_text
from lm_eval_rankacc.cli.output_files import add_force, run_report, write_table
from lm_eval_rankacc.core.errors import UsageError


def _write(report, args: argparse.Namespace) -> int:
    """Write the leaderboard table (stdout or -o FILE), its figure and its HTML page."""
    from pathlib import Path

    from lm_eval_rankacc.report import figures, html

    write_table(report, args)
    if args.plot:
        figures.leaderboard_plot(report, args.plot)
    if args.html:
        png = figures.leaderboard_plot(report, fmt="png")
        links = None
        if args.explore:
            from lm_eval_rankacc.cli.explore import leaderboard_pages

            links = leaderboard_pages(report, args.html, args.reference, args.tasks)
        Path(args.html).write_text(html.render_html(report, png, links), encoding="utf-8", newline="")
    return 0


def leaderboard(args: argparse.Namespace) -> int:
    """:func:`lm_eval_rankacc.analysis.leaderboard`, written as the options say."""
    from lm_eval_rankacc import analysis

    if args.explore and not (args.html and args.reference):
        raise UsageError("--explore links each model's row of the --html page to its explorer page against "
                         "--reference: pass both --html FILE.html and --reference REF_RUN")
    return run_report(args, lambda: analysis.leaderboard(
        args.runs, args.metric, args.sort, args.reference, args.betas, args.tasks, args.skip_bad_runs,
        paper=args.paper, convention=args.convention), _write)


def make_parser(sub) -> None:  # noqa: ANN001 - argparse's private subparsers type
    p = sub.add_parser("leaderboard", help="compare models: one row per model, one column per task and metric")
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="lm-eval --output_path folder (one or more models), model sub-folder or results JSON")
    metrics = ",".join(DEFAULT_METRICS)
    p.add_argument("--metric", default=metrics, help=f"comma-separated metrics (columns per task; default {metrics})")
    p.add_argument("--sort", default=None, metavar="COLUMN",
                   help="column to sort by, e.g. rankacc_demo/rank_acc or model (default: first task, first metric)")
    p.add_argument("--format", choices=("md", "csv", "latex", "json"), default="md")
    add_force(p)
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="write the table here instead of stdout")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="also draw the figure (.png or .svg)")
    p.add_argument("--html", default=None, metavar="FILE.html", help="also write a self-contained HTML page")
    p.add_argument("--explore", action="store_true",
                   help="with --html and --reference: also write one `rankacc explore` page per model against the "
                        "reference into FILE_explore/ beside the page, linked from the model's row")
    p.add_argument("--reference", default=None, metavar="REF_RUN",
                   help="reference run (with --log_samples): add its idealized accuracy and each model's gap")
    p.add_argument("--betas", default=None,
                   help=f"beta grid of the reference's idealized accuracy (needs --reference; default {betas_text()})")
    p.add_argument("--tasks", default=None, help=TASKS_HELP)
    p.add_argument("--skip-bad-runs", action="store_true",
                   help="leave out, with a note, a results file (or its samples file) that cannot be read "
                        "(default: an error)")
    p.add_argument("--paper", action="store_true",
                   help="add the published rows of Chen et al. (2024), Tables 1-6, for the runs' tasks, marked "
                        "'(paper, Table N)' (the authors' numbers, not rescored here)")
    add_convention(p)
    p.set_defaults(func=leaderboard)
