"""Options of ``rankacc sft`` and ``rankacc dpo``: :class:`SFTConfig` and
:class:`DPOConfig`, subclasses of ``transformers.TrainingArguments`` (every
Trainer flag works: ``--bf16``, ``--gradient_accumulation_steps``,
``--report_to``, ``--save_total_limit``, ``--resume_from_checkpoint``, ...),
parsed with ``HfArgumentParser`` by the command line
(:func:`lm_eval_rankacc.cli.parse_training_options`).

Defaults that differ from the Trainer's are field overrides here (so
``rankacc sft --help`` and ``rankacc dpo --help`` show them). What the paper
states (App. D.1) is applied as it is: AdamW for SFT (beta1 0.9, beta2 0.999,
eps 1e-8), RMSProp for DPO (alpha 0.99, weight decay 0, momentum 0, eps 1e-8:
torch's RMSprop defaults), validation on half of the test split, and the
checkpoint with the lowest validation loss. App. D.1 names no chosen learning
rate, batch size or DPO beta: it lists search grids (learning rates 1e-7 to
1e-5, batch sizes 16 to 512, beta in {0.01, 0.1, 1, 10} for GPT2 and Pythia
2.8B, {0.1} alone for Llama 2 7B), and states nothing on warm-up, schedule,
AdamW's weight decay or sequence lengths. For DPO the defaults are those of
Rafailov et al. 2023, App. B (beta 0.1, learning rate 1e-6 warmed up
linearly over 150 steps). The rest is this project's own choice: the
constant rate after the warm-up, the same rate and warm-up for SFT, no
weight decay for AdamW either, max length 512 with prompts cut to 256
tokens, evaluation (and a checkpoint: ``save_steps`` defaults to
``eval_steps``) every ``eval_steps``, and evaluation before the first DPO
step. Rafailov et al.'s batch size 64 is ``--per_device_train_batch_size 8
--gradient_accumulation_steps 8`` (not a default here, so that small runs
stay small; App. D.1 searched batch sizes, e.g. {32, 64} for Pythia's DPO).

Epochs: App. D.1 trains "for 5 epochs" GPT2 and Pythia 2.8B and Llama 2 7B
for 1, "for both SFT and DPO". The value depends on the model, so no default
is the paper's for every model: ``num_train_epochs`` defaults to 1 (D.1's
Llama 2 7B value, and the cheapest; the Trainer's 3 is none of D.1's
values): pass ``--num_train_epochs 5`` for GPT2 or Pythia 2.8B as D.1 does.
The schedule: the released code's README commands set no
``--lr_scheduler_type``, so they decay the rate linearly to 0 (the Trainer's
default) where the default here holds it constant after the warm-up;
``--lr_scheduler_type linear`` is the released behaviour
(``docs/conventions.md``, with the measured effect).

Every option is checked once, in ``__post_init__``: a bad value raises a
:class:`~lm_eval_rankacc.core.errors.TrainingDataError` (a ``ValueError``) naming
the option, before any model is loaded. The rules themselves live where the
data is read (:mod:`.splits`, :mod:`.tokens`) and in :mod:`.losses`.
"""

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from transformers import TrainingArguments
from transformers.trainer_utils import IntervalStrategy, SaveStrategy, SchedulerType
from transformers.training_args import OptimizerNames

from lm_eval_rankacc.core.errors import TrainingDataError
from lm_eval_rankacc.training.losses import LOSSES, check_options
from lm_eval_rankacc.training.run_folder.checkpoints import LATEST
from lm_eval_rankacc.training.splits import check_data_given, check_eval_fraction
from lm_eval_rankacc.training.tokens import check_lengths

#: ``save_steps`` when neither it nor ``eval_steps`` is set (the Trainer's own default).
TRAINER_SAVE_STEPS = TrainingArguments.__dataclass_fields__["save_steps"].default


