"""The cached route of ``hf-prefix``: one document's prompt run once with its
key/value cache, then its responses scored as one batch attending to that cache.

For a document with prompt ``x`` (P tokens) and distinct responses
``y_1 .. y_n``:

1. ``x`` alone runs once with ``use_cache=True``; its last row's logits
   predict the first token of every response.
2. The cache is repeated once per response of two tokens or more
   (``batch_repeat_interleave``) and ``y_k[:-1]`` (right-padded to the
   longest) run as one batch of n rows at positions P, P+1, ...: each row
   attends to the prompt's keys and values and to its own earlier tokens
   only (the model's own causal mask; right padding comes after every real
   token, so no row reads it), never to another response.

The next-token log-probabilities are then those of the sequence ``x + y_k``
(Def. of lm-eval's ``loglikelihood``), up to floating-point rounding, which
:func:`lm_eval_rankacc.core.packing.agrees` bounds; no custom 4-D mask is
passed, so fused attention kernels apply. The packed route
(:mod:`.prefix`) computes attention over the whole packed document; this one
over prompt + own response only, at the price of one more forward pass per
document and a copy of the cache per response: which is faster depends on
n and the lengths (:func:`lm_eval_rankacc.core.packing.route`).
"""

from __future__ import annotations

import inspect

import numpy as np
import torch
import torch.nn.functional as F


@torch.no_grad()
def score_cached(model, context: list[int], continuations: list[list[int]], device, softmax_dtype=None,
                 keeps_logits: bool = True) -> list[tuple[float, bool]]:
    """(log-likelihood, is_greedy) of each continuation given ``context``, by the
    cached route (see the module docstring). Empty continuations score (0.0, True)."""
    ids = torch.tensor([context], dtype=torch.long, device=device)
    out = model(input_ids=ids, use_cache=True, **({"logits_to_keep": 1} if keeps_logits else {}))
    last = out.logits[0, -1]
    first = F.log_softmax(last, dim=-1, dtype=softmax_dtype)
    first_best = int(last.argmax())
    answers = [(0.0, True) if not c else (float(first[c[0]]), c[0] == first_best) for c in continuations]
    rest = [k for k, c in enumerate(continuations) if len(c) >= 2]
    if not rest:
        return answers
    cache = getattr(out, "cache", None) or out.past_key_values
    if len(rest) > 1:
        cache.batch_repeat_interleave(len(rest))
    width = max(len(continuations[k]) - 1 for k in rest)
    tokens = np.zeros((len(rest), width), dtype=np.int64)  # padding: token 0, after every real token
    keep = np.zeros((len(rest), width), dtype=bool)
    for row, k in enumerate(rest):
        inputs = continuations[k][:-1]
        tokens[row, :len(inputs)] = inputs
        keep[row, :len(inputs)] = True
    positions = torch.arange(len(context), len(context) + width, device=device).expand(len(rest), width)
    kwargs = dict(input_ids=torch.from_numpy(tokens).to(device), position_ids=positions,
                  use_cache=True, **{_cache_argument(model): cache})
    keep_t = torch.from_numpy(keep).to(device)
    logits = model(**kwargs, logits_to_keep=keep_t).logits if keeps_logits else model(**kwargs).logits[keep_t]
    targets = torch.tensor([t for k in rest for t in continuations[k][1:]], dtype=torch.long, device=device)
    owner = torch.tensor([row for row, k in enumerate(rest) for _ in continuations[k][1:]], device=device)
    logp = F.log_softmax(logits, dim=-1, dtype=softmax_dtype).gather(1, targets[:, None])[:, 0]
    missed = (logits.argmax(dim=-1) != targets).long()
    sums = torch.zeros(len(rest), dtype=torch.float64, device=device).index_add_(0, owner, logp.double())
    wrong = torch.zeros(len(rest), dtype=torch.long, device=device).index_add_(0, owner, missed)
    for row, k in enumerate(rest):
        ll, greedy = answers[k]
        answers[k] = (ll + float(sums[row]), greedy and not int(wrong[row]))
    return answers


def _cache_argument(model) -> str:
    """The name ``forward`` takes the cache under: ``cache`` (transformers >= 5.2x), else ``past_key_values``."""
    try:
        return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    except (TypeError, ValueError):
        return "past_key_values"
