"""``train_dpo`` and ``train_sft``: data, models and Trainer put together.

DPO, in order: documents -> pairs -> tokens (:mod:`.data`); the reference
model scores every pair once (batched, no grad) and is freed, or, when it is
also the starting policy (the usual case), simply trained on; the
:class:`.trainer.PreferenceTrainer` trains, evaluates the tracked sets at every
evaluation step (:mod:`.tracking`), saves checkpoints and marks the best one.

Files in ``output_dir``: ``training_config.json`` (all options, data counts),
``reference_logps.npz`` (the reference pass, reused by a resumed run),
``tracking.jsonl`` and ``tracking_summary.jsonl``, ``figure2_flips.png`` and
``figure3_loss_vs_c.png``, the Trainer's ``checkpoint-<step>/`` folders (plain
transformers folders, tokenizer included), ``best_checkpoint.json`` and the
link ``best_checkpoint``.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lm_eval_rankacc import harness
from lm_eval_rankacc.training import data as tdata
from lm_eval_rankacc.training.args import DataArguments, DPOArguments, SFTArguments, check, to_jsonable

log = logging.getLogger("lm_eval_rankacc.training")

REFERENCE_CACHE = "reference_logps.npz"
CONFIG_FILE = "training_config.json"


@dataclass
class RunResult:
    """What a training call did."""

    output_dir: Path
    global_step: int
    best_checkpoint: Path | None
    stopped_by_signal: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


# ----------------------------------------------------------------- models
#: The oldest transformers these commands run on (``dtype=`` in from_pretrained,
#: ``processing_class``, ``eval_strategy``, ``eval_on_start``).
MIN_TRANSFORMERS = "4.56"


def _check_transformers() -> None:
    import transformers
    from packaging.version import Version

    if Version(transformers.__version__) < Version(MIN_TRANSFORMERS):
        raise RuntimeError(f"rankacc sft / dpo need transformers >= {MIN_TRANSFORMERS}, "
                           f"found {transformers.__version__}")


def _dtype(name: str):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}[name]


def load_tokenizer(args: DataArguments):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(args.tokenizer_name or args.model_name_or_path,
                                        trust_remote_code=args.trust_remote_code)
    return tok


def pad_id(tokenizer) -> int:  # noqa: ANN001
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if tid is not None:
            return int(tid)
    return 0


def load_model(path: str, args: DataArguments):
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": _dtype(args.model_dtype), "trust_remote_code": args.trust_remote_code}
    if args.attn_implementation:
        kwargs["attn_implementation"] = args.attn_implementation
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if args.disable_dropout:
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
    if getattr(model.config, "use_cache", None):
        model.config.use_cache = False
    return model


def _same_model(a: str, b: str) -> bool:
    pa, pb = Path(a), Path(b)
    if pa.exists() and pb.exists():
        return pa.resolve() == pb.resolve()
    return a == b


def _log_counts(what: str, counts) -> None:  # noqa: ANN001
    for reason, n in sorted(counts.items()):
        log.warning("%s: skipped %d %s", what, n, reason)


def _write_config(output_dir: Path, payload: dict[str, Any]) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    tmp = output_dir / (CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps(to_jsonable(payload), indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, output_dir / CONFIG_FILE)


def _resume_arg(targs) -> Any:  # noqa: ANN001
    value = getattr(targs, "resume_from_checkpoint", None)
    if isinstance(value, str) and value.lower() in ("true", "last", "latest"):
        return True
    return value or None


# ----------------------------------------------------------------- DPO data
@dataclass
class PreferenceData:
    """The pair sets of a DPO run and what was left out."""

    train: Any
    validation: Any
    tracking: Any | None
    rest: Any
    info: dict[str, Any]
    encoded: list[Any]


def build_pair_sets(args: DPOArguments, tokenizer) -> PreferenceData:  # noqa: ANN001
    from lm_eval_rankacc.training.scoring import PairDataset

    splits = tdata.load_splits(args.task, args.data_files, args.split, args.train_sample_size, args.eval_task,
                               args.eval_data_files, args.eval_split, args.eval_fraction, args.split_seed)
    for note in splits.notes:
        log.warning("%s", note)
    sets, info, encoded = {}, {"task": splits.task, "validation_source": splits.validation_source}, []
    for name, docs in (("train", splits.train), ("validation", splits.validation)):
        pairs, skipped = tdata.documents_to_pairs(docs)
        _log_counts(f"{splits.task} ({name})", skipped)
        if not pairs:
            raise tdata.TrainingDataError(f"{splits.task}: no {name} pairs (every pair is a human tie?)")
        enc = tdata.encode(tokenizer, [p.pair_id for p in pairs], [p.prompt for p in pairs],
                           [[p.chosen, p.rejected] for p in pairs], args.max_length, args.max_prompt_length)
        if enc.truncated:
            log.warning("%s (%s): %d of %d pairs truncated to %d tokens (prompt from the left)",
                        splits.task, name, enc.truncated, len(enc), args.max_length)
        sets[name] = PairDataset(name, enc.ids, [p.doc_id for p in pairs], enc.prompt,
                                 [r[0] for r in enc.responses], [r[1] for r in enc.responses])
        encoded.append(enc)
        info[name] = {"documents": len(docs), "pairs": len(pairs), "skipped": dict(skipped),
                      "truncated": enc.truncated, "tokens": sets[name].tokens()}
    train, validation = sets["train"], sets["validation"]
    validation = validation.view("validation", np.arange(len(validation.ids)))
    tracked = np.array(harness.sample_indices(len(train.ids), args.tracking_size, args.tracking_seed)
                       if args.tracking_size else [], dtype=np.int64)
    tracking = train.view("tracking", tracked) if len(tracked) else None
    rest = train.view("reference", np.setdiff1d(np.arange(len(train.ids)), tracked))
    info["tracking_pairs"] = int(len(tracked))
    return PreferenceData(train, validation, tracking, rest, info, encoded)


def _model_signature(path: str) -> list:
    """The weight files of a local model folder (name, size, mtime): a model
    retrained into the same folder does not reuse stale reference scores."""
    folder = Path(path)
    if not folder.is_dir():
        return [path]
    files = sorted(f for f in folder.resolve().iterdir() if f.suffix in (".safetensors", ".bin", ".json"))
    return [str(folder.resolve())] + [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]


def _cache_key(args: DPOArguments, ref_path: str, packed: bool, targs, pdata: PreferenceData) -> str:  # noqa: ANN001
    return tdata.fingerprint(_model_signature(ref_path),
                             args.model_dtype, args.attn_implementation, packed, targs.per_device_eval_batch_size,
                             bool(targs.bf16), bool(targs.fp16), args.tracking_size, args.tracking_seed,
                             *pdata.encoded)


def _load_cache(path: Path, key: str, pdata: PreferenceData) -> bool:
    if not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return False
            pdata.train.ref[:] = z["train"]
            pdata.validation.ref[:] = z["validation"]
    except (OSError, KeyError, ValueError):
        return False
    log.info("reference log-probabilities read from %s", path)
    return True


def _save_cache(path: Path, key: str, pdata: PreferenceData) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, key=np.array(key), train=pdata.train.ref, validation=pdata.validation.ref)
    os.replace(tmp, path)


# ----------------------------------------------------------------- DPO
def train_dpo(args: DPOArguments, targs, callbacks: list | None = None) -> RunResult:  # noqa: ANN001
    """Train with DPO / DPO^gamma / IPO and track ranking flips (see the module docstring)."""
    import torch

    from lm_eval_rankacc.training import scoring
    from lm_eval_rankacc.training.callbacks import MarkBestCheckpoint, StopOnSignal, mark_best
    from lm_eval_rankacc.training.trainer import PreferenceTrainer
    from lm_eval_rankacc.training.tracking import TrackingCallback

    check(args)
    _check_transformers()
    if targs.metric_for_best_model in (None, "loss", "eval_loss"):
        targs.metric_for_best_model, targs.greater_is_better = "validation_loss", False
    targs.remove_unused_columns = False  # the batches carry pair indices and reference log-probs
    if targs.eval_strategy == "no":
        log.warning("evaluation is off (--eval_strategy no): nothing will be tracked")
    out = Path(targs.output_dir)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    tokenizer = load_tokenizer(args)
    pdata = build_pair_sets(args, tokenizer)
    timings["data_s"] = time.perf_counter() - t0
    log.info("%s: %d training pairs (%d tracked), %d validation pairs (%s)", pdata.info["task"],
             len(pdata.train.ids), pdata.info["tracking_pairs"], len(pdata.validation.ids),
             pdata.info["validation_source"])

    ref_path = args.ref_model_name_or_path or args.model_name_or_path
    shared = _same_model(ref_path, args.model_name_or_path)
    model = load_model(ref_path, args)
    logits_to_keep = scoring.supports_logits_to_keep_mask(model)
    packed = bool(args.packing) and scoring.packing_possible(model)
    if packed:
        # the self-check runs the model twice: on the 3 shortest pairs whose responses differ, it costs little
        lengths = pdata.train.lengths()
        distinct = [i for i in np.argsort(lengths, kind="stable")
                    if pdata.train.chosen[i] != pdata.train.rejected[i] and pdata.train.chosen[i]]
        sample = [pdata.train[int(i)] for i in (distinct or range(len(pdata.train)))[:3]]
        ok, diff = scoring.packing_agrees(model.to(targs.device), sample, pad_id(tokenizer), logits_to_keep,
                                          targs.device)
        if not ok:
            log.warning("packed scoring differs from the plain layout by %.3g on this model: not packing", diff)
            packed = False
    elif args.packing:
        log.info("attention %r cannot take a custom 4-D mask: not packing", scoring.attention_kind(model))
    log.info("scoring layout: %s; logits only at response positions: %s", "packed" if packed else "plain",
             logits_to_keep)

    sets = {"train": pdata.train, "validation": pdata.validation, "reference": pdata.rest}
    eval_sets = {"validation": pdata.validation}
    if pdata.tracking is not None:
        sets["tracking"] = pdata.tracking
        eval_sets = {"tracking": pdata.tracking, "validation": pdata.validation}
    tracker = TrackingCallback(out, loss=args.loss, beta=args.beta, gamma=args.gamma, tau=args.tau, plots=args.plots)
    stopper = StopOnSignal()

    def make_trainer(m, is_reference: bool):  # noqa: ANN001
        return PreferenceTrainer(
            model=m, args=targs, data_collator=scoring.PairCollator(pad_id(tokenizer), packed),
            train_dataset=pdata.train, eval_dataset=eval_sets, processing_class=tokenizer,
            callbacks=[tracker, MarkBestCheckpoint(), stopper, *(callbacks or [])],
            loss=args.loss, beta=args.beta, gamma=args.gamma, tau=args.tau, pair_sets=sets, tracker=tracker,
            logits_to_keep=logits_to_keep, policy_is_reference=is_reference,
        )

    # reference pass (or its cache)
    t1 = time.perf_counter()
    key = _cache_key(args, ref_path, packed, targs, pdata)
    cache = out / REFERENCE_CACHE
    trainer = make_trainer(model, shared)
    if not (args.reference_cache and _load_cache(cache, key, pdata)):
        ordered = [s for s in (pdata.tracking, pdata.rest, pdata.validation) if s is not None]
        trainer.compute_reference_logps(ordered)
        bad = ~np.isfinite(pdata.train.ref).all(1)
        if bad.any() or not np.isfinite(pdata.validation.ref).all():
            raise tdata.TrainingDataError(
                f"the reference model gives non-finite log-probabilities for {int(bad.sum())} training pairs "
                f"(e.g. {[pdata.train.ids[i] for i in np.flatnonzero(bad)[:5]]})")
        if args.reference_cache and trainer.is_world_process_zero():
            out.mkdir(parents=True, exist_ok=True)
            _save_cache(cache, key, pdata)
    timings["reference_s"] = time.perf_counter() - t1
    if not shared:
        del trainer, model
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        model = load_model(args.model_name_or_path, args)
        trainer = make_trainer(model, False)

    if trainer.is_world_process_zero():
        _write_config(out, {"command": "dpo", "dpo": args, "training": targs.to_dict(),
                            "data": pdata.info, "scoring": {"packed": packed, "logits_to_keep": logits_to_keep},
                            "reference_model": ref_path})
    resume = _resume_arg(targs)
    if resume:  # the steps up to the checkpoint are already in the log: evaluate as the uninterrupted run would
        targs.eval_on_start = False
    t2 = time.perf_counter()
    train_out = trainer.train(resume_from_checkpoint=resume)
    timings["train_s"] = time.perf_counter() - t2
    best = mark_best(out, trainer.state) if trainer.is_world_process_zero() else None
    result = RunResult(out, trainer.state.global_step, best, stopper.received is not None,
                       dict(train_out.metrics), timings)
    if result.stopped_by_signal:
        log.warning("stopped by a signal at step %d; continue with --resume_from_checkpoint %s",
                    result.global_step, out / f"checkpoint-{result.global_step}")
    return result


# ----------------------------------------------------------------- SFT
class SFTDataset:
    """Tokenized (prompt, response) examples; labels mask the prompt."""

    def __init__(self, enc):  # noqa: ANN001
        self.enc = enc

    def __len__(self) -> int:
        return len(self.enc)

    def __getitem__(self, i: int) -> dict[str, Any]:
        p, r = self.enc.prompt[i], self.enc.responses[i][0]
        return {"input_ids": p + r, "labels": [-100] * len(p) + r}


class SFTCollator:
    def __init__(self, pad_token_id: int):
        self.pad = pad_token_id

    def __call__(self, items: list[dict[str, Any]]):
        import torch

        width = max(len(it["input_ids"]) for it in items)
        ids = torch.full((len(items), width), self.pad, dtype=torch.long)
        labels = torch.full((len(items), width), -100, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for k, it in enumerate(items):
            n = len(it["input_ids"])
            ids[k, :n] = torch.tensor(it["input_ids"])
            labels[k, :n] = torch.tensor(it["labels"])
            mask[k, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _sft_encode(args: SFTArguments, tokenizer, docs, what: str):  # noqa: ANN001
    examples, skipped = tdata.preferred_responses(docs)
    _log_counts(what, skipped)
    if not examples:
        raise tdata.TrainingDataError(f"{what}: no preferred response to train on")
    enc = tdata.encode(tokenizer, [e[0] for e in examples], [e[1] for e in examples], [[e[2]] for e in examples],
                       args.max_length, args.max_prompt_length)
    if enc.truncated:
        log.warning("%s: %d of %d examples truncated to %d tokens", what, enc.truncated, len(enc), args.max_length)
    return enc, {"documents": len(docs), "examples": len(enc), "skipped": dict(skipped), "truncated": enc.truncated}


def train_sft(args: SFTArguments, targs, callbacks: list | None = None) -> RunResult:  # noqa: ANN001
    """Supervised fine-tuning on the preferred responses (the paper's first stage)."""
    from transformers import Trainer

    from lm_eval_rankacc.training.callbacks import MarkBestCheckpoint, StopOnSignal, mark_best

    check(args)
    _check_transformers()
    if targs.metric_for_best_model in (None, "loss"):
        targs.metric_for_best_model, targs.greater_is_better = "eval_loss", False
    out = Path(targs.output_dir)
    tokenizer = load_tokenizer(args)
    splits = tdata.load_splits(args.task, args.data_files, args.split, args.train_sample_size, args.eval_task,
                               args.eval_data_files, args.eval_split, args.eval_fraction, args.split_seed)
    train_enc, train_info = _sft_encode(args, tokenizer, splits.train, f"{splits.task} (train)")
    val_enc, val_info = _sft_encode(args, tokenizer, splits.validation, f"{splits.task} (validation)")
    log.info("%s: %d training examples, %d validation examples (%s)", splits.task, len(train_enc), len(val_enc),
             splits.validation_source)
    model = load_model(args.model_name_or_path, args)
    stopper = StopOnSignal()
    trainer = Trainer(model=model, args=targs, data_collator=SFTCollator(pad_id(tokenizer)),
                      train_dataset=SFTDataset(train_enc), eval_dataset=SFTDataset(val_enc),
                      processing_class=tokenizer, callbacks=[MarkBestCheckpoint(), stopper, *(callbacks or [])])
    if trainer.is_world_process_zero():
        _write_config(out, {"command": "sft", "sft": args, "training": targs.to_dict(),
                            "data": {"task": splits.task, "validation_source": splits.validation_source,
                                     "train": train_info, "validation": val_info}})
    t0 = time.perf_counter()
    train_out = trainer.train(resume_from_checkpoint=_resume_arg(targs))
    best = mark_best(out, trainer.state) if trainer.is_world_process_zero() else None
    return RunResult(out, trainer.state.global_step, best, stopper.received is not None, dict(train_out.metrics),
                     {"train_s": time.perf_counter() - t0})


# ----------------------------------------------------------------- command line
def main(kind: str, argv: list[str]) -> int:
    """``rankacc sft ...`` / ``rankacc dpo ...``: parse, train, report; exit code."""
    import sys

    from lm_eval_rankacc.training.args import parse
    from lm_eval_rankacc.training.trainer import NonFiniteLossError

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    try:
        ours, targs = parse(kind, argv)
    except ValueError as err:
        print(f"rankacc {kind}: error: {err}", file=sys.stderr)
        return 2
    try:
        result = (train_dpo if kind == "dpo" else train_sft)(ours, targs)
    except (tdata.TrainingDataError, harness.TaskDataError) as err:
        print(f"rankacc {kind}: error: {err}", file=sys.stderr)
        return 2
    except NonFiniteLossError as err:
        print(f"rankacc {kind}: error: {err}", file=sys.stderr)
        return 1
    best = f"; best checkpoint: {result.best_checkpoint}" if result.best_checkpoint else ""
    print(f"rankacc {kind}: {result.global_step} steps in {result.output_dir}{best}")
    if result.stopped_by_signal:
        print(f"rankacc {kind}: stopped by a signal after saving; resume with "
              f"--resume_from_checkpoint {result.output_dir / f'checkpoint-{result.global_step}'}")
        return 143
    return 0
