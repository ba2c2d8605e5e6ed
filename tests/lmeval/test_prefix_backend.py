"""hf-prefix: the same log-likelihoods and is_greedy flags as lm-eval's hf
backend, checked request by request on a tiny model (and on real HH-RLHF
prompts when ../shared/data is present)."""

from __future__ import annotations

import gzip
import json
import logging

import pytest

from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from lm_eval_rankacc.lmeval.models.prefix import HFPrefixLM, pack
from lm_eval_rankacc.core.packing import PackedSequence as Packed
from lm_eval_rankacc.sources import hh_rlhf
from tests.helpers import paths

HH_REAL = paths.HH_REAL

DOCS = [
    {"prompt": "Question: What is the capital of France?\nAnswer:", "responses": ["Paris.", "Berlin, surely.", "Paris.", "I do not know"]},
    {"prompt": "Say hello.", "responses": ["Hello there!", "Hi"]},
    {"prompt": "Ends with a space ", "responses": ["x", "a longer response with more tokens than the other"]},
    {"prompt": "Alone", "responses": ["a context no other request shares"]},
    {"prompt": "Numbers: 1 2 3", "responses": [" 4 5", "4", "five six seven eight nine ten eleven"]},
]


def requests_of(docs):
    return [
        Instance("loglikelihood", doc=d, arguments=(d["prompt"], " " + r), idx=k)
        for d in docs for k, r in enumerate(d["responses"])
    ]


@pytest.fixture(scope="module")
def hf(tiny_model_dir):
    return HFLM(pretrained=str(tiny_model_dir), device="cpu", batch_size=4)


def prefix_lm(tiny_model_dir, **kwargs):
    return HFPrefixLM(pretrained=str(tiny_model_dir), device="cpu", **kwargs)


def assert_same(got, expected, tol=1e-4, rtol=0.0):
    assert len(got) == len(expected)
    for (ll, greedy), (ll_ref, greedy_ref) in zip(got, expected):
        assert abs(ll - ll_ref) <= tol + rtol * abs(ll_ref), (ll, ll_ref)
        assert greedy == greedy_ref


@pytest.mark.parametrize("batch_size", [1, 3, "auto"])
def test_matches_hf(tiny_model_dir, hf, batch_size):
    reqs = requests_of(DOCS)
    lm = prefix_lm(tiny_model_dir, batch_size=batch_size)
    assert_same(lm.loglikelihood(reqs, disable_tqdm=True), hf.loglikelihood(reqs, disable_tqdm=True))
    assert lm._checked is True  # the packed path ran (and passed its self-check)


def test_overlong_requests_take_the_parent_path(tiny_model_dir, hf):
    reqs = requests_of(DOCS)
    encoded = [hf._encode_pair(*r.args) for r in reqs]
    window = max(len(cont) for _, cont in encoded) + 1  # every response fits, not every prompt + response
    assert sum(len(c) + len(t) > window + 1 for c, t in encoded) >= 3
    short_hf = HFLM(pretrained=str(tiny_model_dir), device="cpu", batch_size=2, max_length=window)
    lm = prefix_lm(tiny_model_dir, batch_size=2, max_length=window)
    assert_same(lm.loglikelihood(reqs, disable_tqdm=True), short_hf.loglikelihood(reqs, disable_tqdm=True))
    assert lm._checked is True


def test_packing_layout():
    p = Packed([1, 2, 3], [[4, 5], [6], [7, 8, 9]])
    assert p.tokens == [1, 2, 3, 4, 6, 7, 8, 9][:3] + [4] + [] + [7, 8]
    assert p.positions == [0, 1, 2, 3, 3, 4]
    allow = p.allowed()
    assert allow[3].tolist() == [True, True, True, True, False, False]  # response 1 sees prompt + itself
    assert allow[5].tolist() == [True, True, True, False, True, True]  # response 3 never sees response 1
    assert p.logit_rows(0) == [2, 3] and p.logit_rows(1) == [2] and p.logit_rows(2) == [2, 4, 5]


def test_identical_responses_get_identical_scores(tiny_model_dir):
    """Two copies of one response are one continuation of the packed sequence, so
    their scores are equal to the bit, as in the hf backend (Def. 2.3 counts the
    pair as ranked correctly in either order)."""
    packed, where = pack([1, 2], [[3, 4], [5], [3, 4]])
    assert packed.continuations == [[3, 4], [5]] and where == [0, 1, 0]
    doc = {"prompt": "Say hello.", "responses": ["Hello there, friend!", "Hi", "Hello there, friend!"]}
    lm = prefix_lm(tiny_model_dir, batch_size=2)
    got = lm.loglikelihood(requests_of([doc]), disable_tqdm=True)
    assert lm._checked is True and got[0] == got[2] and got[0] != got[1]


