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

import torch
import torch.nn.functional as F
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm

log = logging.getLogger("lm-eval")

#: Self-check tolerance on a log-likelihood, absolute + relative by dtype: float32
#: sums over thousands of tokens carry ~1e-7 relative rounding (the stock
#: backend moves that much between batch sizes); bf16 / fp16 carry ~1e-2.
#: A model that ignores the packed mask is off by whole nats.
SELF_CHECK_TOL = {torch.float32: (1e-4, 1e-6), torch.float64: (1e-8, 1e-12)}
DEFAULT_TOL = (5e-2, 1e-2)


class Packed:
    """One document packed into one sequence."""

    def __init__(self, context: list[int], conts: list[list[int]]):
        self.context = context
        self.conts = conts
        tokens = list(context)
        positions = list(range(len(context)))
        segments = []  # (start, length) of each continuation's input tokens
        for cont in conts:
            start = len(tokens)
            tokens += cont[:-1]
            positions += range(len(context), len(context) + len(cont) - 1)
            segments.append((start, len(cont) - 1))
        self.tokens, self.positions, self.segments = tokens, positions, segments

    def __len__(self) -> int:
        return len(self.tokens)

    def allowed(self) -> torch.Tensor:
        """[L, L] bool: query i may attend key j."""
        n, lc = len(self.tokens), len(self.context)
        allow = torch.zeros(n, n, dtype=torch.bool)
        allow[:lc, :lc] = torch.ones(lc, lc, dtype=torch.bool).tril()
        for start, length in self.segments:
            end = start + length
            allow[start:end, :lc] = True
            allow[start:end, start:end] = torch.ones(length, length, dtype=torch.bool).tril()
        return allow

    def logit_rows(self, i: int) -> list[int]:
        """Rows whose next-token logits predict continuation i's tokens."""
        start, length = self.segments[i]
        return [len(self.context) - 1] + list(range(start, start + length))


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
        docs = [(members, Packed(requests[members[0]][1], [requests[i][2] for i in members])) for members in shared]
        docs.sort(key=lambda item: -len(item[1]))
        if self.batch_size == "auto":
            batch_size = override_bs or self._detect_batch_size()
        else:
            batch_size = override_bs or int(self.batch_size)
        pbar = tqdm(
            total=sum(len(m) for m, _ in docs),
            disable=disable_tqdm or self.rank != 0,
            desc="Running loglikelihood requests (shared prompts)",
        )
        for start in range(0, len(docs), max(1, batch_size)):
            batch = docs[start : start + batch_size]
            for item in self._forward(batch):
                yield item
            pbar.update(sum(len(m) for m, _ in batch))
        pbar.close()

    @torch.no_grad()
    def _forward(self, batch):
        width = max(len(p) for _, p in batch)
        dtype = self.model.dtype
        neg = torch.finfo(dtype).min
        ids = torch.full((len(batch), width), self.tokenizer.pad_token_id or 0, dtype=torch.long)
        pos = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.full((len(batch), 1, width, width), neg, dtype=dtype)
        for b, (_, packed) in enumerate(batch):
            n = len(packed)
            ids[b, :n] = torch.tensor(packed.tokens)
            pos[b, :n] = torch.tensor(packed.positions)
            mask[b, 0, :n, :n].masked_fill_(packed.allowed(), 0.0)
            mask[b, 0, n:, 0] = 0.0  # padding rows (never read) attend to one key: no NaN
        logits = self.model(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            position_ids=pos.to(self.device),
        ).logits
        logprobs = F.log_softmax(logits, dim=-1, dtype=self.softmax_dtype)
        for b, (members, packed) in enumerate(batch):
            for k, i in enumerate(members):
                rows = torch.tensor(packed.logit_rows(k), device=logprobs.device)
                cont = torch.tensor(packed.conts[k], device=logprobs.device)
                lp = logprobs[b, rows]
                greedy = bool((lp.argmax(dim=-1) == cont).all())
                yield i, (float(lp.gather(1, cont[:, None]).sum()), greedy)

    def _self_check(self, requests, members) -> bool:
        """Packed scores of one document must equal the parent's; else never pack."""
        sub = [requests[i] for i in members]
        expected = super()._loglikelihood_tokens(sub, disable_tqdm=True, override_bs=len(sub))
        try:
            got = [answer for _, answer in self._forward([(members, Packed(sub[0][1], [r[2] for r in sub]))])]
        except Exception as err:  # e.g. an attention kernel that refuses custom 4-D masks
            log.warning("hf-prefix: packed scoring failed on a self-check (%s: %s); scoring every request the hf way",
                        type(err).__name__, err)
            return False
        atol, rtol = SELF_CHECK_TOL.get(self.model.dtype, DEFAULT_TOL)
        worst = max(abs(a[0] - b[0]) - rtol * abs(b[0]) for a, b in zip(got, expected))
        if worst > atol:
            log.warning(
                "hf-prefix: this model does not honour packed 4-D attention masks "
                "(difference %.3g beyond the tolerance %.3g on a self-check); scoring every request the hf way",
                worst, atol,
            )
            return False
        return True
