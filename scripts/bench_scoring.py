"""Benchmark: score the same documents three ways, side by side, in one run.

1. stock lm-eval ``hf`` backend (prompt re-encoded for every response),
2. ``hf-prefix`` (each shared prompt run once per document),
3. a naive loop: one forward pass per (prompt, response), batch size 1
   (the paper's released scorer runs the prompt again for every response
   too, but in padded batches).

Each method runs in its own subprocess (so peak memory is its own), in
rotation, ``--repeats`` times. Two times per run: the scoring stage
(``lm.loglikelihood`` on the tokenized requests, after the model is loaded;
for ``hf-prefix`` it includes its self-check) and the whole process (Python
start-up, imports, reading the data, loading the model, scoring), measured
around the subprocess. The table shows medians over the repeats; a speed-up
is the median over repeats of that repeat's ratio to stock ``hf`` (the
methods of one repeat run back to back, under the same load). It also prints
tokens/s (prompt + response tokens as the stock backend runs them), peak
memory, the bound of the optimisation (tokens the stock backend runs /
tokens with each prompt once; the share of it reached is for the scoring
stage), and the largest log-likelihood difference from stock.

``--batch-size N`` is lm-eval's ``--batch_size N``: stock ``hf`` runs N
requests per forward pass, padded to the longest; ``hf-prefix`` a token
budget of N x the longest request (the stock backend's largest batch),
several documents to a row.

Data: ``pairs`` = the first N clean pairs of the real HH-RLHF harmless-base
test split (``../shared/data`` beside the checkout by default); ``multi`` =
the same prompts with 4 responses each (the pair's two responses plus the two
responses of the next pair), to measure documents with n >= 4; ``many``: 15
responses each (the next pairs' too), as SHP multi's 10-20. Methods
``hf-prefix-packed`` and ``hf-prefix-cached`` force one route of ``hf-prefix``
(``prefix_route``); ``hf-prefix`` chooses per document. ``--n 0``: every clean
pair. ``--json PATH`` also writes every run (times, token counts, peak memory,
MFU, the log-likelihoods) for other scripts to combine (``scripts/gpu_bench.sh``).

    python scripts/bench_scoring.py --model "$(rankacc demo-model)" --n 200
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "hh-rlhf-harmless-base" / "test.jsonl.gz"


def load_docs(path: Path, n: int, kind: str) -> list[dict]:
    """The first ``n`` clean pairs (``n`` = 0: all), or, for ``multi``/``many``, as many documents of 4 / 15
    responses (the pair's and the next pairs' responses; the last documents, which would run short, left out)."""
    from lm_eval_rankacc.sources import hh_rlhf

    with gzip.open(path, "rt") as f:
        rows = [json.loads(line) for line in f]
    docs = hh_rlhf.convert(rows, "test").docs
    if kind in ("multi", "many"):  # 4, or 15 (SHP multi's 10-20), responses: this pair's and the next pairs'
        count = 4 if kind == "multi" else 15
        whole = len(docs) - count // 2  # documents that have count responses
        docs = [dict(d, responses=[r for e in docs[i:i + count // 2 + 1] for r in e["responses"]][:count],
                     ranks=list(range(1, count + 1))) for i, d in enumerate(docs[:min(n, whole) if n > 0 else whole])]
    return docs[:n] if n > 0 else docs


def requests_of(docs):
    from lm_eval.api.instance import Instance

    return [
        Instance("loglikelihood", doc=d, arguments=(d["prompt"], " " + r), idx=k)
        for d in docs for k, r in enumerate(d["responses"])
    ]


def run_one(args) -> dict:
    """In a subprocess: score all requests with one method, print JSON."""
    import torch

    torch.set_num_threads(args.threads)
    docs = load_docs(Path(args.data), args.n, args.kind)
    reqs = requests_of(docs)
    if args.method == "hf" or args.method.startswith("hf-prefix"):
        from lm_eval.api.registry import get_model

        route = {"prefix_route": args.method.split("-")[-1]} if args.method.count("-") == 2 else {}
        lm = get_model(args.method if not route else "hf-prefix")(
            pretrained=args.model, device=args.device, batch_size=args.batch_size, dtype=args.dtype, **route)
    else:
        from lm_eval.models.huggingface import HFLM

        lm = HFLM(pretrained=args.model, device=args.device, batch_size=1, dtype=args.dtype)
    encoded = [lm._encode_pair(*r.args) for r in reqs]
    stock_tokens = sum(len(c) + len(t) - 1 for c, t in encoded)
    once = {}
    for (c, t), r in zip(encoded, reqs):
        once.setdefault(tuple(c), 0)
        once[tuple(c)] += len(t) - 1
    needed = sum(len(c) + extra for c, extra in once.items())
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    if args.method == "naive":
        out = []
        with torch.no_grad():
            for c, t in encoded:
                ids = torch.tensor([c + t[:-1]], device=lm.device)
                lp = torch.log_softmax(lm.model(ids).logits[0, len(c) - 1 :].float(), -1)
                out.append(float(lp.gather(1, torch.tensor(t, device=lm.device)[:, None]).sum()))
    else:
        out = [ll for ll, _ in lm.loglikelihood(reqs, disable_tqdm=True)]
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    peak = (
        torch.cuda.max_memory_allocated() / 2**30
        if args.device.startswith("cuda")
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    )
    params = sum(p.numel() for p in lm.model.parameters())
    longest = max(len(c) + len(t) - 1 for c, t in encoded)
    return {"wall": wall, "stock_tokens": stock_tokens, "needed_tokens": needed, "peak_gib": peak, "logliks": out,
            "params": params, "longest": longest, "docs": len(docs),
            "mfu": mfu(params, needed, wall, args.peak_tflops) if args.device.startswith("cuda") else None}


def mfu(params: int, tokens: int, seconds: float, peak_tflops: float) -> float:
    """Model FLOPs utilisation of a forward pass: 2 x parameters x tokens / time / peak (tokens with each
    prompt once, so for stock ``hf`` it is the work it needed, not the work it ran)."""
    return 2 * params * tokens / seconds / (peak_tflops * 1e12)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a transformers model folder or hub id")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--n", type=int, default=200, help="documents (0: all)")
    ap.add_argument("--kinds", default="pairs,multi")
    ap.add_argument("--methods", default="hf,hf-prefix,naive")
    ap.add_argument("--batch-size", default="8", help="an integer or auto (see above)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="for MFU on a GPU (H100/H200 bf16 dense)")
    ap.add_argument("--json", help="also write every run as JSON to this file")
    ap.add_argument("--method", help=argparse.SUPPRESS)
    ap.add_argument("--kind", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.method:
        print(json.dumps(run_one(args)))
        return
    if not Path(args.data).is_file():
        sys.exit(f"bench_scoring: no data at {args.data} (the real HH-RLHF harmless-base test split); pass --data")
    every: dict[str, dict[str, list[dict]]] = {}
    for kind in args.kinds.split(","):
        runs = every.setdefault(kind, {})
        for _ in range(args.repeats):
            for method in args.methods.split(","):
                runs.setdefault(method, []).append(run_subprocess(method, kind))
        report(kind, runs, args)
    if args.json:
        settings = {k: getattr(args, k) for k in ("model", "batch_size", "device", "dtype", "threads", "peak_tflops")}
        Path(args.json).write_text(json.dumps({"settings": settings, "runs": every}), encoding="utf-8")


def run_subprocess(method: str, kind: str) -> dict:
    """One method on one kind of data in a fresh process; its JSON plus the process's wall time."""
    cmd = [sys.executable, __file__, *sys.argv[1:], "--method", method, "--kind", kind]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    process = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{method} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]), process=process)


