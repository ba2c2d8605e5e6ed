"""Chat-template scoring (``--apply_chat_template``, lm_eval_rankacc.lmeval.chat) on
real multi-turn HH-RLHF rows from ../shared/data, with a tiny model whose
tokenizer gets a ChatML-like template here.

Checked against independent computations: the messages are split from the
raw transcript by the test itself, the context is the tokenizer's own
``apply_chat_template(messages, add_generation_prompt=True, tokenize=False)``,
the continuation is the response (plus the end-of-turn marker when the task
option asks for it), and each log-likelihood is one plain forward pass over
exactly those tokens, split as lm-eval documents it
(:func:`test_scoring_independent.split_request`). hf-prefix gives the same
numbers; a model without a template is a one-line UsageError naming the
flag; without the flag the requests are the raw format, byte for byte.
"""

from __future__ import annotations

import gzip
import json
import re

import pytest
from tests.helpers.tiny_model import load_float32

from lm_eval_rankacc.core.errors import UsageError
from lm_eval_rankacc.sources import hh_rlhf
from tests.helpers import paths

HH_REAL = paths.HH_REAL
needs_hh = pytest.mark.skipif(not HH_REAL.is_file(), reason="../shared/data (real HH-RLHF) is absent")
TASK = "rankacc_hh_rlhf_test"
SYSTEM = "You are a careful assistant."
# ChatML-like, with the tiny tokenizer's special tokens as turn delimiters.
TEMPLATE = (
    "{% for m in messages %}<|bos|>{{ m['role'] }}\n{{ m['content'] }}<|eos|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|bos|>assistant\n{% endif %}"
)
TOL = 1e-4


@pytest.fixture(scope="module")
def chat_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model, its tokenizer given :data:`TEMPLATE`."""
    import shutil

    from transformers import AutoTokenizer

    path = tmp_path_factory.mktemp("chat_model")
    shutil.copytree(tiny_model_dir, path, dirs_exist_ok=True)
    tok = AutoTokenizer.from_pretrained(path)
    tok.chat_template = TEMPLATE
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def hh_rows(tmp_path_factory):
    """The five shortest multi-turn rows of the real HH-RLHF test file (whose
    chosen and rejected share the prompt), as a data file."""
    if not HH_REAL.is_file():
        pytest.skip("../shared/data (real HH-RLHF) is absent")
    with gzip.open(HH_REAL, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    multi = [
        r for r in rows
        if r["chosen"].count("\n\nHuman:") >= 2
        and r["chosen"][: r["chosen"].rfind("\n\nAssistant:")] == r["rejected"][: r["rejected"].rfind("\n\nAssistant:")]
    ]
    chosen = sorted(multi, key=lambda r: len(r["chosen"]) + len(r["rejected"]))[:5]
    path = tmp_path_factory.mktemp("hh") / "test.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in chosen), encoding="utf-8")
    return path, chosen


def expected_messages(transcript: str) -> list[dict[str, str]]:
    """The test's own split of a raw transcript up to its final assistant turn."""
    body = transcript[: transcript.rfind("\n\nAssistant:")]
    out = [{"role": "system", "content": SYSTEM}]
    for chunk in re.split(r"\n\n(?=Human:|Assistant:)", body)[1:]:
        speaker, _, text = chunk.partition(":")
        role = "user" if speaker == "Human" else "assistant"
        if out[-1]["role"] == role:
            out[-1]["content"] += "\n\n" + text.removeprefix(" ")
        else:
            out.append({"role": role, "content": text.removeprefix(" ")})
    return out


def run(model_dir, data_file, *, backend="hf", chat=True, metadata=None):
    """lm-eval in-process on the HH rows: the logged samples of the task."""
    from lm_eval.evaluator import evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from lm_eval_rankacc import tasks_dir
    from lm_eval_rankacc.lmeval.models.prefix import HFPrefixLM

    meta = {"data_files": str(data_file), "sample_size": 0, **(metadata or {})}
    tm = TaskManager(include_defaults=False, include_path=str(tasks_dir()), metadata=meta)
    cls = HFLM if backend == "hf" else HFPrefixLM
    lm = cls(pretrained=str(model_dir), device="cpu", batch_size=4, dtype="float32", max_length=4096)
    res = evaluate(
        lm=lm, task_dict=tm.load([TASK]), log_samples=True, bootstrap_iters=0,
        apply_chat_template=chat, system_instruction=SYSTEM if chat else None,
    )
    return sorted(res["samples"][TASK], key=lambda s: s["doc"]["id"])


