"""Benchmark: the analyses that read lm-eval samples files, on N generated documents.

Writes two runs (a reference and a policy, same documents, other
log-likelihoods) of one rankacc task in lm-eval's ``--log_samples`` format
(one line per document: doc_id, doc, target, arguments, resps,
filtered_resps, filter, metrics, doc_hash, prompt_hash, target_hash, the
per-document metrics and ``scores``), each with its results JSON beside it,
then times ``rankacc idealized``, ``flips``, ``compare``, ``hardness`` and
``leaderboard`` (one subprocess per command: wall time, CPU time and peak
RSS of the whole process) and prints a table. ``--tree`` runs the commands
of another source tree (``git archive <commit> lm_eval_rankacc | tar -x -C
DIR``: before/after figures). Texts are of realistic length (prompt ~400 characters,
responses ~400 each: about 3.8 KB a line); 10 % of the pairs are human
ties, 20 % carry no rater proportions.

The samples cache (``outputs/cache.py``): each command runs without it
(``LM_EVAL_RANKACC_SAMPLES_CACHE=off``), with an empty cache folder (the
first run: it reads the samples and writes the cache) and again with the
full one (the second run: it reads no samples file), side by side, medians of
``--repeats``; the output of the three must be the same bytes (``same``).
``--many K --many-n M`` adds a leaderboard of K runs of M documents each
(first and second run). The commands run with Python's bytecode cache on
(``PYTHONDONTWRITEBYTECODE`` removed), as an installed package runs.

    python scripts/bench_analyses.py --n 1000000 --dir /some/scratch/folder
    python scripts/bench_analyses.py --n 1000000 --many 20 --many-n 100000 --commands flips --dir DIR
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TASK = "rankacc_bench"
STAMP = "2026-12-02T00-00-00.000000"
WORDS = ["the", "model", "answer", "question", "because", "people", "often", "would", "rather", "think", "about", "this", "kind", "of", "helpful", "response", "when", "asked", "several", "times", "while", "others", "never", "agree"]


def _text(rng: random.Random, chars: int) -> str:
    words = []
    size = 0
    while size < chars:
        w = WORDS[rng.randrange(len(WORDS))]
        words.append(w)
        size += len(w) + 1
    return " ".join(words)


def _line(k: int, rng: random.Random, shift: float) -> tuple[str, dict[str, float]]:
    """One samples line of document ``k`` (``shift`` moves the log-likelihoods:
    another model) and its per-document metrics."""
    tie = rng.random() < 0.1
    first = rng.random() < 0.5
    ranks = [1, 1] if tie else ([1, 2] if first else [2, 1])
    share = rng.choice([0.6, 2 / 3, 0.75, 1.0])
    alpha = 0.5 if tie else (share if first else 1.0 - share)
    doc = {"id": f"doc-{k:08d}", "prompt": _text(rng, rng.randint(200, 600)),
           "responses": [_text(rng, rng.randint(200, 600)) for _ in range(2)],
           "ranks": ranks, "votes": [], "alpha": None if rng.random() < 0.2 else alpha}
    n_bytes = [len((" " + r).encode("utf-8")) for r in doc["responses"]]
    n_tokens = [max(1, b // 4) for b in n_bytes]
    loglik = [-rng.gammavariate(2.0, 40.0) - shift * rng.random() for _ in range(2)]
    target = ranks.index(min(ranks))
    correct = float(loglik[target] > loglik[1 - target])
    metrics = {"rank_acc": correct, "rank_acc_norm": correct, "rank_acc_bytes": correct}
    rec = {
        "doc_id": k, "doc": doc, "target": str(target),
        "arguments": {f"gen_args_{i}": {"arg_0": doc["prompt"], "arg_1": " " + r}
                      for i, r in enumerate(doc["responses"])},
        "resps": [[[str(ll), "False"]] for ll in loglik],
        "filtered_resps": [[str(ll), "False"] for ll in loglik],
        "filter": "none", "metrics": [*metrics, "invalid", "scores"],
        "doc_hash": hashlib.sha256(json.dumps(doc, indent=2).encode()).hexdigest(),
        "prompt_hash": hashlib.sha256(doc["prompt"].encode()).hexdigest(),
        "target_hash": hashlib.sha256(str(target).encode()).hexdigest(),
        **metrics, "invalid": 0,
        "scores": {"loglik": loglik, "n_tokens": n_tokens, "n_bytes": n_bytes},
    }
    return json.dumps(rec, ensure_ascii=False), metrics


def _aggregates(sums: dict[str, float], squares: dict[str, float], n: int) -> dict[str, float]:
    """lm-eval's ``results`` entries of the metrics: ``<metric>,none`` (the mean
    over the documents) and ``<metric>_stderr,none`` (sample standard deviation / sqrt(n))."""
    out: dict[str, float] = {}
    for name, total in sums.items():
        mean = total / n
        var = max(0.0, (squares[name] - n * mean * mean) / (n - 1)) if n > 1 else 0.0
        out[f"{name},none"], out[f"{name}_stderr,none"] = mean, (var / n) ** 0.5
    return out


def write_run(folder: Path, model: str, n: int, shift: float) -> Path:
    """An lm-eval output folder of ``model`` with N documents; its model sub-folder."""
    sub = folder / model
    sub.mkdir(parents=True, exist_ok=True)
    samples = sub / f"samples_{TASK}_{STAMP}.jsonl"
    results_file = sub / f"results_{STAMP}.json"
    if not (samples.exists() and results_file.exists()):
        rng = random.Random(0)  # the same documents in every run; log-likelihoods moved by ``shift``
        sums: dict[str, float] = {}
        squares: dict[str, float] = {}
        with samples.open("w", encoding="utf-8") as fh:
            for k in range(n):
                line, metrics = _line(k, rng, shift)
                fh.write(line + "\n")
                for name, value in metrics.items():
                    sums[name] = sums.get(name, 0.0) + value
                    squares[name] = squares.get(name, 0.0) + value * value
        results = {"results": {TASK: {"alias": TASK, **_aggregates(sums, squares, n)}},
                   "configs": {TASK: {"task": TASK, "metadata": {"version": 1.0}}},
                   "versions": {TASK: 1.0},
                   "n-samples": {TASK: {"original": n, "effective": n}},
                   "model_name": f"/models/{model}", "model_name_sanitized": model}
        results_file.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return sub


def _tree_rss_mb(pid: int) -> float:
    """RSS of a process and its descendants together, in MB (Linux /proc; 0 elsewhere or once gone)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total / 1024


