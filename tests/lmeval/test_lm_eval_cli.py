"""End to end through the ``lm_eval`` command line, in subprocesses.

- (a) the documented command ``lm_eval --model hf --model_args pretrained=<tiny>
  --tasks 'rankacc_*' --output_path <dir> --log_samples`` (no ``--device``:
  lm-eval falls back to the CPU when CUDA is absent) against a local hub
  mirror (``RANKACC_DATA_DIR``);
- (b) ``--model dummy --tasks 'rankacc_*'``: a backend without a tokenizer,
  so rank_acc_norm is left out, with one notice;
- (c) with the start-up hook off (``LM_EVAL_RANKACC_AUTOLOAD=0``) the tasks are
  unknown, and ``--include_path "$(python -m lm_eval_rankacc tasks-dir)"``
  brings them back. To save one lm_eval start, (b) runs in this form: hook
  off, tasks found through ``--include_path`` (the hook itself is what (a)
  relies on);
- (d) ``--model local-completions`` against the test's OpenAI-compatible
  server on the same tiny model reproduces the ``hf`` backend's metrics and
  per-document log-likelihoods;
- (e) ``--model hf-prefix`` (the shared-prompt backend, registered through the
  start-up hook) reproduces the ``hf`` backend's numbers on every task.

Each lm_eval process spends ~10 s of CPU importing and indexing lm-eval's
tasks, so the module starts all four at once (module fixture ``cli_runs``) and each test waits for its own.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.commands import command
from tests.helpers.openai_server import CompletionsServer

pytestmark = pytest.mark.slow

TASKS = (
    "rankacc_demo",
    "rankacc_hh_rlhf_test",
    "rankacc_hh_rlhf_train",
    "rankacc_alpaca_farm_val",
    "rankacc_alpaca_farm_val_ties",
)
#: Documents each task holds with the conftest hub mirror (demo: the shipped file).
DOCS = {
    "rankacc_demo": 33,
    "rankacc_hh_rlhf_test": 4,
    "rankacc_hh_rlhf_train": 2,  # one of three rows dropped (prefixes differ)
    "rankacc_alpaca_farm_val": 2,  # the tied pair excluded
    "rankacc_alpaca_farm_val_ties": 3,
}
METRICS = ("rank_acc", "rank_acc_norm", "rank_acc_bytes")
NORM_NOTICE = "rank_acc_norm (R~) is left out"
TIMEOUT_S = 420


def _lm_eval() -> str:
    return command("lm_eval")


class Run:
    """One lm_eval subprocess, started at once; ``wait()`` for its outcome."""

    def __init__(self, name: str, cmd: list[str] | str, env: dict, workdir: Path, output_path: Path | None):
        self.name, self.cmd, self.output_path = name, cmd, output_path
        self._out = workdir / f"{name}.stdout"
        self._err = workdir / f"{name}.stderr"
        with self._out.open("wb") as out, self._err.open("wb") as err:
            self.proc = subprocess.Popen(
                cmd, shell=isinstance(cmd, str), env=env, cwd=workdir, stdout=out, stderr=err,
                stdin=subprocess.DEVNULL,
            )
        self.returncode: int | None = None

    def wait(self) -> Run:
        if self.returncode is None:
            try:
                self.returncode = self.proc.wait(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"{self.name}: lm_eval ran past {TIMEOUT_S} s")
        self.stdout = self._out.read_text(errors="replace")
        self.stderr = self._err.read_text(errors="replace")
        return self

    def check(self) -> Run:
        self.wait()
        assert self.returncode == 0, f"{self.name} failed ({self.returncode}): {self.cmd}\n{self.stderr[-4000:]}"
        return self

    def results(self) -> dict:
        self.check()
        files = sorted(self.output_path.rglob("results_*.json"))
        assert len(files) == 1, files
        return json.loads(Path(files[0]).read_text())

    def samples(self, task: str) -> list[dict]:
        self.check()
        pattern = re.compile(rf"samples_{re.escape(task)}_\d{{4}}-\d\d-\d\dT.*\.jsonl")
        files = [f for f in self.output_path.rglob("samples_*.jsonl") if pattern.fullmatch(f.name)]
        assert len(files) == 1, (task, files)
        lines = Path(files[0]).read_text(encoding="utf-8").splitlines()
        return sorted((json.loads(line) for line in lines if line.strip()), key=lambda s: s["doc_id"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    with CompletionsServer(tiny_model_dir) as srv:
        yield srv


@pytest.fixture(scope="module")
def cli_runs(tiny_model_dir, hub_mirror, offline_env, server, tmp_path_factory):
    work = tmp_path_factory.mktemp("lm-eval-cli")
    lm_eval = _lm_eval()
    tiny = str(tiny_model_dir)
    mirror_env = {**offline_env, "RANKACC_DATA_DIR": str(hub_mirror)}
    no_hook_env = {**offline_env, "LM_EVAL_RANKACC_AUTOLOAD": "0"}
    out = {name: work / name for name in ("hf", "dummy", "completions", "prefix")}
    runs: dict[str, Run] = {}
    try:
        # (a) exactly the documented command
        runs["hf"] = Run(
            "hf",
            [lm_eval, "--model", "hf", "--model_args", f"pretrained={tiny}", "--tasks", "rankacc_*",
             "--output_path", str(out["hf"]), "--log_samples"],
            mirror_env, work, out["hf"],
        )
        # (c) hook off: unknown task
        runs["no_hook"] = Run("no_hook", [lm_eval, "--model", "dummy", "--tasks", "rankacc_demo"], no_hook_env, work, None)
        # (b) and (c): hook off, tasks through --include_path, as the shell line the README gives
        q = shlex.quote
        runs["dummy"] = Run(
            "dummy",
            f"{q(lm_eval)} --model dummy --tasks 'rankacc_*' "
            f'--include_path "$({q(sys.executable)} -m lm_eval_rankacc tasks-dir)" '
            f'--output_path {q(str(out["dummy"]))} --log_samples',
            {**no_hook_env, "RANKACC_DATA_DIR": str(hub_mirror)}, work, out["dummy"],
        )
        # (d)
        runs["completions"] = Run(
            "completions",
            [lm_eval, "--model", "local-completions", "--model_args",
             f"model={tiny},base_url={server.base_url},tokenizer_backend=huggingface,tokenizer={tiny},num_concurrent=1",
             "--tasks", "rankacc_demo", "--output_path", str(out["completions"]), "--log_samples"],
            offline_env, work, out["completions"],
        )
        # (e)
        runs["prefix"] = Run(
            "prefix",
            [lm_eval, "--model", "hf-prefix", "--model_args", f"pretrained={tiny}", "--tasks", "rankacc_*",
             "--batch_size", "3", "--output_path", str(out["prefix"]), "--log_samples"],
            mirror_env, work, out["prefix"],
        )
        yield runs
    finally:
        for run in runs.values():
            run.stop()


# ------------------------------------------------------------------ (a)
def test_hf_all_tasks(cli_runs):
    run = cli_runs["hf"]
    results = run.results()
    assert set(TASKS) <= results["results"].keys()
    for task in results["results"]:  # every task the glob selected, new ones included
        assert task.startswith("rankacc_"), task
        values = results["results"][task]
        for metric in METRICS:
            assert math.isfinite(values[f"{metric},none"]) and 0 <= values[f"{metric},none"] <= 1, (task, metric)
        assert values["invalid,none"] == 0, task
        assert run.samples(task), task
    for task in TASKS:
        assert results["n-samples"][task]["effective"] == DOCS[task], task
        samples = run.samples(task)
        assert len(samples) == DOCS[task], task
        for s in samples:
            assert set(METRICS) <= s.keys()
            n = len(s["doc"]["responses"])
            assert len(s["scores"]["loglik"]) == n
            assert all(isinstance(t, int) and t > 0 for t in s["scores"]["n_tokens"])
    assert NORM_NOTICE not in run.stderr


# ------------------------------------------------------------------ (b)
def test_dummy_leaves_out_rank_acc_norm(cli_runs):
    run = cli_runs["dummy"]
    results = run.results()
    assert set(TASKS) <= results["results"].keys()
    for task, values in results["results"].items():
        assert "rank_acc,none" in values and "rank_acc_bytes,none" in values, task
        assert not any(key.startswith(("rank_acc_norm", "pair_acc_norm")) for key in values), task
    for task in TASKS:
        for s in run.samples(task):
            assert "rank_acc_norm" not in s
            assert s["scores"]["n_tokens"] == [None] * len(s["doc"]["responses"])
    assert run.stderr.count(NORM_NOTICE) == 1, run.stderr[-3000:]


# ------------------------------------------------------------------ (c)
def test_without_hook_tasks_are_not_found(cli_runs):
    run = cli_runs["no_hook"].wait()
    assert run.returncode != 0
    assert "not found" in run.stderr.lower() and "rankacc_demo" in run.stderr, run.stderr[-2000:]


def test_without_hook_include_path_finds_tasks(cli_runs):
    run = cli_runs["dummy"]
    results = run.results()
    assert run.cmd.count("--include_path") == 1
    assert set(TASKS) <= results["results"].keys()
    for task in TASKS:
        assert results["n-samples"][task]["effective"] == DOCS[task], task
        assert len(run.samples(task)) == DOCS[task], task


# ------------------------------------------------------------------ (d)
def test_local_completions_matches_hf(cli_runs):
    api, hf = cli_runs["completions"], cli_runs["hf"]
    api_values = api.results()["results"]["rankacc_demo"]
    hf_values = hf.results()["results"]["rankacc_demo"]
    for metric in METRICS:
        assert api_values[f"{metric},none"] == hf_values[f"{metric},none"], metric
    api_samples, hf_samples = api.samples("rankacc_demo"), hf.samples("rankacc_demo")
    assert [s["doc"]["id"] for s in api_samples] == [s["doc"]["id"] for s in hf_samples]
    for a, h in zip(api_samples, hf_samples):
        assert max(abs(x - y) for x, y in zip(a["scores"]["loglik"], h["scores"]["loglik"])) <= 1e-4, a["doc"]["id"]
        assert a["scores"]["n_tokens"] == h["scores"]["n_tokens"], a["doc"]["id"]
        assert a["scores"]["n_bytes"] == h["scores"]["n_bytes"]
        assert [a[m] for m in METRICS] == [h[m] for m in METRICS], a["doc"]["id"]


# ------------------------------------------------------------------ (e)
def test_hf_prefix_matches_hf_on_every_task(cli_runs):
    prefix, hf = cli_runs["prefix"], cli_runs["hf"]
    p_results, h_results = prefix.results()["results"], hf.results()["results"]
    assert p_results.keys() == h_results.keys()
    for task, values in h_results.items():
        for key, value in values.items():
            if key.startswith(("rank_acc", "pair_acc")) and "stderr" not in key:
                assert p_results[task][key] == value, (task, key)
        for p, h in zip(prefix.samples(task), hf.samples(task), strict=True):
            assert p["doc"]["id"] == h["doc"]["id"]
            assert max(abs(x - y) for x, y in zip(p["scores"]["loglik"], h["scores"]["loglik"])) <= 1e-4
            assert p["scores"]["n_tokens"] == h["scores"]["n_tokens"]
            assert [r[0][1] for r in p["resps"]] == [r[0][1] for r in h["resps"]]  # is_greedy
