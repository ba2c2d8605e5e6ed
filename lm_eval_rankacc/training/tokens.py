"""Tokenization of prompts and responses, as lm-eval scores them, and truncation.

Tokenization (:func:`encode_pairs`) is lm-eval's ``hf`` backend's
(``TemplateLM._encode_pair``): context = prompt, continuation = " " + response
(trailing whitespace of the prompt moved to the continuation), the continuation
tokens are ``encode(context + continuation)[len(encode(context)):]`` and the
model reads ``encode(context) + continuation``; special tokens as the
tokenizer adds them by default. So a checkpoint's log-probabilities here are
the ones ``lm_eval --tasks 'rankacc_*'`` computes (up to truncation).

Truncation (:func:`truncate`), as in the DPO reference code: when the prompt
plus the longer response exceed ``max_length`` tokens, the prompt is cut from
the left to ``max_prompt_length`` tokens; if that is still too long, both
responses are cut from the right to fit. Both responses of a pair always see
the same prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

from lm_eval_rankacc.core.errors import TrainingDataError
from lm_eval_rankacc.loading.documents import JOIN


def _split_context(prompt: str, continuation: str) -> tuple[str, str]:
    """lm-eval's rule: trailing whitespace of the context moves to the continuation."""
    n_spaces = len(prompt) - len(prompt.rstrip())
    if n_spaces:
        return prompt[:-n_spaces], prompt[-n_spaces:] + continuation
    return prompt, continuation


def context_of(prompt: str) -> str:
    """The context lm-eval tokenizes for ``prompt`` (:func:`_split_context`)."""
    return _split_context(prompt, "")[0]


def _encode(tokenizer, texts: list[str]) -> list[list[int]]:
    if not texts:
        return []
    return tokenizer(texts, add_special_tokens=True)["input_ids"]


def encode_pairs(tokenizer, prompts: list[str], responses: list[list[str]]) -> tuple[list[list[int]], list[list[list[int]]]]:
    """(prompt tokens, [response tokens of each response]) per prompt, as lm-eval's
    ``hf`` backend splits context and continuation (prompt + " " + response)."""
    contexts, wholes, shape = [], [], []
    for prompt, resps in zip(prompts, responses):
        ctx = None
        for r in resps:
            c, cont = _split_context(prompt, JOIN + r)
            ctx = c
            wholes.append(c + cont)
        contexts.append(ctx if ctx is not None else prompt)
        shape.append(len(resps))
    ctx_ids = _encode(tokenizer, contexts)
    whole_ids = _encode(tokenizer, wholes)
    out, k = [], 0
    for ids, n in zip(ctx_ids, shape):
        conts = [list(whole_ids[k + j][len(ids):]) for j in range(n)]
        k += n
        out.append(conts)
    return [list(i) for i in ctx_ids], out


def check_lengths(max_length: int, max_prompt_length: int) -> None:
    """:func:`truncate` needs 1 <= max_prompt_length < max_length (checked by
    the options' ``__post_init__`` too, :mod:`.config`)."""
    if not 1 <= max_prompt_length < max_length:
        raise TrainingDataError(
            f"need 1 <= max_prompt_length < max_length, got {max_prompt_length} and {max_length}"
        )


def truncate(
    prompt: list[int], responses: list[list[int]], max_length: int, max_prompt_length: int
) -> tuple[list[int], list[list[int]], bool]:
    """(prompt, responses, truncated?): the prompt cut from the left to
    ``max_prompt_length`` when prompt + the longest response exceed
    ``max_length``; then the responses cut from the right to fit."""
    longest = max((len(r) for r in responses), default=0)
    if len(prompt) + longest <= max_length:
        return prompt, responses, False
    if len(prompt) > max_prompt_length:
        prompt = prompt[-max_prompt_length:]
    room = max_length - len(prompt)
    return prompt, [r[:room] for r in responses], True


@dataclass
class Encoded:
    """Token ids of a list of pairs (or of SFT examples: one response each)."""

    ids: list[str]
    prompt: list[list[int]]
    responses: list[list[list[int]]]
    truncated: int = 0
    #: SFT with ``--sft_all_turns``: per prompt token, whether it is trained on (:mod:`.sft_turns`)
    prompt_targets: list[list[bool]] | None = None

    def __len__(self) -> int:
        return len(self.ids)


def encode(
    tokenizer,
    ids: list[str],
    prompts: list[str],
    responses: list[list[str]],
    max_length: int,
    max_prompt_length: int,
    chunk: int = 2048,
) -> Encoded:
    """Tokenize and truncate, in chunks (the fast tokenizers batch well)."""
    check_lengths(max_length, max_prompt_length)
    out = Encoded(list(ids), [], [])
    for start in range(0, len(prompts), chunk):
        p_ids, r_ids = encode_pairs(tokenizer, prompts[start:start + chunk], responses[start:start + chunk])
        for p, rs in zip(p_ids, r_ids):
            if not p:
                raise TrainingDataError(f"example {ids[start]!r}...: the prompt encodes to no token")
            p, rs, cut = truncate(p, rs, max_length, max_prompt_length)
            out.prompt.append(p)
            out.responses.append(rs)
            out.truncated += cut
    return out