def _sample_tree_rss(pid: int, peak: list[float], stop: threading.Event) -> None:
    while not stop.wait(0.05):
        peak[0] = max(peak[0], _tree_rss_mb(pid))


def timed(args: list[str], tree: str | None = None, timeout: float | None = None, cache: str = "off"
          ) -> tuple[float, float, float, float, int, str]:
    """(wall seconds, CPU seconds (user + system, children included), peak
    RSS in MB of the largest process, peak RSS of the process tree together
    (sampled every 50 ms), exit status, SHA-256 of its stdout) of one
    ``rankacc`` command (``tree``: the source tree to import it from;
    ``cache``: the samples cache folder, or ``off``; killed after ``timeout``
    seconds, exit status -9)."""
    cmd = [sys.executable, "-c", "import sys; from lm_eval_rankacc.cli import main; sys.exit(main())", *args]
    env = dict(os.environ, LM_EVAL_RANKACC_SAMPLES_CACHE=cache)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as an installed package runs: compiled once, not on every start
    if tree:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [tree, os.environ.get("PYTHONPATH")]))
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err_file, tempfile.TemporaryFile() as out_file:
        proc = subprocess.Popen(cmd, stdout=out_file, stderr=err_file, env=env,
                                cwd=tree)  # the tree first on sys.path, before the current folder's package
        timer = threading.Timer(timeout, proc.kill) if timeout else None
        if timer:
            timer.start()
        tree_peak, stop = [0.0], threading.Event()
        sampler = threading.Thread(target=_sample_tree_rss, args=(proc.pid, tree_peak, stop), daemon=True)
        sampler.start()
        _, status, rusage = os.wait4(proc.pid, 0)
        stop.set()
        sampler.join()
        if timer:
            timer.cancel()
        wall = time.perf_counter() - start
        err_file.seek(0)
        err = err_file.read().decode(errors="replace").strip()
        out_file.seek(0)
        digest = hashlib.sha256(out_file.read()).hexdigest()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        print(f"  {args[0]}: exit {proc.returncode}: {err.splitlines()[-1][:200] if err else ''}", file=sys.stderr)
    return wall, rusage.ru_utime + rusage.ru_stime, rusage.ru_maxrss / 1024, tree_peak[0], proc.returncode, digest