def _default(name: str, value: Any, note: str = "") -> Any:
    """The ``TrainingArguments`` field ``name`` with this project's default (its help text kept)."""
    metadata = dict(TrainingArguments.__dataclass_fields__[name].metadata)
    if note:
        metadata["help"] = f"{metadata.get('help', '')} {note}".strip()
    return field(default=value, metadata=metadata)


@dataclass
class TrainingConfig(TrainingArguments):
    """Model and data options shared by ``rankacc sft`` and ``rankacc dpo``."""

    # ------------------------------------------------------------- TrainingArguments defaults of both commands
    # (the optimizer is each command's own: SFTConfig, DPOConfig)
    num_train_epochs: float = _default("num_train_epochs", 1.0, "rankacc: 1 (App. D.1: 5 epochs for GPT2 and "
                                       "Pythia 2.8B, 1 for Llama 2 7B, for both SFT and DPO).")
    learning_rate: float = _default("learning_rate", 1e-6, "rankacc: 1e-6, Rafailov et al. 2023's DPO rate "
                                    "(App. D.1 searched 1e-7 to 1e-5 and names no single value).")
    lr_scheduler_type: SchedulerType | str = _default(
        "lr_scheduler_type", "constant_with_warmup", "rankacc: constant after the warm-up (ours); the released "
        "code's README commands set none, so the Trainer's linear decay: --lr_scheduler_type linear.")
    warmup_steps: float = _default("warmup_steps", 150, "rankacc: 150, Rafailov et al. 2023's DPO warm-up "
                                   "(App. D.1 states none).")
    weight_decay: float = _default("weight_decay", 0.0, "rankacc: 0 (App. D.1: 0 for DPO's RMSProp; it states "
                                   "none for SFT's AdamW).")
    eval_strategy: IntervalStrategy | str = _default("eval_strategy", "steps")
    eval_steps: float | None = _default("eval_steps", 100)
    save_strategy: SaveStrategy | str = _default("save_strategy", "steps")
    save_steps: float | None = _default("save_steps", None, "Default: --eval_steps (a checkpoint at every evaluation).")
    logging_steps: float = _default("logging_steps", 10)
    report_to: None | str | list[str] = _default("report_to", "none")

    # ------------------------------------------------------------- model and data
    model_name_or_path: str = field(kw_only=True, metadata={
        "help": "the model to train (a transformers folder or hub id)"})
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
        "help": "share of the validation documents used (App. D.1: half of the test split), or of the "
                "training documents held out"})
    split_seed: int = field(default=0, metadata={"help": "seed of the validation half and of samples"})
    tokenizer_name: str | None = field(default=None, metadata={"help": "default: the model's tokenizer"})
    max_length: int = field(default=512, metadata={"help": "tokens of prompt + response, at most (this "
                                                           "project's default; the paper states none)"})
    max_prompt_length: int = field(default=256, metadata={
        "help": "when prompt + response is too long, the prompt is cut from the left to this many tokens"})
    model_dtype: str = field(default="float32", metadata={
        "help": "dtype the weights are loaded in (float32, bfloat16, float16, auto); for mixed precision "
                "keep float32 and pass --bf16", "choices": ["float32", "bfloat16", "float16", "auto"]})
    attn_implementation: str | None = field(default=None, metadata={"help": "e.g. sdpa, eager, flash_attention_2"})
    trust_remote_code: bool = field(default=False)
    disable_dropout: bool = field(default=True, metadata={"help": "set every dropout probability to 0"})
    fresh_start: bool = field(default=False, metadata={
        "help": "start a new run in an --output_dir that holds an earlier rankacc run: delete that run's files "
                "and checkpoint folders first (never other files; a checkpoint folder it did not write stops the "
                "run). Without it, such a folder is refused unless the run resumes there. Refused too while another run "
                "holds the folder's lock"})
    allow_run_changes: bool = field(default=False, metadata={
        "help": "let --resume_from_checkpoint continue a run with other values of the options that define it "
                "(objective, data, models, tracked set, lengths, optimizer and batch); without it such a resume "
                "is refused, listing each change. The changes are recorded in training_config.json (resumes)"})

    #: The command these options are for (``training_config.json``'s ``command``).
    command: ClassVar[str] = ""

    def __post_init__(self) -> None:
        self.check()
        if self.save_steps is None:  # a checkpoint at every evaluation
            self.save_steps = self.eval_steps or TRAINER_SAVE_STEPS
        super().__post_init__()

    def check(self) -> None:
        """Reject inconsistent options with one clear message."""
        if not self.output_dir:
            raise TrainingDataError("--output_dir is required")
        check_data_given(self.task, self.data_files)
        check_lengths(self.max_length, self.max_prompt_length)
        check_eval_fraction(self.eval_fraction)
        if self.fresh_start and self.resumes_in_place():
            raise TrainingDataError("--fresh_start starts a new run: it cannot resume the run of --output_dir "
                                    f"(--resume_from_checkpoint {self.resume_from_checkpoint})")

    def resume_checkpoint(self) -> str | bool | None:
        """``--resume_from_checkpoint``: a folder, or True for "true" / "last" /
        "latest" (the newest complete checkpoint of ``output_dir``:
        :func:`.run_folder.checkpoints.resume_point`)."""
        value = self.resume_from_checkpoint
        if isinstance(value, str) and value.lower() in LATEST:
            return True
        return value or None

    def resumes_in_place(self) -> bool:
        """Whether ``--resume_from_checkpoint`` continues the run of
        ``output_dir`` (``true``, or one of its checkpoints)."""
        value = self.resume_checkpoint()
        return value is True or (bool(value) and Path(value).resolve().parent == Path(self.output_dir).resolve())

    def full_checkpoint_state(self) -> bool:
        """Whether a complete checkpoint holds the optimizer and scheduler state
        in the Trainer's plain layout (not with ``--save_only_model``,
        DeepSpeed or FSDP; :mod:`.run_folder.checkpoints`)."""
        return not (self.save_only_model or self.deepspeed or self.fsdp)

    def own_options(self) -> dict[str, Any]:
        """This project's options, without the ``TrainingArguments`` ones."""
        trainer = {f.name for f in fields(TrainingArguments)}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init and f.name not in trainer}

    def trainer_options(self) -> dict[str, Any]:
        """The ``TrainingArguments`` options (as ``to_dict`` writes them)."""
        trainer = {f.name for f in fields(TrainingArguments)}
        return {k: v for k, v in self.to_dict().items() if k in trainer}


