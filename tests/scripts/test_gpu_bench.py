"""scripts/gpu_bench.sh: its dry run on CPU gives a table with every row measured, its limits hold."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.paths import HH_REAL, REPO

SCRIPT = REPO / "scripts" / "gpu_bench.sh"
NEED_DATA = pytest.mark.skipif(not HH_REAL.is_file(), reason=(
    "the real HH-RLHF data (../shared/data) is not beside the checkout: every row of the table scores or "
    "trains on it"))
NEED_TRL = pytest.mark.skipif(importlib.util.find_spec("trl") is None, reason=(
    "trl is not installed: the rows 'TRL DPOTrainer (defaults)' and 'TRL, precompute_ref_log_probs' (and the "
    "speed-ups of every DPO row, taken against TRL) need it"))
ROWS = ["hf (stock), batch 4", "hf (stock), batch 8", "hf-prefix-packed batch 4", "hf-prefix-cached batch 4",
        "rankacc dpo", "TRL DPOTrainer (defaults)", "TRL, precompute_ref_log_probs"]
NUMBER = re.compile(r"^-?[\d,]+(\.\d+)?(e[+-]\d+)?[x%]?$")


def run(out: Path, *args: str, timeout: int = 400, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, **env}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=environ,
                          timeout=timeout, cwd=REPO)


def table_rows(text: str) -> dict[str, list[str]]:
    """The rows of the markdown table, by implementation (' = baseline' dropped)."""
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| scoring") or line.startswith("| DPO")]
    return {r[1].replace(" = baseline", ""): r for r in rows}


def stock_tokens(tokenizer_dir: Path, n: int) -> int:
    """Tokens stock hf runs for the first n clean pairs, counted here: prompt + ' ' + response, less one."""
    from transformers import AutoTokenizer

    from lm_eval_rankacc.sources import hh_rlhf

    with gzip.open(HH_REAL, "rt", encoding="utf-8") as f:
        docs = hh_rlhf.convert([json.loads(line) for line in f], "test").docs[:n]
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    return sum(len(tok(d["prompt"] + " " + r, add_special_tokens=False)["input_ids"]) - 1
               for d in docs for r in d["responses"])


@NEED_DATA
@NEED_TRL
def test_dry_run_table_has_every_row_measured(tmp_path):
    # limits far above the dry run's (about 2 minutes): a loaded test machine must not make rows go missing;
    # how long it takes is measured outside the tests (docs/benchmarks.md#gpu-run)
    limits = {k: "600" for k in ("INSTALL_S", "MODEL_S", "SCORE_S", "DPO_S")}
    done = run(tmp_path / "out", "--dry-run", timeout=3000, TOTAL_S="2400", **limits)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = (tmp_path / "out" / "table.md").read_text()
    assert table in done.stdout  # printed as written
    rows = table_rows(table)
    assert sorted(rows) == sorted(ROWS)
    assert all(len(row) == 10 for row in rows.values()), table
    for name, row in rows.items():
        numbers = row[2:8] + [row[9].rsplit(" ", 1)[-1]] if name.startswith("TRL") or name == "rankacc dpo" \
            else row[2:8] + [row[9].split()[4]]
        assert all(NUMBER.match(x) for x in numbers), (name, row)
        assert row[8] == "n/a"  # no MFU without a GPU
    raw = json.loads((tmp_path / "out" / "raw.json").read_text())
    assert [s["status"] for s in raw["steps"]] == ["ok"] * 10
    assert raw["dry_run"] is True and "gpu" not in raw["machine"]
    scoring = raw["scoring"]
    hf = {k: v for k, v in scoring.items() if k.startswith("scoring hf batch")}
    best = min(hf, key=lambda k: hf[k]["process"])
    assert rows[best.split(" ", 1)[1].replace("hf batch", "hf (stock), batch")][1].endswith("= baseline")
    for name, r in scoring.items():
        assert r["docs"] == 50 and len(r["logliks"]) == 100 and all(x < 0 for x in r["logliks"])
        row = rows[name.split(" ", 1)[1].replace("hf batch", "hf (stock), batch")]
        assert float(row[6].rstrip("x")) == pytest.approx(hf[best]["process"] / r["process"], abs=0.006)
        assert float(row[2]) == pytest.approx(r["wall"], abs=0.006)
    # the token count, independently: the tiny tokenizer is deterministic, so make it again and count
    from lm_eval_rankacc.loading.tiny_model import make_tiny_model

    expected = stock_tokens(make_tiny_model(tmp_path / "tok"), 50)
    assert {r["stock_tokens"] for r in scoring.values()} == {expected}
    # same weights, same requests: stock hf's log-likelihoods agree across batch sizes (bf16 rounding aside)
    a, b = (v["logliks"] for v in hf.values())
    assert max(abs(x - y) / abs(y) for x, y in zip(a, b)) < 2e-2
    dpo = raw["dpo"]
    assert all("8 HH-RLHF pairs, batch 4, 2 steps" in d["setting"] for d in dpo.values())
    trl_stage = float(dpo["dpo trl"]["ref + train s"])
    assert float(rows["rankacc dpo"][5].rstrip("x")) == pytest.approx(
        trl_stage / float(dpo["dpo rankacc"]["ref + train s"]), abs=0.006)


@NEED_DATA
def test_a_step_over_its_limit_is_stopped_and_the_table_still_written(tmp_path):
    done = run(tmp_path / "out", "--dry-run", MODEL_S="1", timeout=200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "model: timed out in" in done.stdout
    rows = table_rows((tmp_path / "out" / "table.md").read_text())
    assert sorted(rows) == sorted(ROWS)
    assert all(r[2] == "not run (the model step failed)" for r in rows.values())
    steps = json.loads((tmp_path / "out" / "raw.json").read_text())["steps"]
    model = next(s for s in steps if s["name"] == "model")
    assert model["status"] == "timed out" and model["note"] == "after 1 s" and float(model["seconds"]) < 15


def test_an_earlier_table_is_kept_without_force(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "table.md").write_text("an earlier run's table\n")
    done = run(out, "--dry-run", timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--force" in done.stderr
    assert (out / "table.md").read_text() == "an earlier run's table\n"


def test_an_unknown_option_is_refused_in_one_line(tmp_path):
    done = run(tmp_path / "out", "--dryrun", timeout=60)
    assert done.returncode == 2 and done.stderr.strip() == (
        "gpu_bench.sh: unknown option --dryrun (options: --dry-run, --force, --help)")
    assert not (tmp_path / "out").exists()
