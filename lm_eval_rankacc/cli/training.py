"""``rankacc sft | dpo | plot-training``: training runs, their options read by
transformers' ``HfArgumentParser``, and redrawing a run's figures."""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

from lm_eval_rankacc.cli.output_files import print_notes
from lm_eval_rankacc.core.checkpoint_names import CHECKPOINT_PREFIX
from lm_eval_rankacc.core.errors import UsageError

#: Sub-commands whose options are HfArgumentParser's: the fields of
#: :class:`~lm_eval_rankacc.training.config.SFTConfig` / ``DPOConfig`` (ours and the Trainer's).
TRAINING_COMMANDS = {
    "sft": "supervised fine-tuning on the preferred responses (the reference model); `rankacc sft --help`",
    "dpo": "DPO / DPO^gamma / IPO training with per-datapoint ranking tracking; `rankacc dpo --help`",
}


def _options_file(argv: list[str]) -> dict | None:
    """The options of ``rankacc <kind> FILE.json|FILE.yaml``, or None for a command line."""
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
    try:
        result = (training.train_dpo if kind == "dpo" else training.train_sft)(config)
    except KeyboardInterrupt:  # a second Ctrl-C during training: stopped at once, without saving
        print(f"rankacc {kind}: interrupted (a second Ctrl-C): stopped without saving; continue from the last "
              f"checkpoint with --resume_from_checkpoint true", file=sys.stderr)
        return 130
    if config.process_index == 0:  # under torchrun/accelerate, one closing line, not one per process
        best = f"; best checkpoint: {result.best_checkpoint}" if result.best_checkpoint else ""
        print(f"rankacc {kind}: {result.global_step} steps in {result.output_dir}{best}")
        if result.stopped_by_signal:
            print(f"rankacc {kind}: stopped by a signal after saving; resume with "
                  f"--resume_from_checkpoint {result.output_dir / f'{CHECKPOINT_PREFIX}{result.global_step}'}")
        for problem in result.incomplete:  # e.g. the figures on a full disk: the run's outputs are incomplete
            print(f"rankacc {kind}: error: outputs incomplete: {problem}", file=sys.stderr)
    if result.stopped_by_signal:
        return 143
    return 1 if result.incomplete else 0


#: The sub-commands that read their own command line (``rankacc <name> ARGS``): name -> run(ARGS) -> exit code.
OWN_OPTIONS = {kind: partial(train, kind) for kind in TRAINING_COMMANDS}


def plot_training(args: argparse.Namespace) -> int:
    """Figures 2 and 3 of each run, and figure 4 (distance travelled, win
    rates) of the run or across the runs
    (:func:`lm_eval_rankacc.training.figures.plot_runs`, ``docs/training.md``, ``docs/section5.md``)."""
    from lm_eval_rankacc.training.figures import plot_runs

    out = Path(args.out_dir) if args.out_dir else None
    paths, notes = plot_runs([Path(d) for d in args.run_dir], out, args.winrate)
    print_notes("plot-training", notes)
    for path in paths:
        print(path)
    return 0


def make_parser(sub) -> None:  # noqa: ANN001 - argparse's private subparsers type
    for name, help_text in TRAINING_COMMANDS.items():  # parsed by OWN_OPTIONS before argparse; listed for --help
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
    p.set_defaults(func=plot_training)
