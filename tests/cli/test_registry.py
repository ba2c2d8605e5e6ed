"""The ``rankacc`` registry: every sub-command, the defaults and help taken
from the constants they repeat, ``--level``/``--confidence`` one option, and
``rankacc --help`` importing neither torch nor lm-eval."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lm_eval_rankacc.analysis import DEFAULT_BETAS, DEFAULT_METRICS
from lm_eval_rankacc.cli import build_parser, main
from lm_eval_rankacc.core.stats import LEVEL, MAX_BOOTSTRAP, N_BOOTSTRAP
from lm_eval_rankacc.core.theory import ALPHA_EPS

COMMANDS = ["tasks-dir", "demo-model", "tiny-model", "idealized", "flips", "compare", "hardness", "sft", "dpo",
            "plot-training", "leaderboard", "winrate"]


def _help(argv, capsys) -> str:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_every_sub_command_is_listed(capsys):
    text = _help([], capsys)
    positions = [text.index(f" {name} ") for name in COMMANDS]
    assert positions == sorted(positions)  # in the order of the registry


def test_defaults_come_from_the_constants(capsys):
    parse = build_parser().parse_args
    grid = ",".join(f"{b:g}" for b in DEFAULT_BETAS)
    args = parse(["idealized", "REF"])
    assert (args.bootstrap, args.alpha_eps, args.seed) == (N_BOOTSTRAP, ALPHA_EPS, 0)
    assert [float(b) for b in args.betas.split(",")] == list(DEFAULT_BETAS)
    for argv in (["flips", "A", "B"], ["compare", "A", "B"], ["winrate", "A", "B"]):
        assert parse(argv).bootstrap == N_BOOTSTRAP
    assert parse(["winrate", "A", "B"]).level == LEVEL
    board = parse(["leaderboard", "RUN"])
    assert board.metric.split(",") == list(DEFAULT_METRICS) and board.betas is None
    text = _help(["idealized"], capsys)
    assert f"(default {grid})" in text and f"(default {ALPHA_EPS:g})" in text
    assert f"of the {100 * LEVEL:g}% intervals (default {N_BOOTSTRAP}; 0: no intervals; at most {MAX_BOOTSTRAP:,})" in text
    assert f"needs --reference; default {grid})" in _help(["leaderboard"], capsys)
    text = _help(["winrate"], capsys)
    assert f"(default {N_BOOTSTRAP}; 0: none; at most {MAX_BOOTSTRAP:,})" in text and f"level of the interval (default {LEVEL:g}" in text


@pytest.mark.parametrize("option", ["--level", "--confidence"])
def test_confidence_is_the_level(option):
    assert build_parser().parse_args(["winrate", "A", "B", option, "0.9"]).level == 0.9


def test_help_imports_neither_torch_nor_lm_eval():
    code = ("import sys\n"
            "from lm_eval_rankacc.cli import main\n"
            "try:\n"
            "    main(['--help'])\n"
            "except SystemExit as done:\n"
            "    assert done.code == 0\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lm_eval', 'transformers', "
            "'datasets')))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"
