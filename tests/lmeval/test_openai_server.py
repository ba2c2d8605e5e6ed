"""Tests for tests/openai_server.py: lm-eval's ``local-completions`` client against
the test server must reproduce lm-eval's ``hf`` backend on the same tiny model."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from tests.helpers.openai_server import CompletionsServer
from tests.helpers.tiny_model import load_float32, make_tiny_model
from tests.helpers import paths

# Several (context, continuation) pairs; continuations start with a space.
PAIRS = [
    ("The capital of France is", " Paris"),
    ("The capital of France is", " Berlin."),
    ("Question: What is two plus two? Answer:", " four"),
    ("Question: What is two plus two? Answer:", " five, I think"),
    ("Hello world! How are", " you today?"),
    ("She sells sea shells by the", " sea shore"),
    ("Unicode works too:", " naïve café ☕"),
    ("A", " b"),
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def server(model_dir):
    with CompletionsServer(model_dir) as srv:
        yield srv


@pytest.fixture(scope="module")
def hf_ref(model_dir):
    """The model and tokenizer, loaded independently of the server."""
    return load_float32(model_dir)


@pytest.fixture(scope="module")
def hflm(model_dir):
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=str(model_dir), batch_size=1, device="cpu")


def _post(url: str, body: bytes | dict, method: str = "POST") -> tuple[int, dict, str]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data if method == "POST" else None, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read()), r.headers["Content-Type"]
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers["Content-Type"]


def _greedy_pair(hf_ref) -> tuple[str, str]:
    """A (context, continuation) pair whose continuation is the model's greedy
    continuation and re-tokenizes to exactly the greedy tokens (preferring one
    that starts with a space, then the longest)."""
    model, tok = hf_ref
    best, best_key = None, None
    for ctx in ("The capital of France is", "I think", "the", "a", "Paris is", "Hello", "The model"):
        ids = tok.encode(ctx, add_special_tokens=False)
        gen: list[int] = []
        for n in range(1, 5):
            with torch.no_grad():
                gen.append(int(model(torch.tensor([ids + gen])).logits[0, -1].argmax()))
            cont = tok.decode(gen)
            ok = "\ufffd" not in cont and cont.strip() and tok.encode(ctx + cont, add_special_tokens=False) == ids + gen
            key = (cont.startswith(" "), n)
            if ok and (best_key is None or key > best_key):
                best, best_key = (ctx, cont), key
    if best is None:
        pytest.fail("no greedy continuation that round-trips through the tokenizer")
    return best


def _instances(pairs):
    from lm_eval.api.instance import Instance

    return [Instance("loglikelihood", {}, (c, x), i) for i, (c, x) in enumerate(pairs)]


@pytest.fixture(scope="module")
def pairs(hf_ref):
    return PAIRS + [_greedy_pair(hf_ref)]


@pytest.fixture(scope="module")
def hf_results(hflm, pairs):
    return hflm.loglikelihood(_instances(pairs), disable_tqdm=True)


@pytest.mark.parametrize(
    "tokenized_requests,batch_size",
    [(True, 1), (True, 4), (False, 1), (False, 4)],
    ids=["tokens-b1", "tokens-b4", "strings-b1", "strings-b4"],
)
def test_local_completions_matches_hflm(server, model_dir, pairs, hf_results, tokenized_requests, batch_size):
    pytest.importorskip("tenacity", reason="lm-eval's API backends need lm-eval[api]")
    from lm_eval.models.openai_completions import LocalCompletionsAPI

    lm = LocalCompletionsAPI(
        base_url=server.base_url,
        tokenizer_backend="huggingface",
        tokenizer=str(model_dir),
        model=str(model_dir),
        tokenized_requests=tokenized_requests,
        batch_size=batch_size,
    )
    api_results = lm.loglikelihood(_instances(pairs), disable_tqdm=True)

    assert len(api_results) == len(hf_results) == len(pairs)
    for (ctx, cont), (api_lp, api_greedy), (hf_lp, hf_greedy) in zip(pairs, api_results, hf_results):
        assert api_lp == pytest.approx(hf_lp, abs=1e-4), (ctx, cont)
        assert api_greedy == hf_greedy, (ctx, cont)
    flags = [g for _, g in hf_results]
    assert any(flags) and not all(flags), "need both greedy and non-greedy cases"


def test_auto_tokenizer_backend_falls_back_to_huggingface(server, model_dir):
    pytest.importorskip("tenacity", reason="lm-eval's API backends need lm-eval[api]")
    from lm_eval.models.openai_completions import LocalCompletionsAPI

    lm = LocalCompletionsAPI(base_url=server.base_url, tokenizer=str(model_dir), model=str(model_dir))
    assert lm.tokenizer_backend == "huggingface"


def test_echo_logprobs_alignment(server, hf_ref):
    model, tok = hf_ref
    prompts = [tok.encode(s, add_special_tokens=False) for s in ("Hello world! How are you", "A", "sea shells")]
    status, out, ctype = _post(
        server.base_url,
        {"model": "m", "prompt": prompts, "echo": True, "max_tokens": 1, "logprobs": 1, "temperature": 0},
    )
    assert status == 200 and ctype == "application/json"
    assert out["object"] == "text_completion"
    choices = sorted(out["choices"], key=lambda c: c["index"])
    assert [c["index"] for c in choices] == [0, 1, 2]
    for ids, choice in zip(prompts, choices):
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
        lp = choice["logprobs"]
        n = len(ids)
        assert len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == len(lp["text_offset"]) == n + 1
        assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
        # echoed prompt: entry t is log p(ids[t] | ids[:t])
        for t in range(1, n):
            assert lp["token_logprobs"][t] == pytest.approx(logp[t - 1, ids[t]].item(), abs=1e-5)
            assert max(lp["top_logprobs"][t].values()) == pytest.approx(logp[t - 1].max().item(), abs=1e-5)
            assert (lp["token_logprobs"][t] == max(lp["top_logprobs"][t].values())) == (
                int(logp[t - 1].argmax()) == ids[t]
            )
        # last entry: the greedy generated token
        greedy = int(logp[-1].argmax())
        assert lp["token_logprobs"][-1] == pytest.approx(logp[-1, greedy].item(), abs=1e-5)
        assert lp["token_logprobs"][-1] == max(lp["top_logprobs"][-1].values())
        assert lp["tokens"] == [tok.decode([i]) for i in ids + [greedy]]
        # echo: text is the prompt followed by the completion, offsets index into it
        assert choice["text"] == tok.decode(ids) + tok.decode([greedy])
        assert lp["text_offset"][0] == 0
        assert all(b - a == len(s) for a, b, s in zip(lp["text_offset"], lp["text_offset"][1:], lp["tokens"]))
        assert choice["finish_reason"] == "length"
    assert out["usage"]["prompt_tokens"] == sum(map(len, prompts))


def test_top_logprobs_keep_max_on_string_collisions(server, hf_ref):
    """Byte tokens of a multi-byte character all decode to U+FFFD: top-k dicts keyed
    by token string must still have the top-1 log-probability as their max."""
    model, tok = hf_ref
    text = "naïve café ☕ – ünïcödé 🙂 text"
    ids = tok.encode(text, add_special_tokens=False)
    k = 8
    status, out, _ = _post(server.base_url, {"prompt": text, "echo": True, "max_tokens": 1, "logprobs": k})
    assert status == 200
    lp = out["choices"][0]["logprobs"]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
    tops = lp["top_logprobs"][1:]
    assert len(tops) == len(ids)
    for t, top in enumerate(tops):
        assert 1 <= len(top) <= k
        assert max(top.values()) == pytest.approx(logp[t].max().item(), abs=1e-5)
    assert any(len(top) < k for top in tops), "expected at least one key collision"


def test_string_prompt_and_generation(server, hf_ref):
    model, tok = hf_ref
    ids = tok.encode("Hello world", add_special_tokens=False)
    gen: list[int] = []
    for _ in range(5):
        with torch.no_grad():
            gen.append(int(model(torch.tensor([ids + gen])).logits[0, -1].argmax()))
    status, out, _ = _post(server.base_url, {"prompt": ["Hello world"], "max_tokens": 5, "logprobs": 0})
    assert status == 200
    choice = out["choices"][0]
    assert choice["text"] == tok.decode(gen)
    assert choice["logprobs"]["tokens"] == [tok.decode([i]) for i in gen]
    assert choice["logprobs"]["token_logprobs"][0] is not None  # no echo: no leading None
    assert choice["logprobs"]["text_offset"][0] == len("Hello world")
    # stop sequence: cut at the first occurrence, finish_reason "stop"
    full = tok.decode(gen)
    stop = full[2:4]
    status, out, _ = _post(server.base_url, {"prompt": "Hello world", "max_tokens": 5, "stop": [stop]})
    assert out["choices"][0]["text"] == full[: full.find(stop)]
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["choices"][0]["logprobs"] is None


@pytest.mark.parametrize(
    "body,status",
    [
        (b"{not json", 400),
        (b"\xff\xfe", 400),
        (b"[1, 2]", 400),
        (b"{}", 400),
        (json.dumps({"prompt": []}).encode(), 400),
        (json.dumps({"prompt": [[]]}).encode(), 400),
        (json.dumps({"prompt": [10**9]}).encode(), 400),
        (json.dumps({"prompt": "x", "logprobs": "1"}).encode(), 400),
        (json.dumps({"prompt": "x", "n": 2}).encode(), 400),
    ],
)
def test_bad_requests(server, body, status):
    got, out, ctype = _post(server.base_url, body)
    assert got == status and ctype == "application/json"
    assert out["error"]["type"] == "invalid_request_error"


def test_routes(server):
    # lm-eval's remote-tokenizer probes must 404
    assert _post(server.root_url + "/tokenizer_info", b"", method="GET")[0] == 404
    assert _post(server.root_url + "/tokenize", {"prompt": "test", "add_special_tokens": False})[0] == 404
    assert _post(server.root_url + "/v1/chat/completions", {"messages": []})[0] == 404
    status, out, _ = _post(server.root_url + "/v1/models", b"", method="GET")
    assert status == 200 and len(out["data"]) == 1
    assert _post(server.root_url + "/health", b"", method="GET")[:2] == (200, {"status": "ok"})


def test_context_manager_binds_loopback_and_stops(model_dir, server):
    srv = CompletionsServer(model_dir)
    srv.engine = server.engine  # reuse the loaded model: this test is about the lifecycle
    with srv:
        assert srv.base_url.startswith("http://127.0.0.1:") and srv.base_url.endswith("/v1/completions")
        assert srv.port != server.port
        assert _post(srv.root_url + "/health", b"", method="GET")[0] == 200
        url = srv.root_url
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/health", timeout=5)


@pytest.mark.slow  # a subprocess that imports torch + transformers: ~7 s
def test_command_line(model_dir):
    script = paths.REPO / "tests" / "helpers" / "openai_server.py"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(model_dir), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving "), line
        url = line.split(" at ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1/completions")
        status, out, _ = _post(url, {"prompt": "Hi", "max_tokens": 1, "echo": True, "logprobs": 1})
        assert status == 200 and out["choices"][0]["logprobs"]["token_logprobs"][0] is None
    finally:
        proc.terminate()
        proc.wait(timeout=10)
