"""The pair sets of a DPO run: documents (:mod:`.splits`) -> pairs
(:mod:`.examples`) -> tokens (:mod:`.tokens`) -> :class:`.scoring.PairDataset` s.

- ``train``: every training pair; ``validation``: every validation pair;
- ``tracking``: a fixed sample of ``tracking_size`` training pairs (seed
  ``tracking_seed``), scored at every evaluation (:mod:`.tracking_log`);
- ``rest`` (``reference``): the other training pairs, which need only the
  reference pass.

The sets share their token lists and their reference log-probabilities.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lm_eval_rankacc.loading.documents import sample_indices
from lm_eval_rankacc.core.errors import TrainingDataError
from lm_eval_rankacc.training.examples import Pair, documents_to_pairs, log_skipped
from lm_eval_rankacc.training.scoring import PairDataset
from lm_eval_rankacc.training.splits import load_splits
from lm_eval_rankacc.training.tokens import Encoded, encode

if TYPE_CHECKING:
    from lm_eval_rankacc.training.config import DPOConfig

log = logging.getLogger("lm_eval_rankacc.training")


@dataclass
class PreferenceData:
    """The pair sets of a DPO run (see the module docstring), their counts
    (``info``, written to ``training_config.json``) and their tokens (``encoded``)."""

    train: PairDataset
    validation: PairDataset
    tracking: PairDataset | None
    rest: PairDataset
    info: dict[str, Any]
    encoded: list[Encoded]

    def named_sets(self) -> dict[str, PairDataset]:
        """Every set by its name (how the trainer finds a pair from its code)."""
        sets = {"train": self.train, "validation": self.validation, "reference": self.rest}
        if self.tracking is not None:
            sets["tracking"] = self.tracking
        return sets

    def eval_sets(self) -> dict[str, PairDataset]:
        """The sets scored at every evaluation: the tracked training pairs, then validation."""
        if self.tracking is None:
            return {"validation": self.validation}
        return {"tracking": self.tracking, "validation": self.validation}


def tokenized_pairs(name: str, task: str, pairs: list[Pair], tokenizer, max_length: int,  # noqa: ANN001
                    max_prompt_length: int) -> tuple[PairDataset, Encoded]:
    """The :class:`PairDataset` ``name`` of ``pairs``, tokenized and truncated (:func:`.tokens.encode`)."""
    if not pairs:
        raise TrainingDataError(f"{task}: no {name} pairs (every pair is a human tie?)")
    enc = encode(tokenizer, [p.pair_id for p in pairs], [p.prompt for p in pairs],
                      [[p.chosen, p.rejected] for p in pairs], max_length, max_prompt_length)
    if enc.truncated:
        log.warning("%s (%s): %d of %d pairs truncated to %d tokens (prompt from the left)",
                    task, name, enc.truncated, len(enc), max_length)
    pair_set = PairDataset(name, enc.ids, [p.doc_id for p in pairs], enc.prompt,
                           [r[0] for r in enc.responses], [r[1] for r in enc.responses])
    return pair_set, enc


def _pair_set(name: str, task: str, docs: list[dict[str, Any]], config: DPOConfig, tokenizer,  # noqa: ANN001
              info: dict[str, Any]) -> tuple[PairDataset, Encoded]:
    """The tokenized pairs of one split's documents; their counts go to ``info[name]``."""
    pairs, skipped = documents_to_pairs(docs)
    log_skipped(f"{task} ({name})", skipped)
    pair_set, enc = tokenized_pairs(name, task, pairs, tokenizer, config.max_length, config.max_prompt_length)
    info[name] = {"documents": len(docs), "pairs": len(pairs), "skipped": dict(skipped),
                  "truncated": enc.truncated, "tokens": pair_set.tokens()}
    return pair_set, enc


def build_pair_sets(config: DPOConfig, tokenizer) -> PreferenceData:  # noqa: ANN001
    """The pair sets of ``config``'s training and validation documents."""
    splits = load_splits(config.task, config.data_files, config.split, config.train_sample_size,
                              config.eval_task, config.eval_data_files, config.eval_split, config.eval_fraction,
                              config.split_seed)
    for note in splits.notes:
        log.warning("%s", note)
    info: dict[str, Any] = {"task": splits.task, "validation_source": splits.validation_source}
    train, train_enc = _pair_set("train", splits.task, splits.train, config, tokenizer, info)
    validation, val_enc = _pair_set("validation", splits.task, splits.validation, config, tokenizer, info)
    validation = validation.view("validation", np.arange(len(validation.ids)))
    tracked = np.array(sample_indices(len(train.ids), config.tracking_size, config.tracking_seed)
                       if config.tracking_size else [], dtype=np.int64)
    tracking = train.view("tracking", tracked) if len(tracked) else None
    rest = train.view("reference", np.setdiff1d(np.arange(len(train.ids)), tracked))
    info["tracking_pairs"] = int(len(tracked))
    return PreferenceData(train, validation, tracking, rest, info, [train_enc, val_enc])
