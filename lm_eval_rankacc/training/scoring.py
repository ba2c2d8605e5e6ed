"""Batches of preference pairs and their response log-probabilities.

Two layouts of a batch of B pairs, numerically the same scores:

- **packed** (default): one row per pair, ``prompt | chosen[:-1] | rejected[:-1]``,
  with a 4-D attention mask under which each response attends to the prompt
  and to its own earlier tokens only, and position ids that restart after the
  prompt for each response: the prompt-once layout of :mod:`lm_eval_rankacc.core.packing`,
  shared with the ``hf-prefix`` backend. The prompt is run once per pair instead of twice
  (on HH-RLHF about 37 % fewer tokens). It needs an attention implementation
  that honours custom 4-D masks (``sdpa``, ``eager``); :func:`packing_agrees`
  checks a model once and training falls back to the plain layout if not.
- **plain**: 2B rows, ``prompt + chosen`` then ``prompt + rejected``, right-padded.

In both, logits are computed only at the positions that predict a response
token (``logits_to_keep`` as a boolean mask, transformers >= 5; otherwise the
full logits are sliced), and a response's score is the sum of its tokens'
log-probabilities: lm-eval's ``loglikelihood`` of " " + response given the prompt.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lm_eval_rankacc.core import batch_rows, packing

log = logging.getLogger("lm_eval_rankacc.training")

#: Dataset codes carried in ``pair_index`` (column 0) so that gathered
#: predictions say which set they belong to.
CODES = {"train": 0, "tracking": 1, "validation": 2, "reference": 3}
SET_NAMES = {v: k for k, v in CODES.items()}


class PairDataset(torch.utils.data.Dataset):
    """Tokenized pairs of one set, with one reference log-prob per response.

    ``order`` (optional) lists which pairs, in which order, the dataset
    serves (evaluation sets are served longest first, which keeps padding
    low); ``index`` in each item is the position in the full lists.
    """

    def __init__(self, name: str, ids: list[str], doc_ids: list[str], prompt: list[list[int]],
                 chosen: list[list[int]], rejected: list[list[int]], order: np.ndarray | None = None):
        self.name, self.code = name, CODES[name]
        self.ids, self.doc_ids = ids, doc_ids
        self.prompt, self.chosen, self.rejected = prompt, chosen, rejected
        self.ref = np.full((len(ids), 2), np.nan)  # (chosen, rejected) log pRef
        self.order = np.arange(len(ids)) if order is None else np.asarray(order, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, k: int) -> dict[str, Any]:
        i = int(self.order[k])
        return {
            "code": self.code, "index": i, "prompt_ids": self.prompt[i],
            "chosen_ids": self.chosen[i], "rejected_ids": self.rejected[i], "ref": self.ref[i],
        }

    def lengths(self) -> np.ndarray:
        return np.array([len(p) + len(c) + len(r) for p, c, r in zip(self.prompt, self.chosen, self.rejected)])

    def view(self, name: str, indices: np.ndarray, longest_first: bool = True) -> PairDataset:
        """The same pairs (shared lists, shared ``ref``), serving ``indices``."""
        indices = np.asarray(indices, dtype=np.int64)
        if longest_first:
            lengths = self.lengths()[indices]
            indices = indices[np.argsort(-lengths, kind="stable")]
        out = PairDataset.__new__(PairDataset)
        out.__dict__.update(self.__dict__)
        out.name, out.code, out.order = name, CODES[name], indices
        return out

    def tokens(self) -> int:
        """Tokens of the two sequences (prompt + response) of every served pair."""
        o = self.order
        return int(sum(2 * len(self.prompt[i]) + len(self.chosen[i]) + len(self.rejected[i]) for i in o))


@dataclass
class PairCollator:
    """Pads a list of dataset items into one model batch (see the module docstring)."""

    pad_token_id: int
    packed: bool = True
    pad_to_multiple_of: int | None = None
    #: packed rows: the cost of attention per query-key pair relative to a token's other work
    #: (:func:`attention_cost`); None: rows as wide as the longest pair (:mod:`.core.batch_rows`)
    attention_cost: float | None = None

    def _width(self, n: int) -> int:
        m = self.pad_to_multiple_of
        return n if not m else -(-n // m) * m

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return self.packed_batch(items) if self.packed else self.plain_batch(items)

    @staticmethod
    def _common(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return {
            "pair_index": torch.tensor([[it["code"], it["index"]] for it in items], dtype=torch.long),
            "ref_logps": torch.tensor(np.array([it["ref"] for it in items], dtype=np.float64).reshape(-1, 2)),
            # identical responses are not scored twice: the rejected one takes the chosen one's score,
            # so the two are exactly equal (ranked correctly, Def. 2.3) on every device
            "same_response": torch.tensor([_same(it) for it in items], dtype=torch.bool),
        }

    def plain_batch(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        b = len(items)
        seqs = [(it["prompt_ids"], it["chosen_ids"]) for it in items] + [
            (it["prompt_ids"], [] if _same(it) else it["rejected_ids"]) for it in items]
        width = self._width(max(len(p) + len(r) for p, r in seqs))
        ids = np.full((2 * b, width), self.pad_token_id, dtype=np.int64)
        mask = np.zeros((2 * b, width), dtype=np.int64)
        keep = np.zeros((2 * b, width), dtype=bool)
        rows, targets, owners = [], [], []
        for s, (p, r) in enumerate(seqs):
            n = len(p) + len(r)
            ids[s, :len(p)] = p
            ids[s, len(p):n] = r
            mask[s, :n] = 1
            if r:
                keep[s, len(p) - 1:n - 1] = True
                rows.append((s, np.arange(len(p) - 1, n - 1)))
                targets.append(np.asarray(r, dtype=np.int64))
                owners.append(np.full(len(r), s, dtype=np.int64))
        out = self._targets(keep, rows, targets, owners)
        positions = np.broadcast_to(np.arange(width, dtype=np.int64), (2 * b, width)).copy()
        out.update(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                   position_ids=torch.from_numpy(positions), **self._common(items))
        return out

    def packed_batch(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """The pairs in the prompt-once layout of :class:`lm_eval_rankacc.core.packing.PackedSequence`
        (continuations: the chosen response, then the rejected one unless it is the same), side by
        side in the rows :func:`lm_eval_rankacc.core.batch_rows.plan_rows` picks for
        ``attention_cost``, each attending within itself only."""
        b = len(items)
        layouts = [packing.PackedSequence(it["prompt_ids"], [it["chosen_ids"]] if _same(it)
                                          else [it["chosen_ids"], it["rejected_ids"]]) for it in items]
        plan = batch_rows.plan_rows([len(seq) for seq in layouts], self.attention_cost)
        width = self._width(max(sum(len(layouts[i]) for i in row) for row in plan))
        ids = np.full((len(plan), width), self.pad_token_id, dtype=np.int64)
        positions = np.zeros((len(plan), width), dtype=np.int64)
        allowed = np.zeros((len(plan), width, width), dtype=bool)
        keep = np.zeros((len(plan), width), dtype=bool)
        rows, targets, owners = [], [], []
        for r, members in enumerate(plan):
            tokens, positions[r], allowed[r], offsets = packing.layout_row([layouts[i] for i in members], width)
            used = sum(len(layouts[i]) for i in members)
            ids[r, :used] = tokens[:used]
            for s, offset in zip(members, offsets):
                seq = layouts[s]
                first, end = seq.scored_rows()
                keep[r, offset + first:offset + end] = True
                for k, (resp, owner) in enumerate(zip(seq.continuations, (s, b + s))):
                    if resp:
                        rows.append((r, offset + np.asarray(seq.logit_rows(k), dtype=np.int64)))
                        targets.append(np.asarray(resp, dtype=np.int64))
                        owners.append(np.full(len(resp), owner, dtype=np.int64))
        out = self._targets(keep, rows, targets, owners)
        out.update(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(allowed[:, None]),
                   position_ids=torch.from_numpy(positions), **self._common(items))
        return out

    @staticmethod
    def _targets(keep: np.ndarray, rows, targets, owners) -> dict[str, torch.Tensor]:
        """For every response token: its row among the kept logits (row-major
        order of ``keep``), its token id and the sequence it belongs to."""
        rank = np.cumsum(keep.reshape(-1)) - 1
        width = keep.shape[1]
        kept_rows = [rank[s * width + pos] for s, pos in rows]
        cat = (lambda xs: np.concatenate(xs) if xs else np.zeros(0, dtype=np.int64))
        return {
            "keep_mask": torch.from_numpy(keep),
            "target_rows": torch.from_numpy(cat(kept_rows).astype(np.int64)),
            "target_ids": torch.from_numpy(cat(targets)),
            "target_owner": torch.from_numpy(cat(owners)),
        }


def _same(item: dict[str, Any]) -> bool:
    return list(item["chosen_ids"]) == list(item["rejected_ids"])


#: Keys of a batch that are not model inputs.
NON_MODEL_KEYS = ("pair_index", "ref_logps", "keep_mask", "target_rows", "target_ids", "target_owner",
                  "same_response")


def supports_logits_to_keep_mask(model: torch.nn.Module) -> bool:
    """Whether ``model(..., logits_to_keep=<2-D bool mask>)`` returns the kept rows only."""
    try:
        from transformers import modeling_utils
    except ImportError:  # pragma: no cover
        return False
    if not hasattr(modeling_utils, "slice_logits_to_keep"):
        return False
    try:
        return "logits_to_keep" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def attention_kind(model: torch.nn.Module) -> str:
    config = getattr(model, "config", None)
    return str(getattr(config, "_attn_implementation", None) or "eager")


def packing_possible(model: torch.nn.Module) -> bool:
    """Custom 4-D masks are honoured by the ``sdpa`` and ``eager`` attention of transformers."""
    return attention_kind(model) in ("sdpa", "eager")


def response_logps(model: torch.nn.Module, batch: dict[str, torch.Tensor], n_pairs: int,
                   logits_to_keep: bool = True, attention: str = "sdpa") -> tuple[torch.Tensor, torch.Tensor]:
    """(log pi(chosen | prompt), log pi(rejected | prompt)), each (n_pairs,), float32."""
    mask = batch["attention_mask"]
    if mask.dim() == 4 and attention == "eager":  # eager adds the mask to the scores
        dtype = next(model.parameters()).dtype
        mask = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, torch.finfo(dtype).min)
    keep = batch["keep_mask"]
    kwargs = dict(input_ids=batch["input_ids"], attention_mask=mask, position_ids=batch["position_ids"], use_cache=False)
    if logits_to_keep:
        logits = model(**kwargs, logits_to_keep=keep).logits
        if logits.dim() != 2 or logits.shape[0] != int(keep.sum()):
            raise RuntimeError(
                f"the model returned logits of shape {tuple(logits.shape)} for a boolean logits_to_keep mask "
                f"of {int(keep.sum())} positions; this transformers version does not support it"
            )
    else:
        logits = model(**kwargs).logits[keep]
    picked = target_logps(logits, batch["target_rows"], batch["target_ids"])
    logps = torch.zeros(2 * n_pairs, dtype=picked.dtype, device=picked.device)
    logps = logps.index_add(0, batch["target_owner"], picked)
    chosen, rejected = logps[:n_pairs], logps[n_pairs:]
    if "same_response" in batch:
        rejected = torch.where(batch["same_response"], chosen, rejected)
    return chosen, rejected


#: Logit rows per chunk of :func:`target_logps` (a chunk's float32 copy: 256 x vocabulary).
CHUNK_ROWS = 256


class _TargetLogps(torch.autograd.Function):
    """log softmax(logits[row])[token] for each (row, token), the log-softmax
    taken in chunks of rows (see :func:`target_logps`)."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, rows: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        lse = torch.empty(logits.shape[0], dtype=torch.float32, device=logits.device)
        for start in range(0, logits.shape[0], CHUNK_ROWS):
            lse[start:start + CHUNK_ROWS] = torch.logsumexp(logits[start:start + CHUNK_ROWS].float(), dim=-1)
        ctx.save_for_backward(logits, lse, rows, tokens)
        return logits[rows, tokens].float() - lse[rows]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205
        logits, lse, rows, tokens = ctx.saved_tensors
        # d/dlogits of sum_t g_t (logit[r_t, y_t] - lse[r_t]) = onehot(y_t) g_t - softmax(logits[r]) sum_{t: r_t = r} g_t
        weight = torch.zeros(logits.shape[0], dtype=torch.float32, device=logits.device).index_add_(0, rows, grad.float())
        out = torch.empty_like(logits)
        for start in range(0, logits.shape[0], CHUNK_ROWS):
            chunk = slice(start, start + CHUNK_ROWS)
            probs = (logits[chunk].float() - lse[chunk, None]).exp_()
            out[chunk] = probs.mul_(weight[chunk, None].neg())
        out.index_put_((rows, tokens), grad.to(out.dtype), accumulate=True)
        return out, None, None


