"""Several pairs in one row of a batch (training/scoring.py with core/batch_rows.py)
and the chunked log-softmax (``scoring.target_logps``): scores and gradients
equal those of each sequence run alone through a plain forward and autograd's
log_softmax, computed here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lm_eval_rankacc.training import scoring, tokens


def _items(tok):
    prompts = ["Hello there, how are you?", "Q", "A much longer prompt about the capital of France and Berlin.",
               "Two plus two?", "Identical answers?"]
    responses = [["Fine, thanks.", "Go away."], ["A", "Another answer that is longer"],
                 ["Paris.", "Berlin, I think."], ["Four.", "Five, obviously."], ["Yes, the same.", "Yes, the same."]]
    p, r = tokens.encode_pairs(tok, prompts, responses)
    return [{"code": 0, "index": i, "prompt_ids": p[i], "chosen_ids": r[i][0], "rejected_ids": r[i][1],
             "ref": np.array([np.nan, np.nan])} for i in range(len(p))]


def _alone(model, items):
    """(chosen, rejected) log-probabilities, each sequence alone, with autograd."""
    out = []
    for it in items:
        for resp in (it["chosen_ids"], it["rejected_ids"]):
            ids = torch.tensor([it["prompt_ids"] + resp])
            logp = model(ids).logits.log_softmax(-1)[0]
            lp = len(it["prompt_ids"])
            out.append(logp[torch.arange(lp - 1, lp - 1 + len(resp)), torch.tensor(resp)].sum())
    out = torch.stack(out).reshape(-1, 2)
    return out[:, 0], out[:, 1]


def _grads(model):
    g = torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None]).clone()
    model.zero_grad(set_to_none=True)
    return g


@pytest.mark.parametrize("cost", [0.0, 1e-3, None])
def test_pairs_side_by_side_score_and_train_like_each_alone(tiny_model_dir, cost):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa", dtype=torch.float32)
    items = _items(tok)
    c0, r0 = _alone(model, items)
    torch.nn.functional.softplus(-0.1 * (c0 - r0)).sum().backward()
    g0 = _grads(model)
    batch = scoring.PairCollator(tok.pad_token_id, True, attention_cost=cost)(items)
    if cost == 0.0:  # attention free: every pair in one row
        assert batch["input_ids"].shape[0] == 1
    c, r = scoring.response_logps(model, batch, len(items))
    np.testing.assert_allclose(torch.stack([c, r], 1).detach().numpy(), torch.stack([c0, r0], 1).detach().numpy(),
                               atol=2e-4, rtol=1e-5)
    assert c[4].item() == r[4].item()  # identical responses: exactly equal
    torch.nn.functional.softplus(-0.1 * (c - r)).sum().backward()
    g = _grads(model)
    assert float((g - g0).norm() / g0.norm()) < 1e-4


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_target_logps_equal_autograds_log_softmax(dtype, monkeypatch):
    monkeypatch.setattr(scoring, "CHUNK_ROWS", 3)  # several chunks and a short last one
    gen = torch.Generator().manual_seed(0)
    logits = (torch.randn(8, 50, generator=gen) * 4).to(dtype)
    rows = torch.tensor([0, 0, 1, 2, 2, 2, 5, 7, 7])  # a row predicting two tokens, a (row, token) twice
    toks = torch.tensor([3, 3, 9, 0, 49, 7, 1, 2, 30])
    weights = torch.randn(len(rows), generator=gen)
    a = logits.clone().requires_grad_()
    got = scoring.target_logps(a, rows, toks)
    (got * weights).sum().backward()
    b = logits.clone().requires_grad_()
    want = b.float().log_softmax(-1)[rows, toks]
    (want * weights).sum().backward()
    assert got.dtype == torch.float32 and a.grad.dtype == dtype
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-6)
    tol = {torch.float32: 1e-6, torch.bfloat16: 1e-2}[dtype]
    torch.testing.assert_close(a.grad.float(), b.grad.float(), atol=tol, rtol=tol)
