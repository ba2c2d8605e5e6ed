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


def make_neox(path: Path, tokenizer_path: str, dtype: str) -> Path:
    """A random-initialised GPT-NeoX of Pythia-1.4B's shape, saved with a tokenizer."""
    import torch
    from transformers import AutoTokenizer, GPTNeoXConfig, GPTNeoXForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_path)
    config = GPTNeoXConfig(**NEOX_1_4B, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
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


# ----------------------------------------------------------------- driver
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None,
                    help="a transformers folder; default: the demo SmolLM2-135M-Instruct; 'neox-1.4b': random 1.4B GPT-NeoX")
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
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--pairs-file", help=argparse.SUPPRESS)
    cfg = ap.parse_args()
    if cfg.worker:
        run_worker(cfg)
        return
    if not Path(cfg.data).is_file():
        print(f"bench_training: skipped: no data at {cfg.data} (the real HH-RLHF harmless-base test split); "
              "pass --data", file=sys.stderr)
        return
    from lm_eval_rankacc.loading.demo_model import ensure_smollm2

    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        tmp = Path(tmp)
        tokenizer = cfg.tokenizer or (cfg.model if cfg.model and cfg.model != "neox-1.4b" else str(ensure_smollm2()))
        if cfg.model == "neox-1.4b":
            cfg.model = str(make_neox(tmp / "neox-1.4b", tokenizer, cfg.dtype))
        elif not cfg.model:
            cfg.model = tokenizer
        pairs = select_pairs(Path(cfg.data), tokenizer, cfg.pairs, cfg.max_length)
        pairs = pairs[: len(pairs) // cfg.batch_size * cfg.batch_size]  # whole batches only
        pairs_file = tmp / "pairs.json"
        pairs_file.write_text(json.dumps(pairs), encoding="utf-8")
        tokens = sum(p["tokens"] for p in pairs)
        packed_tokens = sum(p["packed_tokens"] for p in pairs)
        from transformers import AutoConfig

        import torch
        from transformers import AutoModelForCausalLM

        with torch.device("meta"):
            params = sum(p.numel() for p in AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(cfg.model)).parameters())
        runs: dict[str, list[dict]] = {}
        for _ in range(cfg.repeats):
            for impl in cfg.impls.split(","):
                python = cfg.trl_python if impl.startswith("trl") else sys.executable
                cmd = [python, __file__, "--worker", impl, "--pairs-file", str(pairs_file), "--model", cfg.model,
                       "--batch-size", str(cfg.batch_size), "--max-length", str(cfg.max_length),
                       "--device", cfg.device, "--dtype", cfg.dtype, "--threads", str(cfg.threads)]
                env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                       "TOKENIZERS_PARALLELISM": "false", "TQDM_DISABLE": "1"}
                done = subprocess.run(cmd, capture_output=True, text=True, env=env)
                lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
                if done.returncode or not lines:
                    print(f"{impl} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
                    continue
                res = json.loads(lines[-1][len("RESULT "):])
                if "skipped" in res:
                    print(f"{impl}: skipped: {res['skipped']}", file=sys.stderr)
                    continue
                runs.setdefault(impl, []).append(res)
        steps = len(pairs) // cfg.batch_size
        print(f"\n{cfg.model}: {params / 1e6:.1f}M parameters; {len(pairs)} HH-RLHF pairs, batch {cfg.batch_size}, "
              f"{steps} steps, max length {cfg.max_length}, {cfg.device} {cfg.dtype}, {cfg.threads} threads, "
              f"{cfg.repeats} repeat(s), medians")
        print(f"tokens (prompt + response, both sequences of each pair): {tokens:,}; "
              f"with each prompt once (packed): {packed_tokens:,} ({tokens / packed_tokens:.2f}x fewer)")
        header = "| implementation | ref + train s | tokens/s | total s | peak GiB | train loss | vs trl |"
        if cfg.device == "cuda":
            header += " MFU |"
        print(header)
        print("|" + "---|" * (header.count("|") - 1))
        base = statistics.median(r["timed_s"] for r in runs["trl"]) if "trl" in runs else None
        for impl, rs in runs.items():
            timed = statistics.median(r["timed_s"] for r in rs)
            line = (f"| {impl}{' ' + rs[0]['version'] if 'version' in rs[0] else ''} | {timed:.1f} | "
                    f"{tokens / timed:,.0f} | {statistics.median(r['total_s'] for r in rs):.1f} | "
                    f"{max(r['peak_gib'] for r in rs):.2f} | {rs[0]['train_loss']:.4f} | "
                    f"{'' if base is None else f'{base / timed:.2f}x'} |")
            if cfg.device == "cuda":
                line += f" {8 * params * tokens / timed / PEAK_FLOPS:.1%} |"
            print(line)


if __name__ == "__main__":
    main()
