"""``rankacc explore``: one self-contained HTML page to browse the documents
behind the numbers (:func:`lm_eval_rankacc.analysis.explore.explore`,
rendered by :func:`lm_eval_rankacc.report.explore.render_explore`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lm_eval_rankacc.cli.analyses import RUN_HELP
from lm_eval_rankacc.cli.options import TASKS_HELP
from lm_eval_rankacc.cli.output_files import add_force, print_notes, run_report
from lm_eval_rankacc.core.errors import UsageError

#: The suffixes an explorer page's name may end in.
PAGE_SUFFIXES = (".html", ".htm")


def write_page(exploration, path: str | Path) -> Path:
    """Write the explorer page of ``exploration`` to ``path``."""
    from lm_eval_rankacc.report.explore import render_explore

    path = Path(path)
    path.write_text(render_explore(exploration), encoding="utf-8", newline="")
    return path


def leaderboard_pages(report, html: str | Path, reference: str | Path, tasks: str | None = None,
                      beta: float = 0.1) -> dict[str, str]:
    """``rankacc leaderboard --html PAGE --explore``: one explorer page per
    model of ``report`` with logged samples, against ``reference``, in the
    folder ``PAGE_explore/`` beside the page (created); returns model -> the
    page's address relative to ``PAGE``. A model whose runs cannot be explored
    (other documents) gets no page and a note on stderr."""
    import re

    from lm_eval_rankacc.analysis.explore import explore as make, leaderboard_runs
    from lm_eval_rankacc.core.errors import RunError

    html = Path(html)
    folder = html.with_name(html.stem + "_explore")
    links = {}
    for k, (model, run) in enumerate(leaderboard_runs(report).items()):
        try:
            exploration = make([run], reference, tasks, beta)
        except RunError as err:
            print_notes("leaderboard", [f"--explore: {model}: no explorer page: {err}"])
            continue
        folder.mkdir(exist_ok=True)
        name = f"{k + 1:02d}-{re.sub(r'[^A-Za-z0-9._-]+', '_', model)[:60]}.html"
        write_page(exploration, folder / name)
        links[model] = f"{folder.name}/{name}"
    return links


def _write(exploration, args: argparse.Namespace) -> int:
    write_page(exploration, args.output)
    print_notes(args.command, exploration.notes)
    print(f"{args.output}: {len(exploration.rows)} documents, runs {', '.join(exploration.runs)}")
    return 0


def explore(args: argparse.Namespace) -> int:
    """:func:`lm_eval_rankacc.analysis.explore.explore`, written to ``-o`` as one HTML page."""
    from lm_eval_rankacc.analysis.explore import explore as make

    if Path(args.output).suffix.lower() not in PAGE_SUFFIXES:
        raise UsageError(f"-o {args.output}: the file name must end in {' or '.join(PAGE_SUFFIXES)}")
    return run_report(args, lambda: make(args.runs, args.reference, args.tasks, args.beta), _write)


def make_parser(sub) -> None:  # noqa: ANN001 - argparse's private subparsers type
    p = sub.add_parser("explore", help="browse the documents behind the numbers: one self-contained HTML page")
    p.add_argument("runs", nargs="+", metavar="RUN", help=RUN_HELP)
    p.add_argument("--reference", default=None, metavar="REF_RUN",
                   help="reference run: shown first, every run's flips against it, the idealized outcome at "
                        "--beta, Thm. 4.1's c and loss threshold (default: the first RUN is the base, no idealized)")
    p.add_argument("--tasks", "--task", dest="tasks", default=None, help=TASKS_HELP)
    p.add_argument("--beta", type=float, default=0.1, help="beta of the idealized outcome and threshold (default 0.1)")
    p.add_argument("-o", "--output", required=True, metavar="FILE.html", help="the page to write (an existing folder)")
    add_force(p)
    p.set_defaults(func=explore, format="html")
