"""The layering contract (pyproject.toml, checked by ``lint-imports`` in the test
command) passes on the package and fails on the back-edges it exists to stop."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.helpers import paths

ROOT = paths.REPO
LINT = shutil.which("lint-imports")

pytestmark = pytest.mark.skipif(LINT is None, reason="import-linter is not installed (pip install -e '.[dev]')")


def lint(tree: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([LINT, "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the package and its pyproject.toml, free to be broken."""
    shutil.copytree(ROOT / "lm_eval_rankacc", tmp_path / "lm_eval_rankacc",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def add_import(path: Path, line: str) -> None:
    text = path.read_text(encoding="utf-8")
    head, sep, rest = text.partition("from __future__ import annotations\n")
    path.write_text(head + sep + line + "\n" + rest if sep else line + "\n" + text, encoding="utf-8")


def test_contract_holds(tree):
    out = lint(tree)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_analysis_importing_report_breaks_it(tree):
    add_import(tree / "lm_eval_rankacc" / "analysis" / "base.py", "import lm_eval_rankacc.report.tables")
    out = lint(tree)
    assert out.returncode != 0 and "lm_eval_rankacc.analysis.base -> lm_eval_rankacc.report.tables" in out.stdout


def test_tracking_importing_torch_breaks_it(tree):
    add_import(tree / "lm_eval_rankacc" / "training" / "tracking_log.py", "import torch")
    out = lint(tree)
    assert out.returncode != 0 and "lm_eval_rankacc.training.tracking_log -> torch" in out.stdout


def test_training_importing_analysis_breaks_it(tree):
    add_import(tree / "lm_eval_rankacc" / "training" / "tracking_log.py", "import lm_eval_rankacc.analysis")
    out = lint(tree)
    assert out.returncode != 0 and "lm_eval_rankacc.training.tracking_log -> lm_eval_rankacc.analysis" in out.stdout


def test_judging_back_edges_break_it(tree):
    """The pure verdict rule imports no judging (I/O), and judging's reader and driver import no torch."""
    add_import(tree / "lm_eval_rankacc" / "core" / "verdicts.py", "import lm_eval_rankacc.judging")
    add_import(tree / "lm_eval_rankacc" / "judging" / "winrate.py", "import torch")
    out = lint(tree)
    assert out.returncode != 0
    assert "lm_eval_rankacc.core.verdicts -> lm_eval_rankacc.judging" in out.stdout
    assert "lm_eval_rankacc.judging.winrate -> torch" in out.stdout


def test_core_importing_loading_breaks_it(tree):
    """The pure rules sit below every other package, the loader below lm-eval's side."""
    add_import(tree / "lm_eval_rankacc" / "core" / "theory.py", "import lm_eval_rankacc.loading.documents")
    add_import(tree / "lm_eval_rankacc" / "loading" / "documents.py", "import lm_eval")
    out = lint(tree)
    assert out.returncode != 0
    assert "lm_eval_rankacc.core.theory -> lm_eval_rankacc.loading.documents" in out.stdout
    assert "lm_eval_rankacc.loading.documents -> lm_eval" in out.stdout