@dataclass
class SFTConfig(TrainingConfig):
    """``rankacc sft``: supervised fine-tuning on the preferred responses (prompt tokens masked)."""

    command: ClassVar[str] = "sft"

    # App. D.1: "the AdamW optimizer (with beta1 = 0.9, beta2 = 0.999, eps = 1e-8) for SFT"
    optim: OptimizerNames | str = _default("optim", "adamw_torch", "rankacc sft: AdamW (App. D.1's SFT optimizer).")
    adam_beta1: float = _default("adam_beta1", 0.9, "rankacc sft: 0.9 (App. D.1).")
    adam_beta2: float = _default("adam_beta2", 0.999, "rankacc sft: 0.999 (App. D.1).")
    adam_epsilon: float = _default("adam_epsilon", 1e-8, "rankacc sft: 1e-8 (App. D.1).")
    metric_for_best_model: str | None = _default("metric_for_best_model", "eval_loss")
    greater_is_better: bool | None = _default("greater_is_better", False)

    sft_all_turns: bool = field(default=False, metadata={
        "help": "train on every assistant turn of the preferred transcript (its earlier Assistant: turns inside "
                "the prompt too), as the released SFT does; default: the final response only (docs/conventions.md)"})

    def __post_init__(self) -> None:
        if self.metric_for_best_model in (None, "loss"):  # the Trainer's name of the validation loss
            self.metric_for_best_model, self.greater_is_better = "eval_loss", False
        super().__post_init__()


