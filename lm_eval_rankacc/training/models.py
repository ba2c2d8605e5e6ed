"""Loading the tokenizer and the models of a training run, as its options say."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import transformers
from packaging.version import Version
from transformers import AutoModelForCausalLM, AutoTokenizer

from lm_eval_rankacc.core.errors import UsageError

if TYPE_CHECKING:
    from lm_eval_rankacc.training.config import TrainingConfig

#: The oldest transformers these commands run on (``dtype=`` in from_pretrained,
#: ``processing_class``, ``eval_strategy``, ``eval_on_start``).
MIN_TRANSFORMERS = "4.56"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}


def check_transformers() -> None:
    """Stop with a clear message on a transformers older than :data:`MIN_TRANSFORMERS`."""
    if Version(transformers.__version__) < Version(MIN_TRANSFORMERS):
        raise UsageError(f"rankacc sft / dpo need transformers >= {MIN_TRANSFORMERS}, "
                         f"found {transformers.__version__}")


def load_tokenizer(config: TrainingConfig):
    """``--tokenizer_name``, else the model's tokenizer."""
    return AutoTokenizer.from_pretrained(config.tokenizer_name or config.model_name_or_path,
                                         trust_remote_code=config.trust_remote_code)


def pad_id(tokenizer) -> int:  # noqa: ANN001
    """The id padding is written with (never read): pad, else EOS, else 0."""
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if tid is not None:
            return int(tid)
    return 0


def load_model(path: str, config: TrainingConfig):
    """The causal LM at ``path`` in ``--model_dtype``, dropout off unless
    ``--no_disable_dropout``, without a KV cache (training needs none)."""
    kwargs: dict[str, Any] = {"dtype": DTYPES[config.model_dtype], "trust_remote_code": config.trust_remote_code}
    if config.attn_implementation:
        kwargs["attn_implementation"] = config.attn_implementation
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if config.disable_dropout:
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
    if getattr(model.config, "use_cache", None):
        model.config.use_cache = False
    return model


def same_model(a: str, b: str) -> bool:
    """Whether two model names or folders are the same model."""
    pa, pb = Path(a), Path(b)
    if pa.exists() and pb.exists():
        return pa.resolve() == pb.resolve()
    return a == b
