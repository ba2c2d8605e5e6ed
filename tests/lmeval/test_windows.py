"""The model's window, decided per document (loglikelihood.py): a response that
cannot fit drops its document (counted, never a crash), and a prompt that
overflows is cut by the same number of tokens for every response (counted),
in the hf and hf-prefix backends alike; checked against an independent forward."""

from __future__ import annotations

import math

import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from lm_eval_rankacc.lmeval.loglikelihood import fit_window, install_token_counts
from lm_eval_rankacc.lmeval.metrics import count_positive, count_responses, process_results
from lm_eval_rankacc.lmeval.models.prefix import HFPrefixLM

WINDOW = 64
DOCS = [
    # prompt + the longer response overflow the window; both responses fit alone
    {"id": "cut", "prompt": "The story so far: " + "once upon a time " * 6, "responses": ["fin.", "and they all lived happily ever after."], "ranks": [1, 2]},
    # one response alone is longer than the window: the document cannot be scored
    {"id": "long", "prompt": "Say it.", "responses": ["ok", "word " * 40], "ranks": [2, 1]},
    # fits whole
    {"id": "fits", "prompt": "Hi.", "responses": ["Hello!", "Go."], "ranks": [1, 2]},
]


def requests_of(docs):
    return [Instance("loglikelihood", doc=d, arguments=(d["prompt"], " " + r), idx=k,
                     metadata=("window_test", i, 1))
            for i, d in enumerate(docs) for k, r in enumerate(d["responses"])]


def test_fit_window_rule():
    assert fit_window(10, [3, 5], 20) == (0, False)
    assert fit_window(10, [3, 5], 12) == (2, False)  # 8 prompt tokens + 5: the model reads 12 = the window
    assert fit_window(10, [12], 12) == (9, False)  # lm-eval allows a continuation of the whole window
    assert fit_window(10, [3, 13], 12) == (0, True)
    assert fit_window(10, [3, 5], None) == (0, False)


@pytest.fixture(scope="module")
def backends(tiny_model_dir):
    install_token_counts()
    hf = HFLM(pretrained=str(tiny_model_dir), device="cpu", batch_size=2, max_length=WINDOW)
    prefix = HFPrefixLM(pretrained=str(tiny_model_dir), device="cpu", batch_size=2, max_length=WINDOW)
    return hf, prefix


def independent(model, context: list[int], continuation: list[int]) -> float:
    """Sum of log p(continuation | context) from one plain forward pass."""
    ids = torch.tensor([context + continuation])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits[0].double(), dim=-1)
    rows = range(len(context) - 1, len(context) + len(continuation) - 1)
    return float(sum(logprobs[r, t] for r, t in zip(rows, continuation)))


@pytest.mark.parametrize("which", ["hf", "hf-prefix"])
def test_documents_fit_the_window_as_a_whole(backends, which):
    hf, prefix = backends
    lm = hf if which == "hf" else prefix
    reqs = requests_of(DOCS)
    encoded = [lm._encode_pair(*r.args) for r in reqs]
    assert len(encoded[0][0]) + len(encoded[1][1]) > WINDOW + 1 >= len(encoded[1][1])  # "cut" needs cutting
    assert len(encoded[3][1]) > WINDOW  # "long" cannot fit
    results = lm.loglikelihood(reqs, disable_tqdm=True)  # no AssertionError from lm-eval

    cut = results[0].prompt_tokens_cut
    assert cut > 0 and results[1].prompt_tokens_cut == cut  # one cut for both responses
    assert cut == len(encoded[0][0]) + max(len(encoded[0][1]), len(encoded[1][1])) - (WINDOW + 1)
    for k in (0, 1, 4, 5):
        context, continuation = encoded[k]
        context = context[results[k].prompt_tokens_cut:]
        assert math.isclose(results[k][0], independent(hf.model, context, continuation), abs_tol=1e-4)
        assert not results[k].too_long and results[k].n_tokens == len(continuation)
    assert results[4].prompt_tokens_cut == 0 and results[5].prompt_tokens_cut == 0
    assert results[2].too_long and results[3].too_long and math.isnan(results[2][0])

    per_doc = [process_results(d, results[2 * i:2 * i + 2]) for i, d in enumerate(DOCS)]
    assert per_doc[0]["truncated"] == cut and per_doc[0]["too_long"] == 0 and "rank_acc" in per_doc[0]
    assert per_doc[1]["too_long"] == 1 and per_doc[1]["invalid"] == 0
    assert not {"rank_acc", "rank_acc_norm", "rank_acc_bytes"} & per_doc[1].keys()  # out of every mean
    assert per_doc[1]["scores"]["loglik"] == [None, None]
    assert per_doc[2]["truncated"] == 0 and per_doc[2]["too_long"] == 0
    assert count_positive([d["truncated"] for d in per_doc]) == 1
    assert count_responses([d["scores"] for d in per_doc]) == 4


def test_prefix_packs_cut_documents_like_hf(backends):
    hf, prefix = backends
    reqs = requests_of(DOCS)
    got, expected = prefix.loglikelihood(reqs, disable_tqdm=True), hf.loglikelihood(reqs, disable_tqdm=True)
    assert prefix._checked is True  # the cut document shares one prompt, so it was packed
    for a, b in zip(got, expected):
        assert (a.prompt_tokens_cut, a.too_long, a.n_tokens) == (b.prompt_tokens_cut, b.too_long, b.n_tokens)
        assert (math.isnan(a[0]) and math.isnan(b[0])) or abs(a[0] - b[0]) <= 1e-4


def test_each_backend_keeps_the_cut_whole():
    """The window is each backend's own capacity: after the rule's cut, lm-eval's
    API backend (its real batching code) cuts nothing more, so every response
    keeps the same prompt; vLLM's capacity is one token less again."""
    from lm_eval.models.api_models import TemplateAPI

    from lm_eval_rankacc.lmeval.loglikelihood import _window

    class StandIn(TemplateAPI):  # lm-eval's code, without a server
        def __init__(self, max_length):
            self.max_length = max_length - 1  # as TemplateAPI.__init__ sets it

        _create_payload = parse_generations = parse_logprobs = None  # not called here

    api = StandIn(64)
    window = _window(api)
    context, continuations = list(range(100)), [list(range(50)), list(range(10))]
    cut, too_long = fit_window(len(context), [len(c) for c in continuations], window)
    assert not too_long
    chunk = [(("p", "r"), context[cut:], cont) for cont in continuations]
    _, ctxlens, _ = api.batch_loglikelihood_requests([chunk])
    assert cut > 0 and ctxlens == [len(context) - cut] * len(continuations)  # lm-eval cut nothing more
    assert fit_window(10, [window + 1], window)[1]  # a response of max_length tokens would leave no prompt

    class VLLM:  # the name is what the rule reads; vLLM itself is not installed here
        max_length, backend = 64, "causal"

    assert _window(VLLM()) == 64 - 2  # vLLM reads max_length - 1 tokens
