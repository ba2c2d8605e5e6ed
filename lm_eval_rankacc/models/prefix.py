"""``hf-prefix``: lm-eval's ``hf`` backend, scoring each shared prompt once.

Ranking-accuracy tasks score n responses of a document against one prompt.
The stock backend runs the prompt once per response. This backend packs one
document into a single sequence::

    prompt | response_1[:-1] | response_2[:-1] | ...

with a custom 4-D attention mask under which each response attends to the
prompt and to its own earlier tokens only, and position ids that restart
after the prompt for every response. The logits at a response's positions
are then exactly those of the sequence prompt + response, so the prompt is
run once per document instead of once per response.

Requests whose context is shared with no other request, requests that would
be left-truncated (context + continuation longer than the model's window),
and non-causal models go through the parent's path unchanged. Before the
first packed batch the backend checks itself against the parent's path on
one document and falls back for good (with a warning) if the model ignores
custom 4-D masks or position ids.

Batches: ``batch_size`` documents per forward pass (``auto``: the parent's
detected batch size); documents are sorted longest first to limit padding.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm

from lm_eval_rankacc import packing

log = logging.getLogger("lm-eval")


def pack(context: list[int], continuations: list[list[int]]) -> tuple[packing.PackedSequence, list[int]]:
    """One document's packed sequence with each distinct continuation once, and
    for every continuation the index of its copy in the sequence: identical
    responses get identical scores, as in the stock backend."""
    distinct: dict[tuple[int, ...], int] = {}
    where = [distinct.setdefault(tuple(cont), len(distinct)) for cont in continuations]
    return packing.PackedSequence(context, [list(c) for c in distinct]), where


class HFPrefixLM(HFLM):
    """``--model hf-prefix``: accepts every ``--model_args`` of ``hf``."""

    _checked: bool | None = None  # None: not yet checked; False: packing unusable

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs=None):
        results: list = [None] * len(requests)
        groups: dict[tuple, list[int]] = defaultdict(list)
        fallback: list[int] = []
        for i, (_, ctx, cont) in enumerate(requests):
            fits = len(ctx) + len(cont) <= self.max_length + 1 and len(cont) >= 1 and len(ctx) >= 1
            if self.backend == "causal" and fits and self._checked is not False:
                groups[tuple(ctx)].append(i)
            else:
                fallback.append(i)
        shared = [members for members in groups.values() if len(members) > 1]
        fallback += [members[0] for members in groups.values() if len(members) == 1]

        if shared and self._checked is None:
            self._checked = self._self_check(requests, shared[0])
            if not self._checked:
                fallback += [i for members in shared for i in members]
                shared = []

        if fallback:
            fallback.sort()
            parent = super()._loglikelihood_tokens(
                [requests[i] for i in fallback], disable_tqdm=disable_tqdm, override_bs=override_bs
            )
            for i, answer in zip(fallback, parent, strict=True):
                results[i] = answer
        if shared:
            for i, answer in self._score_packed(requests, shared, disable_tqdm, override_bs):
                results[i] = answer
                self.cache_hook.add_partial("loglikelihood", requests[i][0], answer)
        return results

    # ------------------------------------------------------------------ packing
    def _score_packed(self, requests, shared, disable_tqdm=False, override_bs=None):
        docs = [(members, *pack(requests[members[0]][1], [requests[i][2] for i in members])) for members in shared]
        docs.sort(key=lambda item: -len(item[1]))
        if self.batch_size == "auto":
            batch_size = override_bs or self._detect_batch_size()
        else:
            batch_size = override_bs or int(self.batch_size)
        pbar = tqdm(
            total=sum(len(m) for m, _, _ in docs),
            disable=disable_tqdm or self.rank != 0,
            desc="Running loglikelihood requests (shared prompts)",
        )
        for start in range(0, len(docs), max(1, batch_size)):
            batch = docs[start : start + batch_size]
            for item in self._forward(batch):
                yield item
            pbar.update(sum(len(m) for m, _, _ in batch))
        pbar.close()

    @torch.no_grad()
    def _forward(self, batch):
        """Score a batch of (request indices, packed sequence, copy of each request):
        yields (request index, (log-likelihood, is_greedy))."""
        width = max(len(p) for _, p, _ in batch)
        dtype = self.model.dtype
        ids = torch.full((len(batch), width), self.tokenizer.pad_token_id or 0, dtype=torch.long)
        pos = torch.zeros((len(batch), width), dtype=torch.long)
        allowed = np.zeros((len(batch), 1, width, width), dtype=bool)
        for b, (_, packed, _) in enumerate(batch):
            n = len(packed)
            ids[b, :n] = torch.tensor(packed.tokens)
            pos[b, :n] = torch.tensor(packed.positions)
            allowed[b, 0] = packed.allowed(width)
        mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~torch.from_numpy(allowed), torch.finfo(dtype).min)
        logits = self.model(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            position_ids=pos.to(self.device),
        ).logits
        logprobs = F.log_softmax(logits, dim=-1, dtype=self.softmax_dtype)
        for b, (members, packed, where) in enumerate(batch):
            scores = []
            for k in range(len(packed.continuations)):
                rows = torch.tensor(packed.logit_rows(k), device=logprobs.device)
                cont = torch.tensor(packed.continuations[k], device=logprobs.device)
                lp = logprobs[b, rows]
                greedy = bool((lp.argmax(dim=-1) == cont).all())
                scores.append((float(lp.gather(1, cont[:, None]).sum()), greedy))
            for i, k in zip(members, where):
                yield i, scores[k]

    def _self_check(self, requests, members) -> bool:
        """Packed scores of one document must equal the parent's (:func:`packing.agrees`); else never pack."""
        sub = [requests[i] for i in members]
        expected = super()._loglikelihood_tokens(sub, disable_tqdm=True, override_bs=len(sub))
        try:
            got = [answer for _, answer in self._forward([(members, *pack(sub[0][1], [r[2] for r in sub]))])]
        except Exception as err:  # e.g. an attention kernel that refuses custom 4-D masks
            log.warning("hf-prefix: packed scoring failed on a self-check (%s: %s); scoring every request the hf way",
                        type(err).__name__, err)
            return False
        ok, worst = packing.agrees([a[0] for a in got], [b[0] for b in expected], str(self.model.dtype))
        if not ok:
            log.warning(
                "hf-prefix: this model does not honour packed 4-D attention masks "
                "(difference %.3g beyond the tolerance on a self-check); scoring every request the hf way",
                worst,
            )
        return ok
