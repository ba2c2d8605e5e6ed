"""Options of ``rankacc sft`` and ``rankacc dpo``, parsed with ``HfArgumentParser``:
:class:`SFTArguments` / :class:`DPOArguments` beside the standard
``transformers.TrainingArguments`` (every Trainer flag works: ``--bf16``,
``--gradient_accumulation_steps``, ``--report_to``, ``--save_total_limit``,
``--resume_from_checkpoint``, ...).

Defaults that differ from the Trainer's follow the paper (App. D.1: beta
0.1, RMSprop, max length 512) and the DPO settings it builds on (Rafailov et
al. 2023, App. B): RMSprop (torch defaults: alpha 0.99, eps 1e-8, no weight
decay, no momentum), learning rate 1e-6 with 150 warm-up steps then constant, evaluation (and a checkpoint) every ``eval_steps``, evaluation
before the first step, and the best checkpoint chosen by the lowest
validation loss. The paper's batch size 64 is
``--per_device_train_batch_size 8 --gradient_accumulation_steps 8`` (not a
default here, so that small runs stay small).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from lm_eval_rankacc.training.losses import LOSSES

#: TrainingArguments defaults of both commands (over the Trainer's own).
COMMON_DEFAULTS: dict[str, Any] = {
    "optim": "rmsprop",
    "learning_rate": 1e-6,
    "lr_scheduler_type": "constant_with_warmup",
    "warmup_steps": 150,
    "weight_decay": 0.0,
    "eval_strategy": "steps",
    "eval_steps": 100,
    "save_strategy": "steps",
    "logging_steps": 10,
    "report_to": "none",
}
DPO_DEFAULTS: dict[str, Any] = {**COMMON_DEFAULTS, "eval_on_start": True, "remove_unused_columns": False,
                                "metric_for_best_model": "validation_loss", "greater_is_better": False}
SFT_DEFAULTS: dict[str, Any] = {**COMMON_DEFAULTS, "metric_for_best_model": "eval_loss", "greater_is_better": False}


@dataclass
class DataArguments:
    """Model and data options shared by ``rankacc sft`` and ``rankacc dpo``."""

    model_name_or_path: str = field(metadata={"help": "the model to train (a transformers folder or hub id)"})
    task: str | None = field(default=None, metadata={
        "help": "a rankacc task whose documents are the training data (e.g. rankacc_hh_rlhf_train), "
                "or the path of a task YAML; its dataset_kwargs give source and split"})
    data_files: list[str] | None = field(default=None, metadata={
        "help": "local files replacing the task's download, in the source's own schema "
                "(without --task: the common schema, prompt/responses/ranks)"})
    split: str | None = field(default=None, metadata={"help": "override the task's split"})
    train_sample_size: int = field(default=0, metadata={
        "help": "use a fixed sample of this many training documents (seed --split_seed); 0 = all"})
    eval_task: str = field(default="auto", metadata={
        "help": "validation data: 'auto' (the task's test split if it has one, else a held-out part of the "
                "training documents), 'holdout', or a task name"})
    eval_data_files: list[str] | None = field(default=None, metadata={"help": "local files for the validation data"})
    eval_split: str | None = field(default=None, metadata={"help": "override the validation task's split"})
    eval_fraction: float = field(default=0.5, metadata={
        "help": "share of the validation documents used (the paper: half of the test split), or of the "
                "training documents held out"})
    split_seed: int = field(default=0, metadata={"help": "seed of the validation half and of samples"})
    tokenizer_name: str | None = field(default=None, metadata={"help": "default: the model's tokenizer"})
    max_length: int = field(default=512, metadata={"help": "tokens of prompt + response, at most"})
    max_prompt_length: int = field(default=256, metadata={
        "help": "when prompt + response is too long, the prompt is cut from the left to this many tokens"})
    model_dtype: str = field(default="float32", metadata={
        "help": "dtype the weights are loaded in (float32, bfloat16, float16, auto); for mixed precision "
                "keep float32 and pass --bf16", "choices": ["float32", "bfloat16", "float16", "auto"]})
    attn_implementation: str | None = field(default=None, metadata={"help": "e.g. sdpa, eager, flash_attention_2"})
    trust_remote_code: bool = field(default=False)
    disable_dropout: bool = field(default=True, metadata={"help": "set every dropout probability to 0"})


@dataclass
class SFTArguments(DataArguments):
    """``rankacc sft``: supervised fine-tuning on the preferred responses (prompt tokens masked)."""


@dataclass
class DPOArguments(DataArguments):
    """``rankacc dpo``: DPO, DPO^gamma or IPO from a reference model, with per-datapoint tracking."""

    ref_model_name_or_path: str | None = field(default=None, metadata={
        "help": "the reference model (default: --model_name_or_path, the usual SFT checkpoint)"})
    loss: str = field(default="dpo", metadata={"help": "dpo, dpo_gamma (Eq. 4) or ipo", "choices": list(LOSSES)})
    beta: float = field(default=0.1, metadata={"help": "DPO's beta (also of the tracked DPO loss)"})
    gamma: float = field(default=1.0, metadata={"help": "DPO^gamma's gamma: 1 = DPO, 0 = reference-free"})
    tau: float = field(default=0.1, metadata={"help": "IPO's tau"})
    tracking_size: int = field(default=1000, metadata={
        "help": "training pairs tracked at every evaluation (a fixed sample, --tracking_seed); 0 = none"})
    tracking_seed: int = field(default=0)
    packing: bool = field(default=True, metadata={
        "help": "score both responses of a pair in one row with the prompt once (4-D attention mask); "
                "checked against the plain layout on the model first"})
    reference_cache: bool = field(default=True, metadata={
        "help": "keep the reference log-probabilities in OUTPUT_DIR/reference_logps.npz and reuse them "
                "when nothing changed (a resumed run)"})
    plots: bool = field(default=True, metadata={"help": "draw the figures at the end of training"})


def check(args: DataArguments) -> None:
    """Reject inconsistent options with one clear message."""
    if not args.task and not args.data_files:
        raise ValueError("no training data: give --task (a rankacc task) or --data_files")
    if not 1 <= args.max_prompt_length < args.max_length:
        raise ValueError(f"need 1 <= max_prompt_length < max_length, got {args.max_prompt_length} and {args.max_length}")
    if not 0 < args.eval_fraction <= 1:
        raise ValueError(f"eval_fraction must be in (0, 1], got {args.eval_fraction}")
    if isinstance(args, DPOArguments):
        if args.loss not in LOSSES:
            raise ValueError(f"unknown loss {args.loss!r}; one of {', '.join(LOSSES)}")
        if not args.beta > 0:
            raise ValueError(f"beta must be > 0, got {args.beta}")
        if args.loss == "ipo" and not args.tau > 0:
            raise ValueError(f"tau must be > 0, got {args.tau}")
        if args.tracking_size < 0:
            raise ValueError(f"tracking_size must be >= 0, got {args.tracking_size}")


def training_arguments(kind: str = "dpo", **overrides: Any):
    """``TrainingArguments`` with the paper's defaults (for use from Python)."""
    from transformers import TrainingArguments

    values = dict(DPO_DEFAULTS if kind == "dpo" else SFT_DEFAULTS)
    values.update(overrides)
    if "save_steps" not in overrides and "eval_steps" in values:
        values["save_steps"] = values["eval_steps"]
    return TrainingArguments(**values)