def _machine() -> str:
    """Cores, memory, CPU model and load of this machine (Linux /proc; less elsewhere)."""
    cpu = platform.processor() or "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
        mem = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal:"))) / 2**20
    except (OSError, StopIteration):
        mem = float("nan")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{os.cpu_count()} cores, {mem:.0f} GiB, {cpu}; load average {load:.2f}"


def _phases(name: str, argv: list[str], args: argparse.Namespace, cache_root: Path) -> None:
    """One command without the cache, with an empty one (first run) and with the full one (second
    run), ``--repeats`` times in rotation; medians, the ratios and whether the outputs agree."""
    results: dict[str, list[tuple]] = {"no cache": [], "first run": [], "second run": []}
    for r in range(args.repeats):
        folder = cache_root / f"{name}-{r}"
        shutil.rmtree(folder, ignore_errors=True)
        results["no cache"].append(timed(argv, args.tree, args.timeout, "off"))
        results["first run"].append(timed(argv, args.tree, args.timeout, str(folder)))
        results["second run"].append(timed(argv, args.tree, args.timeout, str(folder)))
        shutil.rmtree(folder, ignore_errors=True)
    wall = {phase: statistics.median(t[0] for t in rows) for phase, rows in results.items()}
    outputs = {t[5] for rows in results.values() for t in rows if not t[4]}
    for phase, rows in results.items():
        cpu = statistics.median(t[1] for t in rows)
        rss, tree_rss = max(t[2] for t in rows), max(t[3] for t in rows)
        failed = [t[4] for t in rows if t[4]]
        ratio = wall[phase] / wall["first run"]
        print(f"{name:<16} {phase:<11} {wall[phase]:8.2f} {cpu:8.1f} {rss:12,.0f} {tree_rss:17,.0f} "
              f"{ratio:9.1%}" + (f"  (exit {failed})" if failed else ""), flush=True)
    print(f"{name:<16} outputs of the three: {'the same bytes' if len(outputs) == 1 else 'DIFFER'}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="documents per samples file")
    parser.add_argument("--dir", default=None, help="where to write the runs (kept, reused for the same N)")
    parser.add_argument("--commands", default="idealized,flips,compare,hardness,leaderboard")
    parser.add_argument("--tree", default=None, help="import lm_eval_rankacc from this source tree (e.g. an export "
                                                      "of an older commit: before/after figures)")
    parser.add_argument("--timeout", type=float, default=None, help="kill a command after this many seconds")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each phase (medians)")
    parser.add_argument("--many", type=int, default=0, help="also a leaderboard of this many runs ...")
    parser.add_argument("--many-n", type=int, default=100_000, help="... of this many documents each")
    args = parser.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="bench_analyses_")).resolve() / f"n{args.n}"
    start = time.perf_counter()
    ref, pol = write_run(root / "ref", "model-ref", args.n, 0.0), write_run(root / "pol", "model-pol", args.n, 20.0)
    size = (ref / f"samples_{TASK}_{STAMP}.jsonl").stat().st_size
    print(f"documents: {args.n:,}  samples file: {size / 1e6:,.0f} MB  (written/reused in "
          f"{time.perf_counter() - start:.1f} s, {root})")
    commands = {
        "idealized": ["idealized", str(ref)],
        "flips": ["flips", str(ref), str(pol)],
        "compare": ["compare", str(ref), str(pol)],
        "hardness": ["hardness", str(ref)],
        "leaderboard": ["leaderboard", str(ref), str(pol)],
    }
    many = [write_run(root.parent / f"many{args.many_n}" / f"run{k:02d}", f"model-{k:02d}", args.many_n, 2.0 * k)
            for k in range(args.many)]
    time.sleep(2.1)  # the cache leaves out a big file modified under 2 s ago (outputs/cache.py)
    print(f"machine: {_machine()}")
    print(f"{'command':<16} {'phase':<11} {'seconds':>8} {'CPU s':>8} {'peak RSS MB':>12} {'all processes MB':>17} "
          f"{'of first':>9}")
    cache_root = Path(tempfile.mkdtemp(prefix="bench_cache_", dir=root))
    for name in filter(None, args.commands.split(",")):
        _phases(name, commands[name], args, cache_root)
    if many:
        _phases(f"leaderboard x{args.many}", ["leaderboard", *map(str, many)], args, cache_root)
    shutil.rmtree(cache_root, ignore_errors=True)


if __name__ == "__main__":
    main()
