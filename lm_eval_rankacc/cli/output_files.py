"""The output files of the analyses, the leaderboard and the explorer: one
rule for every output path, checked before any work, and writing a report's
table and notes.

The rule (docs/analyses.md, "Output files"): a path is resolved through
symbolic links first; it never names a file the command reads (a run given
to it, or lm-eval's samples or results file inside a run folder given to
it), not even with ``--force``; an existing file is replaced only with
``--force``; its suffix says its format; its folder exists and is writable."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from lm_eval_rankacc.core.errors import UsageError
from lm_eval_rankacc.outputs.names import RESULTS_RE, SAMPLES_RE

#: The suffix an ``-o`` name may carry, by the --format it says (others, e.g. .txt, take any format).
FORMAT_SUFFIXES = {".md": "md", ".markdown": "md", ".csv": "csv", ".json": "json", ".tex": "latex"}
#: The suffixes of the outputs whose format the option fixes (-o follows --format).
SUFFIXES = {"--csv": (".csv",), "--plot": (".png", ".svg"), "--html": (".html", ".htm")}
#: The outputs of the analyses and the leaderboard: (option, attribute of the parsed arguments).
OUTPUTS = (("-o", "output"), ("--csv", "csv"), ("--plot", "plot"), ("--html", "html"))
#: The parsed arguments that name what a command reads (runs: folders or files).
INPUTS = ("ref_run", "policy", "policy_run", "run_a", "run_b", "baseline_run", "runs", "reference")
#: ``--force``'s help.
FORCE_HELP = "replace output files that exist already (never the runs the command reads)"


def add_force(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help=FORCE_HELP)


def _inputs(args: argparse.Namespace) -> list[Path]:
    """What the command reads, resolved."""
    named = [getattr(args, attr, None) for attr in INPUTS]
    flat = [item for value in named if value for item in (value if isinstance(value, list) else [value])]
    return [Path(item).resolve() for item in flat]


def _read_input(path: Path, inputs: list[Path]) -> Path | None:
    """The input ``path`` (resolved) is, or lies in as lm-eval's output file; None when none."""
    lm_eval_file = bool(SAMPLES_RE.match(path.name) or RESULTS_RE.match(path.name))
    for given in inputs:
        if path == given or (lm_eval_file and given.is_dir() and path.is_relative_to(given)):
            return given
    return None


def check_output(option: str, value: str, args: argparse.Namespace) -> None:
    """One output path by the module's rule: not an input, an existing file only
    with ``--force``, its suffix its format, no folder, in a writable folder."""
    path = Path(value).resolve()  # through symbolic links: the file that would be written
    given = _read_input(path, _inputs(args))
    if given is not None:
        raise UsageError(f"{option} {value}: is {'' if path == given else 'inside '}{given}, which this command "
                         "reads; write the output elsewhere")
    if path.is_file() and not getattr(args, "force", False):
        raise UsageError(f"{option} {value}: exists already (pass --force to replace it)")
    suffix = path.suffix.lower()
    said = FORMAT_SUFFIXES.get(suffix)
    if option == "-o" and said and said != args.format:
        raise UsageError(f"-o {value}: the name says {said} but --format is {args.format} "
                         f"(pass --format {said}, or another name)")
    allowed = SUFFIXES.get(option, ())
    if option != "-o" and suffix not in allowed:
        raise UsageError(f"{option} {value}: the file name must end in {' or '.join(allowed)}")
    if path.is_dir():
        raise UsageError(f"{option} {value}: a folder; name a file in it")
    if not path.parent.is_dir():
        raise UsageError(f"{option} {value}: no folder {path.parent} (outputs go into existing folders: create it)")
    if not os.access(path.parent, os.W_OK):
        raise UsageError(f"{option} {value}: the folder {path.parent} is not writable")


def check_outputs(args: argparse.Namespace) -> None:
    """The one rule for every output path (-o, --csv, --plot, --html), checked
    before any work: see :func:`check_output`; no two outputs name one file."""
    seen: dict[Path, str] = {}
    for option, attr in OUTPUTS:
        value = getattr(args, attr, None)
        if not value:
            continue
        check_output(option, str(value), args)
        key = Path(value).resolve()
        if key in seen:
            raise UsageError(f"{seen[key]} and {option} {value} name the same file")
        seen[key] = f"{option} {value}"


def print_notes(command: str, notes: Iterable[str]) -> None:
    """A sub-command's notes on stderr, one line each."""
    for note in notes:
        print(f"rankacc {command}: note: {note}", file=sys.stderr)


def write_table(report, args: argparse.Namespace) -> None:
    """The report rendered in ``--format``, on stdout or into ``-o FILE``; its
    notes on stderr where the table does not show them (a file, or CSV)."""
    from lm_eval_rankacc.report import tables

    text = tables.render(report, args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8", newline="")  # as rendered: "\n" inside a cell stays
    else:
        sys.stdout.write(text)
    if args.output or args.format == "csv":
        print_notes(args.command, report.notes)


def writing(write: Callable[..., Any], *args: Any) -> Any:
    """``write(*args)``, with a file that cannot be written (-o, --csv, --plot,
    --html, a model folder; the folder and suffix of a report's outputs were
    checked before any work by :func:`check_outputs`, so e.g. a full disk) as a
    usage error."""
    try:
        return write(*args)
    except OSError as err:
        raise UsageError(f"cannot write the output: {err}") from None


def run_report(args: argparse.Namespace, make: Callable[[], Any], write: Callable[[Any, argparse.Namespace], int]
               ) -> int:
    """An analysis or leaderboard sub-command: check its outputs (:func:`check_outputs`),
    ``make()`` the report, ``write(report, args)`` it (:func:`writing`)."""
    check_outputs(args)
    return writing(write, make(), args)
