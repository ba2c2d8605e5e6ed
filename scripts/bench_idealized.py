"""Benchmark: idealized ranking accuracy (R* and R~*) of N pair documents over a
beta grid, with the vectorised rules of :mod:`lm_eval_rankacc.core.theory`.

Times what ``rankacc idealized`` computes per task once the samples are read:
per-token scores and tie scores, the log-odds of the rater proportions, the
idealized correctness of every document for every beta (summed and per
token), the observed correctness, and the means for ties excluded and
included. Reading JSON is not timed. Runs pinned to one CPU core where the OS
allows; prints the median (and min / max) of ``--repeats`` runs.

    python scripts/bench_idealized.py --n 1000000 --betas 0.01,0.1,1,5,10 --repeats 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

from lm_eval_rankacc.core import theory  # noqa: E402


def make_data(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Pairs like real preference data: log-likelihoods of -500..0 nats,
    10 % human ties (alpha 0.5), 20 % without rater proportions (NaN)."""
    rng = np.random.default_rng(seed)
    loglik = -rng.gamma(2.0, 40.0, size=(n, 2))
    n_tokens = rng.integers(1, 400, size=(n, 2)).astype(float)
    ranks = np.where((rng.random(n) < 0.5)[:, None], [1, 2], [2, 1])  # either response preferred
    tie = rng.random(n) < 0.1
    ranks[tie] = 1
    share = rng.choice([0.6, 2 / 3, 0.75, 1.0], n)  # of the preferred response
    alpha = np.where(ranks[:, 0] < ranks[:, 1], share, 1.0 - share)
    alpha[tie] = 0.5
    alpha[rng.random(n) < 0.2] = np.nan
    return {"loglik": loglik, "n_tokens": n_tokens, "ranks": ranks, "alpha": alpha}


def run_once(data: dict[str, np.ndarray], betas: list[float]) -> dict[str, np.ndarray]:
    ll, ranks, alpha = data["loglik"], data["ranks"], data["alpha"]
    per_tok = theory.per_units(ll, data["n_tokens"])
    tie_norm = np.exp(per_tok)
    star = theory.idealized_rankings_correct(ll, ranks, alpha, betas)
    star_norm = theory.idealized_rankings_correct(per_tok, ranks, alpha, betas, tie_norm)
    observed = theory.rankings_correct(ll, ranks)
    observed_norm = theory.rankings_correct(per_tok, ranks, tie_norm)
    strict = ranks[:, 0] != ranks[:, 1]
    return {
        "R* excluded": star[:, strict].mean(axis=1), "R* included": star.mean(axis=1),
        "R~* excluded": star_norm[:, strict].mean(axis=1), "R~* included": star_norm.mean(axis=1),
        "R excluded": observed[strict].mean(), "R~ excluded": observed_norm[strict].mean(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--betas", default="0.01,0.1,1,5,10")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    betas = [float(b) for b in args.betas.split(",")]
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    data = make_data(args.n)
    run_once(data, betas)  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        out = run_once(data, betas)
        times.append(time.perf_counter() - start)
    print(f"documents: {args.n:,}  betas: {betas}  cores: {cores}  numpy {np.__version__}")
    for key, value in out.items():
        print(f"  {key}: {np.round(value, 4).tolist()}")
    print(
        f"R*, R~*, R, R~ (ties excluded and included) for {args.n:,} docs x {len(betas)} betas: "
        f"median {statistics.median(times):.3f} s (min {min(times):.3f}, max {max(times):.3f}) "
        f"over {args.repeats} repeats"
    )


if __name__ == "__main__":
    main()