def _given(argv: list[str], name: str) -> bool:
    return any(a == f"--{name}" or a.startswith(f"--{name}=") for a in argv)


def parse(kind: str, argv: list[str]):
    """(SFTArguments or DPOArguments, TrainingArguments) from a command line, or
    from one .json / .yaml file holding the same keys."""
    from transformers import HfArgumentParser, TrainingArguments

    own = DPOArguments if kind == "dpo" else SFTArguments
    defaults = DPO_DEFAULTS if kind == "dpo" else SFT_DEFAULTS
    parser = HfArgumentParser((own, TrainingArguments), prog=f"rankacc {kind}",
                              description=(own.__doc__ or "").strip())
    if len(argv) == 1 and argv[0].endswith((".json", ".yaml", ".yml")) and Path(argv[0]).is_file():
        import yaml

        text = Path(argv[0]).read_text(encoding="utf-8")
        config = json.loads(text) if argv[0].endswith(".json") else yaml.safe_load(text)
        values = {**defaults, **(config or {})}
        if "save_steps" not in (config or {}):
            values["save_steps"] = values.get("eval_steps", 500)
        ours, targs = parser.parse_dict(values)
    else:
        parser.set_defaults(**defaults)
        ours, targs = parser.parse_args_into_dataclasses(args=argv)
        if not _given(argv, "save_steps") and targs.eval_steps:
            targs.save_steps = targs.eval_steps
    if not targs.output_dir or targs.output_dir == "trainer_output":
        raise ValueError("--output_dir is required")
    check(ours)
    return ours, targs


def to_jsonable(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        obj = {f.name: getattr(obj, f.name) for f in fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


__all__ = ["DataArguments", "SFTArguments", "DPOArguments", "parse", "training_arguments", "check", "asdict"]
