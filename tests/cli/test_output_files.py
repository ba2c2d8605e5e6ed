"""No command writes over what it reads, and an existing output is replaced
only with --force (issue 20, item 8): the one rule of cli/output_files.py,
symbolic links resolved first, checked before any work."""

from __future__ import annotations

import os

import pytest

from lm_eval_rankacc.cli import main
from tests.helpers.rankacc_samples import doc, write_run

DOCS = [doc("p1", [-1.0, -2.0], [1, 2]), doc("p2", [-3.0, -1.0], [1, 2])]


@pytest.fixture()
def run(tmp_path):
    return write_run(tmp_path / "run", {"rankacc_x": DOCS}, model="m")


def _files(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _run(argv, capsys):
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def test_an_input_is_never_overwritten_even_with_force(run, capsys):
    (samples,) = run.rglob("samples_*.jsonl")
    (results,) = run.rglob("results_*.json")
    before = _files(run)
    for argv in (["hardness", run, "-o", samples, "--force"],
                 ["leaderboard", run, "--format", "json", "-o", results, "--force"],
                 ["idealized", samples, "--format", "json", "-o", samples, "--force"],
                 ["flips", run, run, "--csv", samples.with_name("samples_rankacc_y_2026-01-01T00-00-00.0.jsonl")]):
        rc, err = _run(argv, capsys)
        assert rc == 2 and "which this command reads; write the output elsewhere" in err, (argv, err)
        assert len(err.strip().splitlines()) == 1
    assert _files(run) == before


def test_a_symlink_to_an_input_is_resolved(run, tmp_path, capsys):
    (samples,) = run.rglob("samples_*.jsonl")
    link = tmp_path / "table.md"
    os.symlink(samples, link)
    before = samples.read_bytes()
    rc, err = _run(["hardness", run, "-o", link, "--force"], capsys)
    assert rc == 2 and "which this command reads" in err
    assert samples.read_bytes() == before


def test_an_existing_output_needs_force(run, tmp_path, capsys):
    table = tmp_path / "table.md"
    table.write_text("mine, not rankacc's\n")
    rc, err = _run(["hardness", run, "-o", table], capsys)
    assert rc == 2 and err.strip() == f"rankacc hardness: error: -o {table}: exists already (pass --force to replace it)"
    assert table.read_text() == "mine, not rankacc's\n"
    rc, err = _run(["hardness", run, "-o", table, "--force"], capsys)
    assert rc == 0 and table.read_text().startswith("# Hard")
    plot = tmp_path / "board.png"
    plot.write_bytes(b"x")
    rc, err = _run(["leaderboard", run, "--plot", plot], capsys)
    assert rc == 2 and "--plot" in err and plot.read_bytes() == b"x"