def test_self_check_falls_back_when_packing_is_wrong(tiny_model_dir, hf, monkeypatch, caplog):
    lm = prefix_lm(tiny_model_dir, batch_size=4)
    real_forward = HFPrefixLM._forward

    def broken(self, batch):  # as if the model ignored the 4-D mask
        for i, (ll, greedy) in real_forward(self, batch):
            yield i, (ll + 1.0, greedy)

    monkeypatch.setattr(HFPrefixLM, "_forward", broken)
    reqs = requests_of(DOCS)
    with caplog.at_level(logging.WARNING, logger="lm-eval"):
        got = lm.loglikelihood(reqs, disable_tqdm=True)
    assert lm._checked is False and "does not honour packed 4-D attention masks" in caplog.text
    assert_same(got, hf.loglikelihood(reqs, disable_tqdm=True))


@pytest.mark.skipif(not HH_REAL.is_file(), reason="../shared/data (real HH-RLHF) is absent")
@pytest.mark.parametrize("batch_size", [2, 8])
def test_real_hh_rlhf_prompts(tiny_model_dir, hf, batch_size):
    with gzip.open(HH_REAL, "rt") as f:
        rows = [json.loads(next(f)) for _ in range(24)]
    docs = hh_rlhf.convert(rows, "test").docs
    reqs = requests_of(docs)
    # the tiny byte-level model spends ~4 tokens a word: give it a window for these transcripts
    ref = HFLM(pretrained=str(tiny_model_dir), device="cpu", batch_size=batch_size, max_length=4096)
    lm = prefix_lm(tiny_model_dir, batch_size=batch_size, max_length=4096)
    expected = ref.loglikelihood(reqs, disable_tqdm=True)
    # Sums over thousands of tokens carry float32 rounding of ~1e-7 relative: the
    # stock backend itself moves by that much between batch sizes (checked here).
    one_by_one = HFLM(pretrained=str(tiny_model_dir), device="cpu", batch_size=1, max_length=4096)
    assert_same(one_by_one.loglikelihood(reqs, disable_tqdm=True), expected, tol=1e-4, rtol=2e-7)
    assert_same(lm.loglikelihood(reqs, disable_tqdm=True), expected, tol=1e-4, rtol=2e-7)
    assert lm._checked is True


def test_self_check_falls_back_when_packing_raises(tiny_model_dir, hf, monkeypatch, caplog):
    lm = prefix_lm(tiny_model_dir, batch_size=4)

    def refuses(self, batch):
        raise ValueError("custom 4-D masks are not supported")
        yield  # pragma: no cover

    monkeypatch.setattr(HFPrefixLM, "_forward", refuses)
    reqs = requests_of(DOCS)
    with caplog.at_level(logging.WARNING, logger="lm-eval"):
        got = lm.loglikelihood(reqs, disable_tqdm=True)
    assert lm._checked is False and "packed scoring failed on a self-check" in caplog.text
    assert_same(got, hf.loglikelihood(reqs, disable_tqdm=True))


# ------------------------------------------------------------ token-budget batches
WORDS = "the a quick brown fox helpful answer question paris capital of france two plus four sea shells".split()


def mixed_docs(seed=0, n=14):
    """Prompts and responses of many lengths, 2 to 5 responses (some repeated), and
    one document of a single response (no shared prompt: the parent's path)."""
    import random

    rng = random.Random(seed)
    text = lambda lo, hi: " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))  # noqa: E731
    docs = []
    for d in range(n):
        short = d % 3 == 1  # a third of the documents fit in the padding of the others' rows
        responses = [text(1, 3 if short else 25) for _ in range(rng.randint(2, 5))]
        if d % 4 == 0:
            responses.append(responses[0])
        docs.append({"prompt": f"Doc {d}: " + text(1, 4 if short else 60), "responses": responses})
    docs.append({"prompt": "Alone here", "responses": [text(3, 9)]})
    return docs


def record_batches(monkeypatch):
    """Spy on the packed forward passes: [(rows, width, request indices)] per call."""
    seen = []
    real_forward = HFPrefixLM._forward

    def spy(self, batch):
        answers = list(real_forward(self, batch))
        seen.append((len(batch), max(sum(len(p) for _, p, _ in row) for row in batch),
                     [len(row) for row in batch], [i for i, _ in answers]))
        yield from answers

    monkeypatch.setattr(HFPrefixLM, "_forward", spy)
    return seen


