"""The independent scorer the log-likelihood tests check the harness against:
lm-eval's context/continuation split redone by hand, and the response
tokens' log-probabilities from one plain transformers forward pass with an
explicit response mask (never through lm-eval or the package)."""

from __future__ import annotations

import torch


def split_request(tok, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context tokens, continuation tokens), split as lm-eval documents it for
    causal models: trailing whitespace of the context moves to the
    continuation, the context and the joined text are tokenized (tokenizer
    defaults), and the continuation is what the joined text has beyond the
    context's token count."""
    n_space = len(context) - len(context.rstrip())
    if n_space:
        context, continuation = context[:-n_space], context[-n_space:] + continuation
    ctx = tok(context)["input_ids"]
    whole = tok(context + continuation)["input_ids"]
    return ctx, whole[len(ctx):]


def target_mask(n_ctx: int, n_cont: int, *, pad: int = 0) -> torch.Tensor:
    """Boolean mask over the *targets* of a (left-padded) sequence: target j is
    token j + 1 (predicted from position j); True where it is a response token."""
    n = pad + n_ctx + n_cont
    tokens = torch.zeros(n, dtype=torch.bool)
    tokens[pad + n_ctx:] = True
    return tokens[1:]


def token_logprobs(model, input_ids: torch.Tensor, **kwargs) -> torch.Tensor:
    """[B, T-1]: log p(token j+1 | tokens <= j) for each sequence of the batch."""
    with torch.inference_mode():
        logits = model(input_ids=input_ids, **kwargs).logits.float()
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    return logp.gather(-1, input_ids[:, 1:, None])[..., 0]


def independent_loglik(model, ctx: list[int], cont: list[int], *, include_prompt: bool = False) -> float:
    """Sum of the response tokens' log-probabilities from one unpadded forward
    pass; ``include_prompt=True`` is the negative control that also sums the
    prompt tokens."""
    lp = token_logprobs(model, torch.tensor([ctx + cont]))[0]
    mask = target_mask(len(ctx), len(cont))
    assert int(mask.sum()) == len(cont)
    if include_prompt:
        mask = torch.ones_like(mask)
    return float(lp[mask].sum())