def target_logps(logits: torch.Tensor, rows: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """float32 ``log_softmax(logits[rows[t]])[tokens[t]]`` for every t, differentiable in ``logits``.

    The log-sum-exp over the vocabulary is computed :data:`CHUNK_ROWS` rows at a
    time in float32 and the gradient written chunk by chunk into one tensor of
    the logits' shape and dtype: no full float32 copy of the logits, no
    log-softmax tensor, no second gradient tensor is held (autograd's
    ``logits.float().log_softmax(-1)[rows, tokens]`` holds four of
    [kept positions, vocabulary]). The values are those of ``torch.logsumexp``
    row by row; the gradient is softmax's, written out."""
    return _TargetLogps.apply(logits, rows, tokens)


#: A FLOP of attention under a dense 4-D mask costs this many FLOPs of the weight products:
#: fitted on SmolLM2-135M, forward + backward, one CPU thread (``scripts/bench_training.py
#: --calibrate``: 5.2e-4 measured against 3.25e-4 counted).
MASKED_ATTENTION_SLOWDOWN = 1.6


def attention_cost(model: torch.nn.Module) -> float | None:
    """The attention cost per query-key pair relative to a token's other work
    (:mod:`lm_eval_rankacc.core.batch_rows`): ``2 h d / P`` from the model's
    config (``h`` query heads of size ``d``, ``P`` weights per layer outside
    the embeddings) times :data:`MASKED_ATTENTION_SLOWDOWN`; None when the
    config does not say."""
    config = getattr(model, "config", None)
    get = (lambda name: getattr(config, name, None))
    layers, heads, hidden = get("num_hidden_layers"), get("num_attention_heads"), get("hidden_size")
    if not (layers and heads and hidden):
        return None
    head_dim = get("head_dim") or hidden // heads
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if out is not None:
        embeddings.add(id(out.weight))
    body = sum(p.numel() for p in model.parameters() if id(p) not in embeddings)
    return MASKED_ATTENTION_SLOWDOWN * 2.0 * heads * head_dim * layers / body if body else None


@torch.no_grad()
def packing_agrees(model: torch.nn.Module, items: list[dict[str, Any]], pad_token_id: int,
                   logits_to_keep: bool, device: torch.device | str = "cpu") -> tuple[bool, float]:
    """Score ``items`` both ways; (agree within :func:`lm_eval_rankacc.core.packing.tolerance`?,
    largest difference). A model that ignores custom 4-D masks or position ids
    gives differences of whole nats."""
    was_training = model.training
    model.eval()
    attention = attention_kind(model)
    out = []
    for packed in (True, False):
        batch = PairCollator(pad_token_id, packed)(items)
        batch = {k: v.to(device) for k, v in batch.items()}
        c, r = response_logps(model, batch, len(items), logits_to_keep, attention)
        out.append(torch.cat([c, r]).double().cpu())
    model.train(was_training)
    return packing.agrees(out[0].numpy(), out[1].numpy(), str(next(model.parameters()).dtype))


@torch.no_grad()
def score_pairs(model: torch.nn.Module, pairs: PairDataset, pad_token_id: int, batch_size: int = 8,
                packed: bool = True, logits_to_keep: bool = True) -> np.ndarray:
    """(N, 2) float64 log-probabilities (chosen, rejected) of every pair of
    ``pairs`` (in its full lists' order) under ``model`` as it is: its own
    dtype and device, no gradients, in evaluation mode (its mode restored).
    Mixed precision is switched off: the caller's autocast, and the one
    accelerate wraps around ``forward`` (a Trainer's ``bf16`` / ``fp16``,
    kept in ``_original_forward``), so the scores are those of the weights'
    dtype, as lm-eval computes them."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    attention, collate = attention_kind(model), PairCollator(pad_token_id, packed)
    out = np.full((len(pairs.ids), 2), np.nan)
    wrapped = model.__dict__.get("forward")
    if wrapped is not None and "_original_forward" in model.__dict__:
        model.forward = model._original_forward
    with torch.autocast(device.type, enabled=False):
        try:
            for start in range(0, len(pairs), batch_size):
                items = [pairs[k] for k in range(start, min(start + batch_size, len(pairs)))]
                batch = {k: v.to(device) for k, v in collate(items).items()}
                c, r = response_logps(model, batch, len(items), logits_to_keep, attention)
                out[[it["index"] for it in items]] = torch.stack([c, r], 1).double().cpu().numpy()
        finally:
            model.train(was_training)
            if wrapped is not None:
                model.forward = wrapped
    return out
