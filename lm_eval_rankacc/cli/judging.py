"""``rankacc winrate``: the win rate of a policy's generations over a
baseline's, judged pairwise in both orders (:func:`lm_eval_rankacc.judging.winrate`)."""

from __future__ import annotations

import argparse
import sys

from lm_eval_rankacc.cli.options import add_bootstrap
from lm_eval_rankacc.cli.output_files import print_notes
from lm_eval_rankacc.core.stats import LEVEL

RUN_HELP = ("lm-eval --output_path folder, model sub-folder, results JSON or samples file of a generate_until "
            "task run with --log_samples")


def winrate(args: argparse.Namespace) -> int:
    """:func:`lm_eval_rankacc.judging.winrate`; its table on stdout, its notes on stderr."""
    from lm_eval_rankacc import judging
    from lm_eval_rankacc.judging.judges import check_judge_options

    check_judge_options(args.timeout, args.workers, args.retries, args.judge_max_tokens)
    summary = judging.winrate(
        args.policy_run, args.baseline_run, output=args.output, task=args.task, filter_name=args.filter,
        step=args.step, retries=args.retries, workers=args.workers, bootstrap=args.bootstrap, seed=args.seed,
        level=args.level, judge_url=args.judge_url, judge_model=args.judge_model,
        judge_local=args.judge_local, judge_key_env=args.judge_key_env, timeout=args.timeout,
        device=args.judge_device, max_tokens=args.judge_max_tokens,
        verdict=args.judge_verdict)
    sys.stdout.write(judging.markdown_table(summary))
    print_notes("winrate", judging.summary_notes(summary))
    return 0


def _add_judge(p: argparse.ArgumentParser) -> None:
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
    judge.add_argument("--judge-verdict", choices=("text", "logprob"), default="text",
                       help="read the judge's reply text (default), or its probabilities of the answer words A, B "
                            "and tie at the answer position (a local judge, or an API that returns logprobs; "
                            "docs/winrate.md)")
    judge.add_argument("--timeout", type=float, default=60.0,
                       help="seconds a whole API request may take, reading the reply included (default 60)")
    judge.add_argument("--retries", type=int, default=3,
                       help="asks again after an HTTP error or an unparsable reply, at most this often (default 3)")
    judge.add_argument("--workers", type=int, default=4, help="API requests in flight at once (default 4)")


def make_parser(sub) -> None:  # noqa: ANN001 - argparse's private subparsers type
    p = sub.add_parser("winrate", help="win rate of a policy's generations over a baseline's, judged pairwise in "
                                       "both orders (docs/winrate.md)")
    p.add_argument("policy_run", metavar="POLICY_RUN", help=RUN_HELP)
    p.add_argument("baseline_run", metavar="BASELINE_RUN", help=RUN_HELP)
    _add_judge(p)
    p.add_argument("--task", default=None, help="the task (name or glob) when the runs hold several")
    p.add_argument("--filter", default=None, help="lm-eval filter whose responses are judged (default: none)")
    p.add_argument("--step", type=int, default=None,
                   help="training step of the policy (default: N of checkpoint-N in its model path, if any)")
    p.add_argument("--output", default=None, metavar="DIR", help="write judgements.jsonl and winrate.json here")
    add_bootstrap(p, "bootstrap replicates (prompts resampled) of the win rate's interval", "none")
    p.add_argument("--level", "--confidence", dest="level", type=float, default=LEVEL,
                   help=f"level of the interval (default {LEVEL:g}; --confidence is the same option)")
    p.set_defaults(func=winrate)
