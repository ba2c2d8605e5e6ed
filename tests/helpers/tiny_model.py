"""The tiny random model of the suite: the package's builder
(:func:`lm_eval_rankacc.loading.tiny_model.make_tiny_model`, re-exported for
the tests) and :func:`load_float32`, the independent side of the scoring tests."""

from __future__ import annotations

from pathlib import Path

from lm_eval_rankacc.loading.tiny_model import make_tiny_model

__all__ = ["load_float32", "make_tiny_model"]


def load_float32(path: str | Path):
    """(model in eval mode, tokenizer) of a saved model, loaded with plain
    transformers in float32: the independent side of the scoring tests."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    return model, tok
