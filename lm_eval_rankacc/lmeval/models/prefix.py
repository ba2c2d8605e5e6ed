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

Batches: a token budget per forward pass (:func:`packing.plan_batches`:
documents longest first, several short ones side by side in a row in place of
padding). ``--batch_size N`` gives the budget N x the longest request as the
stock backend runs it (its largest batch); ``auto`` detects how many rows as
wide as the longest packed document fit. Logits are computed at the rows that
predict a response token only (``logits_to_keep`` where the model takes it),
and the log-softmax over the vocabulary only there.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm

from lm_eval_rankacc.core import packing
from lm_eval_rankacc.lmeval.models.prefix_cache import score_cached

log = logging.getLogger("lm-eval")


def pack(context: list[int], continuations: list[list[int]]) -> tuple[packing.PackedSequence, list[int]]:
    """One document's packed sequence with each distinct continuation once, and
    for every continuation the index of its copy in the sequence: identical
    responses get identical scores, as in the stock backend."""
    distinct: dict[tuple[int, ...], int] = {}
    where = [distinct.setdefault(tuple(cont), len(distinct)) for cont in continuations]
    return packing.PackedSequence(context, [list(c) for c in distinct]), where


class HFPrefixLM(HFLM):
    """``--model hf-prefix``: accepts every ``--model_args`` of ``hf``, and
    ``prefix_route``: ``auto`` (per document, :func:`packing.route`), ``packed``
    or ``cached`` (every shared document by that route)."""

    _checked: bool | None = None  # None: not yet checked; False: packing unusable
    _cache_ok: bool | None = None  # the same for the cached route (False: packed route only)
    _keeps_logits: bool | None = None  # whether model(..., logits_to_keep=<2-D bool>) returns the kept rows

    def __init__(self, *args, prefix_route: str = "auto", **kwargs):
        if prefix_route not in packing.ROUTES:
            raise ValueError(f"hf-prefix: prefix_route must be one of {', '.join(packing.ROUTES)}, got {prefix_route!r}")
        super().__init__(*args, **kwargs)
        self.prefix_route = prefix_route

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

        checked: list = []
        if shared and self._checked is None:
            probe = min(shared, key=lambda members: _probe_order(requests, members))
            answers = self._self_check(requests, probe)
            self._checked = answers is not None
            if answers is None:
                fallback += [i for members in shared for i in members]
                shared = []
            else:  # the probe's packed scores are kept: it is not scored again
                checked, shared = answers, [members for members in shared if members is not probe]

        if fallback:
            fallback.sort()
            parent = super()._loglikelihood_tokens(
                [requests[i] for i in fallback], disable_tqdm=disable_tqdm, override_bs=override_bs
            )
            for i, answer in zip(fallback, parent, strict=True):
                results[i] = answer
        if shared or checked:
            for i, answer in [*checked, *self._score_packed(requests, shared, disable_tqdm, override_bs)]:
                results[i] = answer
                self.cache_hook.add_partial("loglikelihood", requests[i][0], answer)
        return results

    # ------------------------------------------------------------------ packing
    def _route(self, packed: packing.PackedSequence) -> str:
        """``packed`` or ``cached`` for one document (``prefix_route``, else :func:`packing.route`)."""
        if self._cache_ok is False:
            return "packed"
        if self.prefix_route != "auto":
            return self.prefix_route
        return packing.route(len(packed.context), [len(c) for c in packed.continuations])

    def _score_packed(self, requests, shared, disable_tqdm=False, override_bs=None):
        docs = [(members, *pack(requests[members[0]][1], [requests[i][2] for i in members])) for members in shared]
        cached = [d for d in docs if self._route(d[1]) == "cached"]
        docs = [d for d in docs if self._route(d[1]) != "cached"]
        for members, packed, where in tqdm(cached, disable=disable_tqdm or self.rank != 0 or not cached,
                                           desc="Running loglikelihood requests (shared prompts, cached)"):
            answers = self._forward_cached(packed)
            yield from ((i, answers[k]) for i, k in zip(members, where))
        if not docs:
            return
        plan = packing.plan_batches([len(p) for _, p, _ in docs], self._budget(requests, docs, override_bs))
        pbar = tqdm(
            total=sum(len(m) for m, _, _ in docs),
            disable=disable_tqdm or self.rank != 0,
            desc="Running loglikelihood requests (shared prompts)",
        )
        for batch in plan:
            rows = [[docs[d] for d in row] for row in batch]
            yield from self._forward(rows)
            pbar.update(sum(len(docs[d][0]) for row in batch for d in row))
        pbar.close()

    def _budget(self, requests, docs, override_bs=None) -> int:
        """Tokens per forward pass: ``batch_size`` x the longest request as the
        stock backend runs it (context + continuation - 1); ``auto``: the
        parent's detected batch size for sequences as wide as the longest
        packed document (at most the window), times that width."""
        if self.batch_size == "auto" and not override_bs:
            width = min(max(len(p) for _, p, _ in docs), self.max_length)
            return self._detect_batch_size([(None, [0] * width, [0])]) * width
        longest = max(len(requests[i][1]) + len(requests[i][2]) - 1 for members, _, _ in docs for i in members)
        return max(1, int(override_bs or self.batch_size)) * longest

    @torch.no_grad()
    def _forward(self, batch):
        """Score a batch of rows, each a list of (request indices, packed sequence,
        copy of each request) side by side: yields (request index, (log-likelihood, is_greedy))."""
        width = max(sum(len(p) for _, p, _ in row) for row in batch)
        ids = np.zeros((len(batch), width), dtype=np.int64)  # padding: token 0, as the stock backend pads
        pos = np.zeros((len(batch), width), dtype=np.int64)
        allowed = np.zeros((len(batch), 1, width, width), dtype=bool)
        keep = np.zeros((len(batch), width), dtype=bool)
        targets: list[tuple[int, int, int, int]] = []  # (row, column, token id, continuation number)
        docs = []  # (request indices, copy of each request, number of its first continuation)
        for r, row in enumerate(batch):
            ids[r], pos[r], allowed[r, 0], offsets = packing.layout_row([p for _, p, _ in row], width)
            for (members, packed, where), offset in zip(row, offsets, strict=True):
                first, end = packed.scored_rows()
                keep[r, offset + first : offset + end] = True
                base = docs[-1][2] + docs[-1][3] if docs else 0
                for k, cont in enumerate(packed.continuations):
                    targets += [(r, offset + at, tok, base + k) for at, tok in zip(packed.logit_rows(k), cont)]
                docs.append((members, where, base, len(packed.continuations)))
        logits = self._kept_logits(ids, pos, allowed, keep)
        n_conts = docs[-1][2] + docs[-1][3]
        answers = _continuation_scores(logits, keep, targets, n_conts, self.softmax_dtype)
        for members, where, base, _ in docs:
            for i, k in zip(members, where):
                yield i, answers[base + k]

    def _forward_cached(self, packed: packing.PackedSequence) -> list[tuple[float, bool]]:
        """One document by the cached route (:mod:`.prefix_cache`): (log-likelihood, is_greedy)
        of each of its distinct continuations."""
        return score_cached(self.model, packed.context, packed.continuations, self.device, self.softmax_dtype,
                            keeps_logits=self._keeps_logits is not False)

    def _kept_logits(self, ids, pos, allowed, keep) -> torch.Tensor:
        """The model's logits at the ``keep`` rows only, (kept rows, vocabulary),
        in row-major order of ``keep``."""
        mask = torch.from_numpy(allowed)
        if getattr(self.model.config, "_attn_implementation", "eager") != "sdpa":  # eager adds the mask to the scores
            dtype = self.model.dtype
            mask = torch.zeros(mask.shape, dtype=dtype).masked_fill_(~mask, torch.finfo(dtype).min)
        keep_t = torch.from_numpy(keep).to(self.device)
        kwargs = dict(input_ids=torch.from_numpy(ids).to(self.device), attention_mask=mask.to(self.device),
                      position_ids=torch.from_numpy(pos).to(self.device), use_cache=False)
        if self._keeps_logits is not False:
            try:
                logits = self.model(**kwargs, logits_to_keep=keep_t).logits
            except TypeError:  # a model whose forward takes no logits_to_keep
                logits = None
            self._keeps_logits = logits is not None and logits.dim() == 2 and logits.shape[0] == int(keep.sum())
            if self._keeps_logits:
                return logits
        return self.model(**kwargs).logits[keep_t]

    def _self_check(self, requests, members) -> list | None:
        """Packed scores of one document, [(request index, answer)], when they equal
        the parent's (:func:`packing.agrees`); else None: never pack."""
        sub = [requests[i] for i in members]
        expected = super()._loglikelihood_tokens(sub, disable_tqdm=True, override_bs=len(sub))
        try:
            got = list(self._forward([[(members, *pack(sub[0][1], [r[2] for r in sub]))]]))
        except Exception as err:  # e.g. an attention kernel that refuses custom 4-D masks
            log.warning("hf-prefix: packed scoring failed on a self-check (%s: %s); scoring every request the hf way",
                        type(err).__name__, err)
            return None
        ok, worst = packing.agrees([a[0] for _, a in got], [b[0] for b in expected], str(self.model.dtype))
        if not ok:
            log.warning(
                "hf-prefix: this model does not honour packed 4-D attention masks "
                "(difference %.3g beyond the tolerance on a self-check); scoring every request the hf way",
                worst,
            )
            return None
        if self.prefix_route == "cached":  # auto takes the packed route (packing.route)
            self._cache_ok = self._check_cached(sub, [b[0] for b in expected])
        return got

    def _check_cached(self, sub, expected) -> bool:
        """Whether the cached route gives the parent's scores on the self-check's document."""
        packed, where = pack(sub[0][1], [r[2] for r in sub])
        try:
            answers = self._forward_cached(packed)
        except Exception as err:  # e.g. a model without a key/value cache
            log.warning("hf-prefix: the cached route failed on a self-check (%s: %s); packed route only",
                        type(err).__name__, err)
            return False
        ok, worst = packing.agrees([answers[k][0] for k in where], expected, str(self.model.dtype))
        if not ok:
            log.warning("hf-prefix: the cached route differs by %.3g on a self-check; packed route only", worst)
        return ok


