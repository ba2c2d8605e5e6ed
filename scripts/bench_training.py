"""Benchmark: DPO training throughput and peak memory, ``rankacc dpo`` beside
TRL's ``DPOTrainer``, on the same pairs and settings, in one run.

Implementations (``--impls``), each in its own subprocess (so that peak memory
is its own), in rotation over ``--repeats``; the table shows medians:

- ``rankacc``: ``train_dpo`` (reference pass once, then training; packed
  prompt layout); ``rankacc-plain``: the same without packing;
- ``trl``: TRL's ``DPOTrainer`` with its defaults for the reference (a second
  model in memory, a reference forward at every step);
  ``trl-precompute``: ``precompute_ref_log_probs=True``.

Same for all: the model, the first ``--pairs`` pairs of the real HH-RLHF
harmless-base test split that fit in ``--max-length`` tokens (so no
implementation truncates), one epoch, batch size ``--batch-size``, RMSprop,
learning rate 1e-6 constant, beta 0.1, no gradient checkpointing, no
evaluation, no checkpoint, ``--threads`` torch threads. TRL appends an EOS
token to each response (2 tokens more per pair); throughput is counted on the
same tokens for every implementation: prompt + response of both sequences of
each pair (as the plain layout runs them, no padding).

Timed: reference pass + training (``tokens/s``), and end to end including
model loading and tokenization (``total s``). TRL is not a dependency of the
package: install it for the benchmark (``pip install trl``, or into a
separate environment and pass ``--trl-python``); without it the TRL rows are
skipped with a message.

CPU (small model)::

    python scripts/bench_training.py --model "$(rankacc demo-model)" --pairs 48 --batch-size 4

GPU, a random-initialised 1.4B-parameter GPT-NeoX (Pythia-1.4B shape), bf16
mixed precision; prints MFU = 8 x parameters x tokens / time / peak
(8 = 6 for the policy's forward and backward + 2 for the reference forward;
peak 989e12 FLOP/s, H100 dense bf16)::

    python scripts/bench_training.py --model neox-1.4b --device cuda --dtype bfloat16 --pairs 512 --batch-size 8

With packing, rankacc runs each prompt once, so fewer FLOPs are executed than
the formula counts: its MFU is an *effective* MFU (the work an unpacked
trainer would need for the same pairs).
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
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "hh-rlhf-harmless-base" / "test.jsonl.gz"
NEOX_1_4B = dict(hidden_size=2048, num_hidden_layers=24, num_attention_heads=16, intermediate_size=8192,
                 vocab_size=50304, rotary_pct=0.25, max_position_embeddings=2048, use_parallel_residual=True)
#: A tiny GPT-NeoX of the same family, for a CPU dry run of the GPU command (``--model neox-tiny``).
NEOX_TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
                 vocab_size=50304, rotary_pct=0.25, max_position_embeddings=2048, use_parallel_residual=True)
NEOX_SHAPES = {"neox-1.4b": NEOX_1_4B, "neox-tiny": NEOX_TINY}
PEAK_FLOPS = 989e12


# ----------------------------------------------------------------- data and models
def select_pairs(data: Path, tokenizer_path: str, n: int, max_length: int) -> list[dict]:
    """The first ``n`` clean HH-RLHF pairs whose prompt + longer response (+ EOS) fit in ``max_length``."""
    from transformers import AutoTokenizer

    from lm_eval_rankacc.sources import hh_rlhf
    from lm_eval_rankacc.training.tokens import encode_pairs

    with gzip.open(data, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    docs = hh_rlhf.convert(rows, "test").docs
    tok = AutoTokenizer.from_pretrained(tokenizer_path)
    out = []
    for start in range(0, len(docs), 256):
        chunk = docs[start:start + 256]
        p_ids, r_ids = encode_pairs(tok, [d["prompt"] for d in chunk], [d["responses"] for d in chunk])
        for d, p, rs in zip(chunk, p_ids, r_ids):
            if len(p) + max(len(r) for r in rs) + 1 <= max_length and len(p) < max_length // 2 and all(rs) \
                    and rs[0] != rs[1]:
                out.append({"prompt": d["prompt"], "chosen": d["responses"][0], "rejected": d["responses"][1],
                            "tokens": 2 * len(p) + len(rs[0]) + len(rs[1]), "packed_tokens": len(p) + len(rs[0]) + len(rs[1])})
            if len(out) == n:
                return out
    return out


def make_neox(path: Path, tokenizer_path: str, dtype: str, shape: dict | None = None) -> Path:
    """A random-initialised GPT-NeoX of Pythia-1.4B's shape (or ``shape``), saved with a tokenizer."""
    import torch
    from transformers import AutoTokenizer, GPTNeoXConfig, GPTNeoXForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_path)
    config = GPTNeoXConfig(**(shape or NEOX_1_4B), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                           pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
    torch.manual_seed(0)
    model = GPTNeoXForCausalLM(config)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


# ----------------------------------------------------------------- workers
def _peak_gib(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def worker_rankacc(cfg: argparse.Namespace, pairs: list[dict], work: Path, packed: bool) -> dict:
    import logging

    from lm_eval_rankacc.training import DPOConfig, train_dpo

    logging.getLogger("lm_eval_rankacc.training").setLevel(logging.ERROR)
    data = work / "pairs.jsonl"
    data.write_text("".join(json.dumps({"id": f"hh/{i}", "prompt": p["prompt"], "responses": [p["chosen"], p["rejected"]],
                                        "ranks": [1, 2]}) + "\n" for i, p in enumerate(pairs)), encoding="utf-8")
    val = work / "val.jsonl"  # train_dpo needs validation data; two pairs, never evaluated here
    val.write_text("".join(data.read_text().splitlines(keepends=True)[:2]), encoding="utf-8")
    config = DPOConfig(
        model_name_or_path=cfg.model, data_files=[str(data)], eval_data_files=[str(val)],
        eval_fraction=1.0, tracking_size=0, plots=False, reference_cache=False, packing=packed,
        max_length=cfg.max_length, max_prompt_length=cfg.max_length // 2,
        output_dir=str(work / "out"), per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size, num_train_epochs=1, learning_rate=1e-6,
        lr_scheduler_type="constant", warmup_steps=0, eval_strategy="no", eval_on_start=False, save_strategy="no",
        logging_steps=10**6, report_to="none", disable_tqdm=True, use_cpu=cfg.device == "cpu",
        bf16=cfg.dtype == "bfloat16", dataloader_num_workers=0, seed=0, max_grad_norm=1.0,
    )
    if cfg.device.startswith("cuda"):
        import torch

        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = train_dpo(config)
    _sync(cfg.device)
    total = time.perf_counter() - start
    timed = result.timings["reference_s"] + result.timings["train_s"]
    return {"timed_s": timed, "total_s": total, "steps": result.global_step,
            "train_loss": result.metrics.get("train_loss"), "peak_gib": _peak_gib(cfg.device)}


def worker_trl(cfg: argparse.Namespace, pairs: list[dict], work: Path, precompute: bool) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        import trl
        from trl import DPOConfig, DPOTrainer
    except ImportError as err:
        return {"skipped": f"TRL is not installed in {sys.executable} ({err}); `pip install trl` or pass --trl-python"}
    ds = Dataset.from_list([{"prompt": p["prompt"], "chosen": " " + p["chosen"], "rejected": " " + p["rejected"]}
                            for p in pairs])
    config = DPOConfig(
        output_dir=str(work / "trl"), per_device_train_batch_size=cfg.batch_size, num_train_epochs=1,
        learning_rate=1e-6, optim="rmsprop", lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        beta=0.1, loss_type=["sigmoid"], max_length=cfg.max_length, gradient_checkpointing=False,
        bf16=cfg.dtype == "bfloat16", fp16=False, eval_strategy="no", save_strategy="no", logging_steps=10**6,
        report_to="none", disable_tqdm=True, use_cpu=cfg.device == "cpu", dataloader_num_workers=0, seed=0,
        precompute_ref_log_probs=precompute, precompute_ref_batch_size=cfg.batch_size, max_grad_norm=1.0,
    )
    if cfg.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(cfg.model)
    model = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=torch.float32)
    timer = {"precompute_s": 0.0}
    original = DPOTrainer._precompute_ref_logps

    def timed_precompute(self, *a, **k):  # noqa: ANN001
        t0 = time.perf_counter()
        try:
            return original(self, *a, **k)
        finally:
            _sync(cfg.device)
            timer["precompute_s"] += time.perf_counter() - t0

    DPOTrainer._precompute_ref_logps = timed_precompute
    trainer = DPOTrainer(model=model, args=config, train_dataset=ds, processing_class=tok)
    t1 = time.perf_counter()
    out = trainer.train()
    _sync(cfg.device)
    train_s = time.perf_counter() - t1
    return {"timed_s": train_s + timer["precompute_s"], "total_s": time.perf_counter() - start,
            "steps": trainer.state.global_step, "train_loss": out.metrics.get("train_loss"),
            "peak_gib": _peak_gib(cfg.device), "version": trl.__version__}


def run_worker(cfg: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(cfg.threads)
    pairs = json.loads(Path(cfg.pairs_file).read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        work = Path(tmp)
        if cfg.worker in ("rankacc", "rankacc-plain"):
            res = worker_rankacc(cfg, pairs, work, packed=cfg.worker == "rankacc")
        else:
            res = worker_trl(cfg, pairs, work, precompute=cfg.worker == "trl-precompute")
    print("RESULT " + json.dumps(res))


# ----------------------------------------------------------------- row cost calibration
def calibrate(cfg: argparse.Namespace) -> None:
    """Fit forward + backward time = c0 + c1 tokens + c2 sum(row width^2) over rows of
    single sequences under a dense 4-D causal mask (as packed batches run), and print
    c2 / c1 (the measured attention cost per query-key pair, in token units) beside
    the counted one of ``training.scoring.attention_cost``."""
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    from lm_eval_rankacc.training import scoring

    torch.set_num_threads(cfg.threads)
    model = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=torch.float32, attn_implementation="sdpa").train()
    vocab = model.config.vocab_size

    def step(rows: int, width: int) -> float:
        ids = torch.randint(0, vocab, (rows, width))
        mask = torch.ones(width, width, dtype=torch.bool).tril()[None, None].expand(rows, 1, width, width)
        keep = torch.zeros(rows, width, dtype=torch.bool)
        keep[:, width // 2:] = True
        t0 = time.process_time()
        logits = model(input_ids=ids, attention_mask=mask, position_ids=torch.arange(width).expand(rows, width),
                       logits_to_keep=keep, use_cache=False).logits
        logits.logsumexp(-1).sum().backward()
        model.zero_grad(set_to_none=True)
        return time.process_time() - t0

    shapes = [(1, 256), (1, 512), (1, 768), (1, 1024), (2, 256), (4, 256), (2, 512), (3, 341)]
    step(1, 64)
    times = {s: [] for s in shapes}
    for _ in range(cfg.repeats):
        for s in shapes:
            times[s].append(step(*s))
    x = np.array([[1.0, r * w, r * w * w] for r, w in shapes])
    y = np.array([statistics.median(times[s]) for s in shapes])
    c = np.linalg.lstsq(x, y, rcond=None)[0]
    counted = scoring.attention_cost(model) / scoring.MASKED_ATTENTION_SLOWDOWN
    print(f"CPU seconds, forward + backward, medians of {cfg.repeats}: "
          + ", ".join(f"{r}x{w}: {t:.3f}" for (r, w), t in zip(shapes, y)))
    print(f"fit: {c[0]:.3g} s + {c[1]:.3g} s/token + {c[2]:.3g} s/(query-key pair); attention cost measured "
          f"{c[2] / c[1]:.3g}, counted {counted:.3g}: slowdown {c[2] / c[1] / counted:.2f} "
          f"(scoring.MASKED_ATTENTION_SLOWDOWN = {scoring.MASKED_ATTENTION_SLOWDOWN})")


def run_impls(cfg: argparse.Namespace, pairs_file: Path) -> dict[str, list[dict]]:
    """Each implementation in its own worker process, in rotation over ``--repeats``."""
    runs: dict[str, list[dict]] = {}
    for _ in range(cfg.repeats):
        for impl in cfg.impls.split(","):
            python = cfg.trl_python if impl.startswith("trl") else sys.executable
            cmd = [python, __file__, "--worker", impl, "--pairs-file", str(pairs_file), "--model", cfg.model,
                   "--batch-size", str(cfg.batch_size), "--max-length", str(cfg.max_length),
                   "--device", cfg.device, "--dtype", cfg.dtype, "--threads", str(cfg.threads)]
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                   "TOKENIZERS_PARALLELISM": "false", "TQDM_DISABLE": "1"}
            t0 = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True, env=env)
            process_s = time.perf_counter() - t0
            lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
            if done.returncode or not lines:
                print(f"{impl} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
                continue
            res = json.loads(lines[-1][len("RESULT "):])
            if "skipped" in res:
                print(f"{impl}: skipped: {res['skipped']}", file=sys.stderr)
                continue
            res["process_s"] = process_s  # the whole worker process: start-up and imports included
            runs.setdefault(impl, []).append(res)
    return runs


def print_table(cfg: argparse.Namespace, runs: dict[str, list[dict]], pairs: list[dict], params: int) -> None:
    """The medians of every implementation's runs, ratios to TRL's, as a Markdown table."""
    tokens = sum(p["tokens"] for p in pairs)
    packed_tokens = sum(p["packed_tokens"] for p in pairs)
    steps = len(pairs) // cfg.batch_size
    print(f"\n{cfg.model}: {params / 1e6:.1f}M parameters; {len(pairs)} HH-RLHF pairs, batch {cfg.batch_size}, "
          f"{steps} steps, max length {cfg.max_length}, {cfg.device} {cfg.dtype}, {cfg.threads} threads, "
          f"{cfg.repeats} repeat(s), medians")
    print(f"tokens (prompt + response, both sequences of each pair): {tokens:,}; "
          f"with each prompt once (packed): {packed_tokens:,} ({tokens / packed_tokens:.2f}x fewer)")
    header = ("| implementation | ref + train s | tokens/s | total s | process s | peak GiB | train loss | vs trl "
              "| vs trl-precompute | process vs trl |")
    if cfg.device == "cuda":
        header += " MFU |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    med = {impl: {k: statistics.median(r[k] for r in rs) for k in ("timed_s", "total_s", "process_s")}
           for impl, rs in runs.items()}
    ratio = (lambda base, impl, key: f"{med[base][key] / med[impl][key]:.2f}x" if base in med else "")
    for impl, rs in runs.items():
        timed = med[impl]["timed_s"]
        line = (f"| {impl}{' ' + rs[0]['version'] if 'version' in rs[0] else ''} | {timed:.1f} | "
                f"{tokens / timed:,.0f} | {med[impl]['total_s']:.1f} | {med[impl]['process_s']:.1f} | "
                f"{max(r['peak_gib'] for r in rs):.2f} | {rs[0]['train_loss']:.4f} | {ratio('trl', impl, 'timed_s')} "
                f"| {ratio('trl-precompute', impl, 'timed_s')} | {ratio('trl', impl, 'process_s')} |")
        if cfg.device == "cuda":
            line += f" {8 * params * tokens / timed / PEAK_FLOPS:.1%} |"
        print(line)


# ----------------------------------------------------------------- driver
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None,
                    help="a transformers folder; default: the demo SmolLM2-135M-Instruct; 'neox-1.4b': random 1.4B GPT-NeoX; "
                         "'neox-tiny': a random 2-layer GPT-NeoX (a CPU dry run of the GPU command)")
    ap.add_argument("--tokenizer", default=None, help="tokenizer for neox-1.4b (default: the demo model's)")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--pairs", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--impls", default="rankacc,rankacc-plain,trl,trl-precompute")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                    help="bfloat16: mixed precision (--bf16) with float32 weights, for both")
    ap.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
    ap.add_argument("--trl-python", default=sys.executable, help="the interpreter that has TRL installed")
    ap.add_argument("--calibrate", action="store_true",
                    help="fit the row-cost model of packed batches on --model (core/batch_rows.py) and exit")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--pairs-file", help=argparse.SUPPRESS)
    cfg = ap.parse_args()
    if cfg.worker:
        run_worker(cfg)
        return
    if cfg.calibrate:
        from lm_eval_rankacc.loading.demo_model import ensure_smollm2

        cfg.model = cfg.model or str(ensure_smollm2())
        calibrate(cfg)
        return
    if not Path(cfg.data).is_file():
        print(f"bench_training: skipped: no data at {cfg.data} (the real HH-RLHF harmless-base test split); "
              "pass --data", file=sys.stderr)
        return
    from lm_eval_rankacc.loading.demo_model import ensure_smollm2

    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        tmp = Path(tmp)
        tokenizer = cfg.tokenizer or (cfg.model if cfg.model and cfg.model not in NEOX_SHAPES else str(ensure_smollm2()))
        if cfg.model in NEOX_SHAPES:
            cfg.model = str(make_neox(tmp / cfg.model, tokenizer, cfg.dtype, NEOX_SHAPES[cfg.model]))
        elif not cfg.model:
            cfg.model = tokenizer
        pairs = select_pairs(Path(cfg.data), tokenizer, cfg.pairs, cfg.max_length)
        pairs = pairs[: len(pairs) // cfg.batch_size * cfg.batch_size]  # whole batches only
        pairs_file = tmp / "pairs.json"
        pairs_file.write_text(json.dumps(pairs), encoding="utf-8")
        from transformers import AutoConfig

        import torch
        from transformers import AutoModelForCausalLM

        with torch.device("meta"):
            params = sum(p.numel() for p in AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(cfg.model)).parameters())
        runs = run_impls(cfg, pairs_file)
        print_table(cfg, runs, pairs, params)


if __name__ == "__main__":
    main()