def report(kind: str, runs: dict[str, list[dict]], args) -> None:
    """The table of one kind: medians over repeats, speed-ups as medians of same-repeat ratios."""
    stock_runs = runs.get("hf") or next(iter(runs.values()))
    stock = stock_runs[0]
    bound = stock["stock_tokens"] / stock["needed_tokens"]
    size = args.batch_size
    budget = f"{int(size) * stock['longest']:,} tokens" if size.isdigit() else "detected"
    print(f"\n{kind}: {stock['docs']} documents, {len(stock['logliks'])} requests, {args.device} {args.dtype}, "
          f"{args.threads} thread(s), {args.repeats} repeat(s), medians")
    print(f"batch size {size}: hf {size} requests per forward pass; hf-prefix a budget of {size} x the longest "
          f"request ({stock['longest']} tokens) = {budget} per forward pass")
    print(f"tokens as stock hf runs them: {stock['stock_tokens']:,}; with each prompt once: "
          f"{stock['needed_tokens']:,}; bound on the speed-up: {bound:.2f}x")
    print("| method | scoring s | speed-up | share of bound | whole process s | speed-up | tokens/s (scoring) "
          "| peak GiB | max |dLL| vs hf | MFU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for method, rs in runs.items():
        wall = statistics.median(r["wall"] for r in rs)
        process = statistics.median(r["process"] for r in rs)
        speed = statistics.median(s["wall"] / r["wall"] for s, r in zip(stock_runs, rs))
        whole = statistics.median(s["process"] / r["process"] for s, r in zip(stock_runs, rs))
        diff = max(abs(a - b) for a, b in zip(rs[0]["logliks"], stock["logliks"]))
        mfu_text = f"{mfu(rs[0]['params'], stock['needed_tokens'], wall, args.peak_tflops):.1%}" \
            if args.device.startswith("cuda") else "n/a"
        share = "-" if method == "hf" else f"{speed / bound:.0%}"
        print(f"| {method} | {wall:.2f} | {speed:.2f}x | {share} | {process:.1f} | {whole:.2f}x | "
              f"{stock['stock_tokens'] / wall:,.0f} | {max(r['peak_gib'] for r in rs):.2f} | {diff:.2e} | {mfu_text} |")


if __name__ == "__main__":
    main()