@pytest.mark.parametrize("batch_size", [1, 4])
def test_token_budget_batches(tiny_model_dir, hf, monkeypatch, batch_size):
    """Same log-likelihoods as hf for every request, in the original order
    (shuffled requests), each packed request scored once, and no forward pass
    over batch_size x the longest request (context + continuation - 1) in
    tokens, padding included, except one document alone."""
    import random

    reqs = requests_of(mixed_docs())
    random.Random(1).shuffle(reqs)
    encoded = [hf._encode_pair(*r.args) for r in reqs]
    by_context: dict = {}
    for i, (ctx, _) in enumerate(encoded):
        by_context.setdefault(tuple(ctx), []).append(i)
    packed_reqs = sorted(i for members in by_context.values() if len(members) > 1 for i in members)
    budget = batch_size * max(len(encoded[i][0]) + len(encoded[i][1]) - 1 for i in packed_reqs)

    seen = record_batches(monkeypatch)
    lm = prefix_lm(tiny_model_dir, batch_size=batch_size, prefix_route="packed")
    got = lm.loglikelihood(reqs, disable_tqdm=True)
    assert lm._checked is True
    assert_same(got, hf.loglikelihood(reqs, disable_tqdm=True))
    assert sorted(i for *_, answered in seen for i in answered) == packed_reqs  # once each
    for rows, width, docs_per_row, _ in seen[1:]:  # seen[0]: the self-check's document
        assert rows * width <= budget or (rows == 1 and docs_per_row == [1])
    if batch_size > 1:
        assert any(n > 1 for *_, per_row, _ in seen for n in per_row)  # short documents share a row


def test_token_budget_auto(tiny_model_dir, hf, monkeypatch):
    """``auto``: the parent's detected batch size for sequences as wide as the
    longest packed document, times that width."""
    asked = []

    def detect(self, requests=None, pos=0):
        asked.append(len(requests[pos][1]) + len(requests[pos][2]) - 1)
        return 2

    monkeypatch.setattr(HFPrefixLM, "_detect_batch_size", detect)
    seen = record_batches(monkeypatch)
    reqs = requests_of(mixed_docs(seed=3))
    lm = prefix_lm(tiny_model_dir, batch_size="auto", prefix_route="packed")
    assert_same(lm.loglikelihood(reqs, disable_tqdm=True), hf.loglikelihood(reqs, disable_tqdm=True))
    widest = max(width for _, width, _, _ in seen[1:])
    assert asked and asked[-1] == widest  # the longest document opens the first batch
    for rows, width, docs_per_row, _ in seen[1:]:
        assert rows * width <= 2 * widest or (rows == 1 and docs_per_row == [1])


def test_full_logits_path(tiny_model_dir, hf):
    """A model without ``logits_to_keep``: all logits, then the kept rows; same scores."""
    reqs = requests_of(mixed_docs(seed=5, n=6))
    lm = prefix_lm(tiny_model_dir, batch_size=3)
    lm._keeps_logits = False
    assert_same(lm.loglikelihood(reqs, disable_tqdm=True), hf.loglikelihood(reqs, disable_tqdm=True))
    assert lm._checked is True and lm._keeps_logits is False


MANY = [
    {"prompt": "Pick a number between one and twenty.", "responses": [f"{k} is my pick" + " then more" * (k % 4)
                                                                      for k in range(15)]},
    {"prompt": "Same twice.", "responses": ["identical words here", "identical words here", "x", "", "a b c d e f"]},
    {"prompt": "Six answers", "responses": ["one", "two two", "three three three", "4", "five five", "six"]},
    {"prompt": "Say hello.", "responses": ["Hello there!", "Hi"]},
]


@pytest.mark.parametrize("route", ["packed", "cached", "auto"])
def test_both_routes_match_hf(tiny_model_dir, hf, route):
    """Each route, forced, equals stock hf request by request: 2 to 15 responses of
    mixed lengths, identical, empty and one-token continuations."""
    reqs = requests_of(MANY + DOCS)
    lm = prefix_lm(tiny_model_dir, batch_size=3, prefix_route=route)
    assert_same(lm.loglikelihood(reqs, disable_tqdm=True), hf.loglikelihood(reqs, disable_tqdm=True))
    assert lm._checked is True
    if route == "cached":
        assert lm._cache_ok is True  # the cached route passed its own self-check
    else:
        assert lm._cache_ok is None  # auto and packed never run (nor check) the cached route


def test_cached_route_in_a_short_window(tiny_model_dir):
    reqs = requests_of(MANY)
    window = max(len(HFLM._encode_pair(lm0, *r.args)[1]) for lm0 in [prefix_lm(tiny_model_dir)] for r in reqs) + 1
    hf_short = HFLM(pretrained=str(tiny_model_dir), device="cpu", batch_size=2, max_length=window)
    lm = prefix_lm(tiny_model_dir, batch_size=2, max_length=window, prefix_route="cached")
    assert_same(lm.loglikelihood(reqs, disable_tqdm=True), hf_short.loglikelihood(reqs, disable_tqdm=True))


def test_route_rule_and_bad_route(tiny_model_dir):
    from lm_eval_rankacc.core import packing

    # auto takes the packed route for every count (the measured rule; cached only when asked for)
    assert {packing.route(100, [5] * n + [1]) for n in range(0, 21)} == {"packed"}
    assert packing.route(100, [1] * 20) == "packed"  # one-token responses need no response pass
    with pytest.raises(ValueError, match="prefix_route"):
        prefix_lm(tiny_model_dir, batch_size=1, prefix_route="fast")