@pytest.fixture(scope="module")
def reference(chat_model_dir):
    return load_float32(chat_model_dir)


@pytest.fixture(scope="module")
def chat_samples(chat_model_dir, hh_rows):
    return run(chat_model_dir, hh_rows[0])


def check_against_reference(samples, rows, reference, end_of_turn=""):
    from tests.helpers.independent_scorer import independent_loglik, split_request

    model, tok = reference
    assert len(samples) == len(rows)
    for s in samples:
        row = rows[int(s["doc"]["id"].split("/")[1])]
        messages = expected_messages(row["chosen"])
        assert sum(m["role"] == "user" for m in messages) >= 2  # really multi-turn
        context = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        for i, response in enumerate(s["doc"]["responses"]):
            assert tuple(s["arguments"][i]) == (context, response + end_of_turn)
            ctx, cont = split_request(tok, context, response + end_of_turn)
            assert s["scores"]["n_tokens"][i] == len(cont)
            assert s["scores"]["n_bytes"][i] == len(("\n" + response + end_of_turn).encode("utf-8"))
            assert abs(s["scores"]["loglik"][i] - independent_loglik(model, ctx, cont)) <= TOL


@needs_hh
def test_chat_context_continuation_and_logliks(chat_samples, hh_rows, reference):
    check_against_reference(chat_samples, hh_rows[1], reference)
    first = chat_samples[0]["arguments"][0][0]
    assert first.startswith("<|bos|>system\n" + SYSTEM + "<|eos|>\n<|bos|>user\n")
    assert first.endswith("<|bos|>assistant\n") and "\n\nHuman:" not in first


@needs_hh
def test_end_of_turn_option_scores_the_marker(chat_model_dir, hh_rows, reference):
    samples = run(chat_model_dir, hh_rows[0], metadata={"chat_end_of_turn": True})
    check_against_reference(samples, hh_rows[1], reference, end_of_turn="<|eos|>")


@needs_hh
def test_hf_prefix_matches_hf(chat_model_dir, hh_rows, chat_samples):
    packed = run(chat_model_dir, hh_rows[0], backend="hf-prefix")
    for a, b in zip(packed, chat_samples, strict=True):
        assert a["arguments"] == b["arguments"]
        assert a["scores"]["n_tokens"] == b["scores"]["n_tokens"] and a["scores"]["n_bytes"] == b["scores"]["n_bytes"]
        for x, y in zip(a["scores"]["loglik"], b["scores"]["loglik"]):
            assert abs(x - y) <= TOL


@needs_hh
def test_model_without_template_is_a_usage_error(tiny_model_dir, hh_rows):
    with pytest.raises(UsageError, match="--apply_chat_template: .* has no chat template"):
        run(tiny_model_dir, hh_rows[0])


@needs_hh
def test_without_the_flag_the_raw_format_is_unchanged(chat_model_dir, hh_rows):
    samples = run(chat_model_dir, hh_rows[0], chat=False)
    for s in samples:
        doc = s["doc"]
        assert doc["prompt"].startswith("\n\nHuman:") and doc["prompt"].endswith("\n\nAssistant:")
        assert [tuple(a) for a in s["arguments"]] == [(doc["prompt"], " " + r) for r in doc["responses"]]
        assert s["scores"]["n_bytes"] == [len((" " + r).encode("utf-8")) for r in doc["responses"]]


def test_chat_messages_split():
    prompt = "\n\nHuman: Hi.\n\nAssistant: Hello!\n\nHuman: One.\n\nHuman: Two.\n\nAssistant:"
    assert hh_rlhf.chat_messages(prompt) == [
        {"role": "user", "content": "Hi."},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "One.\n\nTwo."},
    ]