@dataclass
class DPOConfig(TrainingConfig):
    """``rankacc dpo``: DPO, DPO^gamma or IPO from a reference model, with per-datapoint tracking."""

    command: ClassVar[str] = "dpo"

    # App. D.1: "the RMSProp optimizer (with alpha = 0.99, weight decay = 0, momentum = 0, eps = 1e-8) for DPO":
    # torch's RMSprop defaults, which the Trainer passes unchanged
    optim: OptimizerNames | str = _default("optim", "rmsprop", "rankacc dpo: RMSProp with torch's defaults, alpha "
                                           "0.99, eps 1e-8, no momentum (App. D.1's DPO optimizer).")
    eval_on_start: bool = _default("eval_on_start", True)
    remove_unused_columns: bool = _default(
        "remove_unused_columns", True, "rankacc dpo: always False (its batches carry pair indices and reference "
        "log-probabilities).")
    metric_for_best_model: str | None = _default("metric_for_best_model", "validation_loss")
    greater_is_better: bool | None = _default("greater_is_better", False)

    ref_model_name_or_path: str | None = field(default=None, metadata={
        "help": "the reference model (default: --model_name_or_path, the usual SFT checkpoint)"})
    loss: str = field(default="dpo", metadata={"help": "dpo, dpo_gamma (Eq. 4) or ipo", "choices": list(LOSSES)})
    beta: float = field(default=0.1, metadata={
        "help": "DPO's beta (also of the tracked DPO loss); 0.1 is Rafailov et al. 2023's default (App. D.1 "
                "searched {0.01, 0.1, 1, 10} for GPT2 and Pythia, {0.1} for Llama 2 7B)"})
    gamma: float = field(default=1.0, metadata={"help": "DPO^gamma's gamma: 1 = DPO, 0 = reference-free"})
    tau: float = field(default=0.1, metadata={"help": "IPO's tau"})
    ipo_average_log_prob: bool = field(default=False, metadata={
        "help": "IPO on per-token mean log-probabilities (each divided by its response's token count), as the "
                "released code's IPO does; default: summed (docs/conventions.md); only with --loss ipo"})
    tracking_size: int = field(default=1000, metadata={
        "help": "training pairs tracked at every evaluation (a fixed sample, --tracking_seed); 0 = none"})
    tracking_seed: int = field(default=0)
    packing: bool = field(default=True, metadata={
        "help": "score both responses of a pair in one row with the prompt once (4-D attention mask); "
                "checked against the plain layout on the model first"})
    reference_cache: bool = field(default=True, metadata={
        "help": "keep the reference log-probabilities in OUTPUT_DIR/reference_logps.npz and reuse them "
                "when nothing changed (a resumed run)"})
    track_distance: bool = field(default=True, metadata={
        "help": "record ||theta - theta_ref||_2 at every evaluation (streamed from the reference's safetensors "
                "files, else a CPU copy of the trainable parameters; docs/section5.md)"})
    plots: bool = field(default=True, metadata={
        "help": "draw figures 2, 3 and 4 at the end of training; --no_plots skips drawing them "
                "(`rankacc plot-training OUTPUT_DIR` draws them later)"})

    def __post_init__(self) -> None:
        if self.ipo_average_log_prob and self.loss != "ipo":
            raise ValueError(f"ipo_average_log_prob is only for --loss ipo, got --loss {self.loss}")
        if self.metric_for_best_model in (None, "loss", "eval_loss"):  # the Trainer's names of the validation loss
            self.metric_for_best_model, self.greater_is_better = "validation_loss", False
        self.remove_unused_columns = False  # the batches carry pair indices and reference log-probs
        super().__post_init__()

    def check(self) -> None:
        super().check()
        check_options(self.loss, self.beta, self.tau, self.gamma)
        if self.tracking_size < 0:
            raise TrainingDataError(f"tracking_size must be >= 0, got {self.tracking_size}")


#: The options class of each command.
CONFIGS: dict[str, type[TrainingConfig]] = {"sft": SFTConfig, "dpo": DPOConfig}


__all__ = ["TrainingConfig", "SFTConfig", "DPOConfig", "CONFIGS"]
