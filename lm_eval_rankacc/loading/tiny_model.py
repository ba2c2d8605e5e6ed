"""A tiny random causal LM (Llama) with a byte-level BPE tokenizer, built offline.

``make_tiny_model(path)`` writes a folder that ``AutoModelForCausalLM`` /
``AutoTokenizer.from_pretrained(path)`` (and so lm-eval's ``hf`` and
``local-completions`` backends) load without any network access: the
comparison models of the README's analysis recipe (``rankacc tiny-model``)
and of the test suite. Imports torch and transformers inside the builder
only; no lm-eval.

Deterministic: the tokenizer is trained on a fixed corpus and the weights come
from ``torch.manual_seed(seed)`` (default 0), so two calls with the same seed
produce identical models.

The tokenizer is byte-level (GPT-2 style), so it encodes any text, including
non-ASCII, with a small vocabulary (256 byte symbols + a few merges + specials).
It does NOT add BOS/EOS automatically (``add_special_tokens`` is a no-op), which
keeps lm-eval's ``hf`` and API backends tokenizing requests identically.
"""

from __future__ import annotations

from pathlib import Path

BOS_TOKEN = "<|bos|>"
EOS_TOKEN = "<|eos|>"
PAD_TOKEN = "<|pad|>"

VOCAB_SIZE = 320  # 3 specials + 256 byte symbols + merges

_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A helpful assistant answers the question clearly and politely.",
    "The response that is preferred should be ranked above the other one.",
    "Paris is the capital of France, and Berlin is the capital of Germany.",
    "Question: What is two plus two? Answer: four.",
    "She sells sea shells by the sea shore; the shells she sells are surely sea shells.",
    "I think, therefore I am. To be or not to be, that is the question.",
    "Numbers like 0 1 2 3 4 5 6 7 8 9 10 100 and 2024 appear in text.",
    "Hello world! How are you today? I am fine, thank you.",
    "The model assigns a log probability to every token in the continuation.",
]


def _build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[BOS_TOKEN, EOS_TOKEN, PAD_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        clean_up_tokenization_spaces=False,
        model_max_length=512,
    )


def make_tiny_model(path: str | Path, seed: int = 0) -> Path:
    """Create a tiny random Llama model + tokenizer in ``path``; return the path.

    The weights are float32, ``max_position_embeddings`` is 512; ``seed``
    draws them (the tokenizer is the same for every seed).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)

    tokenizer = _build_tokenizer()
    vocab_size = len(tokenizer)

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.float32).eval()
    # A random init with std 0.02 gives near-uniform next-token distributions;
    # sharpen the output layer so that log-probs (and greedy choices) differ
    # visibly between tokens and contexts.
    with torch.no_grad():
        model.lm_head.weight.mul_(10.0)

    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
