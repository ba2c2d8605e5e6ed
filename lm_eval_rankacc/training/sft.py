"""``train_sft``: supervised fine-tuning on the preferred responses (the
paper's first stage, which makes the reference model), on the plain
``transformers.Trainer``.

Each document's best-ranked responses (:func:`.examples.preferred_responses`)
are examples; the loss is the responses' next-token loss, the prompt tokens
masked (with ``--sft_all_turns``, the earlier assistant turns inside the
prompt are trained on too, as the released SFT does: :mod:`.sft_turns`). Files in ``output_dir`` (checked first, as for DPO: :mod:`.run_folder.start`):
``training_config.json``, the Trainer's ``checkpoint-<step>/`` folders,
``best_checkpoint.json`` and the link ``best_checkpoint`` (the lowest
validation loss).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from transformers import Trainer

from lm_eval_rankacc.core.errors import TrainingDataError
from lm_eval_rankacc.training.config import SFTConfig
from lm_eval_rankacc.training.examples import log_skipped, preferred_responses
from lm_eval_rankacc.training.models import check_transformers, load_model, load_tokenizer, pad_id
from lm_eval_rankacc.training.run_folder.marks import MarkBestCheckpoint, MarkRunCheckpoints
from lm_eval_rankacc.training.run_folder.result import RunResult, finish_run, timed, write_run_config
from lm_eval_rankacc.training.run_folder.start import start_run
from lm_eval_rankacc.training.run_folder.write_errors import output_failures
from lm_eval_rankacc.training.sft_turns import turn_masks
from lm_eval_rankacc.training.splits import load_splits
from lm_eval_rankacc.training.stop_on_signal import BeforeTraining, StopOnSignal
from lm_eval_rankacc.training.tokens import Encoded, context_of, encode

log = logging.getLogger("lm_eval_rankacc.training")

#: The label of a token the loss ignores (the Trainer's, and torch's cross-entropy default).
IGNORED = -100


class SFTDataset:
    """Tokenized (prompt, response) examples; labels mask the prompt."""

    def __init__(self, enc: Encoded):
        self.enc = enc

    def __len__(self) -> int:
        return len(self.enc)

    def __getitem__(self, i: int) -> dict[str, Any]:
        p, r = self.enc.prompt[i], self.enc.responses[i][0]
        marks = self.enc.prompt_targets[i] if self.enc.prompt_targets else [False] * len(p)
        return {"input_ids": p + r, "labels": [t if m else IGNORED for t, m in zip(p, marks)] + r}


class SFTCollator:
    """Right-pads examples into one batch (labels padded with the ignored label)."""

    def __init__(self, pad_token_id: int):
        self.pad = pad_token_id

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(it["input_ids"]) for it in items)
        ids = torch.full((len(items), width), self.pad, dtype=torch.long)
        labels = torch.full((len(items), width), IGNORED, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for k, it in enumerate(items):
            n = len(it["input_ids"])
            ids[k, :n] = torch.tensor(it["input_ids"])
            labels[k, :n] = torch.tensor(it["labels"])
            mask[k, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def encode_examples(config: SFTConfig, tokenizer, docs: list[dict[str, Any]],  # noqa: ANN001
                    what: str) -> tuple[Encoded, dict[str, Any]]:
    """The tokenized preferred responses of ``docs`` and their counts; with
    ``--sft_all_turns`` the prompt tokens of the earlier assistant turns are
    marked to be trained on too (:mod:`.sft_turns`)."""
    examples, skipped = preferred_responses(docs)
    log_skipped(what, skipped)
    if not examples:
        raise TrainingDataError(f"{what}: no preferred response to train on")
    prompts = [e[1] for e in examples]
    enc = encode(tokenizer, [e[0] for e in examples], prompts, [[e[2]] for e in examples],
                 config.max_length, config.max_prompt_length)
    if enc.truncated:
        log.warning("%s: %d of %d examples truncated to %d tokens", what, enc.truncated, len(enc), config.max_length)
    info = {"documents": len(docs), "examples": len(enc), "skipped": dict(skipped), "truncated": enc.truncated}
    if config.sft_all_turns:
        enc.prompt_targets, crossing = turn_masks(tokenizer, [context_of(p) for p in prompts], enc.prompt)
        turns = {"examples_with_turns": sum(any(m) for m in enc.prompt_targets),
                 "tokens": sum(sum(m) for m in enc.prompt_targets), "crossing_tokens": crossing}
        log.info("%s: --sft_all_turns: %d earlier assistant-turn tokens in %d examples trained on besides the final "
                 "responses (%d tokens crossing a turn's edge left out)", what, turns["tokens"],
                 turns["examples_with_turns"], crossing)
        info["assistant_turns"] = turns
    return enc, info


def _load_examples(config: SFTConfig, tokenizer):  # noqa: ANN001, ANN202
    """(training examples, validation examples, the data section of training_config.json)."""
    splits = load_splits(config.task, config.data_files, config.split, config.train_sample_size,
                              config.eval_task, config.eval_data_files, config.eval_split, config.eval_fraction,
                              config.split_seed)
    train_enc, train_info = encode_examples(config, tokenizer, splits.train, f"{splits.task} (train)")
    val_enc, val_info = encode_examples(config, tokenizer, splits.validation, f"{splits.task} (validation)")
    log.info("%s: %d training examples, %d validation examples (%s)", splits.task, len(train_enc), len(val_enc),
             splits.validation_source)
    info = {"task": splits.task, "validation_source": splits.validation_source,
            "train": train_info, "validation": val_info}
    return SFTDataset(train_enc), SFTDataset(val_enc), info


def train_sft(config: SFTConfig, callbacks: list | None = None) -> RunResult:
    """Supervised fine-tuning on the preferred responses (see the module docstring)."""
    check_transformers()
    start = start_run(config)
    try:
        with BeforeTraining(config.output_dir):  # Ctrl-C / SIGTERM while loading: one line
            tokenizer = load_tokenizer(config)
            train, validation, info = _load_examples(config, tokenizer)
            model = load_model(config.model_name_or_path, config)
        stopper = StopOnSignal()
        trainer = Trainer(model=model, args=config, data_collator=SFTCollator(pad_id(tokenizer)),
                          train_dataset=train, eval_dataset=validation, processing_class=tokenizer,
                          callbacks=[MarkBestCheckpoint(), stopper, MarkRunCheckpoints(start.run_id),
                                     *(callbacks or [])])
        if trainer.is_world_process_zero():
            write_run_config("sft", config, start, data=info)
        timings: dict[str, float] = {}
        with timed(timings, "train_s"), output_failures(trainer):
            train_output = trainer.train(resume_from_checkpoint=start.resume)
        return finish_run(trainer, stopper, train_output, timings)
    finally:
        start.release()  # the folder's lock (:mod:`.run_folder.lock`)
