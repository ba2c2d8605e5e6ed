"""The harness's per-response log-likelihoods, checked against an independent scorer.

The harness (lm-eval's ``hf`` backend running the rankacc tasks in-process,
batch sizes 1 and 8) writes, per document, ``scores.loglik`` and
``scores.n_tokens``. Here the same numbers are recomputed without lm-eval:
the model's tokenizer splits each request the way lm-eval documents it
(trailing whitespace of the context moves to the continuation; context and
context + continuation are tokenized, the continuation tokens are
``whole[len(context_tokens):]``), one plain transformers forward pass per
sequence gives the log-softmax, and an explicit boolean mask selects the
response positions whose log-probabilities are summed.

Negative controls show that the comparison is sharp enough to catch the usual
scorer bugs: summing over the prompt tokens too, and a left-padded batch
scored without an attention mask (the bug of the paper's released scorer).
A positive control (the same left-padded batch *with* its mask) shows that
it is the missing mask, not batching, that the control detects.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pytest
import torch
from tests.helpers.independent_scorer import independent_loglik, split_request, target_mask, token_logprobs
from tests.helpers.tiny_model import load_float32

TOL = 1e-4
BATCH_SIZES = (1, 8)
HUB_TASKS = ["rankacc_demo", "rankacc_hh_rlhf_test"]

# Documents in the common (demo) schema, read through --metadata data_files:
# prompts with trailing whitespace (moved to the continuation by lm-eval),
# non-ASCII text, an empty response (its document dropped and counted: the
# empty-response rule, docs/tasks.md) and a three-response document.
EDGE_ROWS = [
    {"id": "edge/space", "prompt": "Question: What is two plus two? Answer: ", "responses": ["four", "five"], "ranks": [1, 2]},
    {"id": "edge/newline", "prompt": "Say hello.\n", "responses": ["Hello world!", "Go away."], "ranks": [1, 2]},
    {"id": "edge/mixed", "prompt": "List two colours:\n \t", "responses": ["red and blue", "  red and blue"], "ranks": [1, 2]},
    {"id": "edge/unicode", "prompt": "\u00c9cris \u00ab caf\u00e9 \u00bb :", "responses": ["caf\u00e9 \u2615", "cafe"], "ranks": [1, 2]},
    {"id": "edge/empty", "prompt": "Reply with nothing at all.", "responses": ["", "Something."], "ranks": [1, 2]},
    {"id": "edge/three", "prompt": "Rank these answers.", "responses": ["best", "middle one", "worst of all"], "ranks": [1, 2, 3]},
]


@dataclass(frozen=True)
class Scored:
    """One response as the harness scored it."""

    run: str  # "<task>" or "edge"
    doc_id: str
    index: int
    prompt: str
    response: str
    request: tuple[str, str]  # the (context, continuation) lm-eval sent to the model
    loglik: float
    n_tokens: int | None


# ------------------------------------------------------------------ the harness side
def _samples_to_scored(run: str, samples: list[dict]) -> list[Scored]:
    out = []
    for s in samples:
        doc, scores = s["doc"], s["scores"]
        assert len(scores["loglik"]) == len(doc["responses"]) == len(s["arguments"])
        for i, response in enumerate(doc["responses"]):
            out.append(
                Scored(
                    run=run,
                    doc_id=doc["id"],
                    index=i,
                    prompt=doc["prompt"],
                    response=response,
                    request=tuple(s["arguments"][i]),
                    loglik=scores["loglik"][i],
                    n_tokens=scores["n_tokens"][i],
                )
            )
    return out


@pytest.fixture(scope="module")
def harness_scores(tiny_model_dir, hub_mirror, tmp_path_factory) -> dict[int, list[Scored]]:
    """{batch size: every scored response} from lm-eval's ``hf`` backend, in-process.

    Only the package's own task folder is indexed (``include_defaults=False``):
    indexing lm-eval's thousands of tasks would take ~10 s and tests nothing here.
    """
    import lm_eval_rankacc.loading.documents  # noqa: F401 - installs the token-count wrapper
    from lm_eval.evaluator import evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from lm_eval_rankacc import tasks_dir

    edge_file = tmp_path_factory.mktemp("edge") / "edge.jsonl"
    edge_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in EDGE_ROWS), encoding="utf-8")
    hub_tm = TaskManager(include_defaults=False, include_path=str(tasks_dir()), metadata={"sample_size": 0})
    edge_tm = TaskManager(
        include_defaults=False,
        include_path=str(tasks_dir()),
        metadata={"data_files": str(edge_file), "sample_size": 0},
    )
    out: dict[int, list[Scored]] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RANKACC_DATA_DIR", str(hub_mirror))
        for bs in BATCH_SIZES:
            lm = HFLM(pretrained=str(tiny_model_dir), device="cpu", batch_size=bs, dtype="float32")
            scored: list[Scored] = []
            res = evaluate(lm=lm, task_dict=hub_tm.load(HUB_TASKS), log_samples=True, bootstrap_iters=0)
            for task in HUB_TASKS:
                scored += _samples_to_scored(task, res["samples"][task])
            res = evaluate(lm=lm, task_dict=edge_tm.load(["rankacc_demo"]), log_samples=True, bootstrap_iters=0)
            scored += _samples_to_scored("edge", res["samples"]["rankacc_demo"])
            out[bs] = scored
    return out


# ------------------------------------------------------------------ the independent side
@pytest.fixture(scope="module")
def reference(tiny_model_dir):
    """The tiny model and its tokenizer, loaded with plain transformers."""
    return load_float32(tiny_model_dir)


def left_padded_logliks(model, pad_id: int, pairs: list[tuple[list[int], list[int]]], *, masked: bool) -> list[float]:
    """Score all sequences as one left-padded batch. ``masked=False`` is the
    buggy scorer (pads attended to, positions counted from the pad);
    ``masked=True`` passes the attention mask and position ids."""
    seqs = [ctx + cont for ctx, cont in pairs]
    width = max(map(len, seqs))
    pads = [width - len(s) for s in seqs]
    input_ids = torch.tensor([[pad_id] * p + s for p, s in zip(pads, seqs)])
    kwargs = {}
    if masked:
        attention = torch.tensor([[0] * p + [1] * len(s) for p, s in zip(pads, seqs)])
        kwargs = {"attention_mask": attention, "position_ids": (attention.cumsum(-1) - 1).clamp(min=0)}
    lp = token_logprobs(model, input_ids, **kwargs)
    out = []
    for row, p, (ctx, cont) in zip(lp, pads, pairs):
        mask = target_mask(len(ctx), len(cont), pad=p)
        out.append(float(row[mask].sum()))
    return out


@pytest.fixture(scope="module")
def independent(reference, harness_scores) -> dict[tuple[str, str, int], dict]:
    """Independent split and score of every response the harness scored."""
    model, tok = reference
    out = {}
    for s in harness_scores[BATCH_SIZES[0]]:
        ctx, cont = split_request(tok, s.prompt, " " + s.response)
        out[(s.run, s.doc_id, s.index)] = {
            "ctx": ctx,
            "cont": cont,
            "loglik": independent_loglik(model, ctx, cont),
            "with_prompt": independent_loglik(model, ctx, cont, include_prompt=True),
        }
    return out


def _key(s: Scored) -> tuple[str, str, int]:
    return (s.run, s.doc_id, s.index)


# ------------------------------------------------------------------ tests
def test_fixture_covers_the_cases(harness_scores, independent):
    scored = harness_scores[1]
    assert {s.run for s in scored} == {*HUB_TASKS, "edge"}
    assert len({(s.run, s.doc_id) for s in scored}) == 33 + 4 + len(EDGE_ROWS) - 1  # edge/empty dropped
    assert "edge/empty" not in {s.doc_id for s in scored}
    # some requests exercise lm-eval's move of trailing context whitespace
    assert sum(s.prompt != s.prompt.rstrip() for s in scored) >= 6
    assert all(len(v["ctx"]) >= 2 and len(v["cont"]) >= 1 for v in independent.values())


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_requests_are_prompt_and_space_response(harness_scores, batch_size):
    for s in harness_scores[batch_size]:
        assert s.request == (s.prompt, " " + s.response), _key(s)


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_loglik_matches_independent_scorer(harness_scores, independent, batch_size):
    scored = harness_scores[batch_size]
    assert len(scored) == len(independent)
    diffs = {_key(s): abs(s.loglik - independent[_key(s)]["loglik"]) for s in scored}
    worst = max(diffs, key=diffs.get)
    assert diffs[worst] <= TOL, f"batch size {batch_size}: {worst} differs by {diffs[worst]:.2e}"
    # not a vacuous comparison: the scores are real, varied log-probabilities
    assert all(math.isfinite(s.loglik) and s.loglik < 0 for s in scored)
    assert len({round(s.loglik, 3) for s in scored}) > len(scored) // 2


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_n_tokens_match_independent_split(harness_scores, independent, batch_size):
    for s in harness_scores[batch_size]:
        assert s.n_tokens == len(independent[_key(s)]["cont"]), _key(s)


def test_batch_sizes_agree(harness_scores):
    a, b = (sorted(harness_scores[bs], key=_key) for bs in BATCH_SIZES)
    assert [_key(s) for s in a] == [_key(s) for s in b]
    assert max(abs(x.loglik - y.loglik) for x, y in zip(a, b)) <= TOL
    assert [x.n_tokens for x in a] == [y.n_tokens for y in b]


def test_negative_control_prompt_tokens_scored(harness_scores, independent):
    """A scorer that sums over the prompt tokens too would be caught: it is
    off by log p(prompt), far beyond the tolerance, on every document."""
    scored = harness_scores[1]
    off = [abs(s.loglik - independent[_key(s)]["with_prompt"]) for s in scored]
    assert sum(d > 1000 * TOL for d in off) >= 0.9 * len(off), sorted(off)[:5]
    assert min(off) > 100 * TOL


def test_negative_control_left_padding_without_mask(reference, harness_scores, independent):
    """Scoring a left-padded batch without attention mask (the released
    scorer's bug) differs from the harness far beyond the tolerance on most
    documents; the same batch with its mask matches."""
    model, tok = reference
    scored = [s for s in harness_scores[1] if s.run == "rankacc_demo"]
    pairs = [(independent[_key(s)]["ctx"], independent[_key(s)]["cont"]) for s in scored]
    buggy = left_padded_logliks(model, tok.pad_token_id, pairs, masked=False)
    fixed = left_padded_logliks(model, tok.pad_token_id, pairs, masked=True)

    assert max(abs(s.loglik - f) for s, f in zip(scored, fixed)) <= TOL
    wrong_docs = {s.doc_id for s, b in zip(scored, buggy) if abs(s.loglik - b) > 100 * TOL}
    n_docs = len({s.doc_id for s in scored})
    assert len(wrong_docs) >= 0.8 * n_docs, f"only {len(wrong_docs)} of {n_docs} documents caught"