def _probe_order(requests, members) -> tuple:
    """Which document the self-check scores both ways: the shortest with two
    continuations of two tokens or more (so one response's rows could see the
    other's, were the mask ignored), else the shortest."""
    lengths = [len(requests[i][2]) for i in members]
    distinct = {tuple(requests[i][2]) for i in members if len(requests[i][2]) >= 2}
    return len(distinct) < 2, len(requests[members[0]][1]) + sum(lengths)


def _continuation_scores(logits, keep, targets, n_conts, softmax_dtype) -> list[tuple[float, bool]]:
    """(log-likelihood, is_greedy) of each continuation from the kept logits:
    log-softmax at the target rows only (Def. of lm-eval's loglikelihood)."""
    if not targets:
        return [(0.0, True)] * n_conts
    rank = np.cumsum(keep.reshape(-1)) - 1  # row of each kept position among the logits
    r, c, tok, owner = (np.asarray(col, dtype=np.int64) for col in zip(*targets))
    dev = logits.device
    rows = torch.from_numpy(rank[r * keep.shape[1] + c]).to(dev)
    tok_t, owner_t = torch.from_numpy(tok).to(dev), torch.from_numpy(owner).to(dev)
    # the stock backend's own kernel (torch.logsumexp rounds differently, ~1e-5 a token in float32)
    logp = F.log_softmax(logits, dim=-1, dtype=softmax_dtype)[rows, tok_t]
    missed = (logits.argmax(dim=-1)[rows] != tok_t).long()
    sums = torch.zeros(n_conts, dtype=torch.float64, device=dev).index_add_(0, owner_t, logp.double())
    wrong = torch.zeros(n_conts, dtype=torch.long, device=dev).index_add_(0, owner_t, missed)
    return [(float(s), not bool(w)) for s, w in zip(sums.cpu(), wrong.cpu())]
