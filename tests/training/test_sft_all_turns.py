"""Issue 21, item 8 (SFT): ``rankacc sft --sft_all_turns`` trains on every
assistant turn of the preferred transcript, as the released SFT does; the
default trains on the final response only. The tokens trained on are
checked against the transcript's text, turn by turn, on the real tokenizer
and real HH-RLHF rows."""

from __future__ import annotations

import gzip
import json

import pytest

from lm_eval_rankacc.training import SFTConfig, train_sft
from lm_eval_rankacc.training.sft import IGNORED, SFTDataset, encode_examples
from lm_eval_rankacc.training.sft_turns import assistant_spans
from tests.helpers.paths import HH_REAL

HH = HH_REAL
PROMPT = "\n\nHuman: Hi there\n\nAssistant: Hello! How can I help?\n\nHuman: Tell me a joke.\n\nAssistant:"


def test_assistant_spans_are_the_earlier_assistant_turns():
    spans = assistant_spans(PROMPT)
    assert [PROMPT[a:b] for a, b in spans] == [" Hello! How can I help?"]
    two = PROMPT + " Why did the chicken cross the road?\n\nHuman: Why?\n\nAssistant:"
    assert [two[a:b] for a, b in assistant_spans(two)] == [" Hello! How can I help?",
                                                          " Why did the chicken cross the road?"]
    assert assistant_spans("Translate 'cat' into French.") == []  # no turns: only the final response
    assert assistant_spans("\n\nHuman: a\n\nAssistant:") == []


def _runs(ids: list[int], labels: list[int]) -> list[list[int]]:
    """The maximal runs of consecutive trained tokens."""
    runs, current = [], []
    for token, label in zip(ids, labels):
        if label != IGNORED:
            assert label == token
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    return runs + ([current] if current else [])


def _hh_docs(n: int) -> list[dict]:
    from lm_eval_rankacc.sources.hh_rlhf import split_transcript

    docs = []
    with gzip.open(HH, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            row = json.loads(line)
            prompt, response = split_transcript(row["chosen"], i, "chosen")
            _, rejected = split_transcript(row["rejected"], i, "rejected")
            if prompt.count("\n\nAssistant:") > 1:  # a multi-turn transcript
                docs.append({"id": f"test/{i}", "prompt": prompt, "responses": [response, rejected], "ranks": [1, 2]})
            if len(docs) == n:
                break
    return docs


@pytest.mark.skipif(not HH.is_file(), reason="the real HH-RLHF data (../shared/data) is not beside the checkout")
def test_the_tokens_trained_on_are_exactly_the_assistant_turns(tmp_path):
    """SmolLM2's tokenizer on 40 real multi-turn HH-RLHF transcripts: the
    trained tokens decode, run by run, to the earlier assistant turns and the
    final response, and nothing else is trained on."""
    from transformers import AutoTokenizer

    from lm_eval_rankacc.loading.demo_model import ensure_smollm2

    tokenizer = AutoTokenizer.from_pretrained(ensure_smollm2())
    docs = _hh_docs(40)
    assert len(docs) == 40
    config = SFTConfig(model_name_or_path="unused", task="rankacc_demo", output_dir=str(tmp_path),
                       max_length=4096, max_prompt_length=2048, sft_all_turns=True)
    enc, info = encode_examples(config, tokenizer, docs, "hh")
    assert info["assistant_turns"]["crossing_tokens"] == 0 and info["truncated"] == 0
    data = SFTDataset(enc)
    for k, doc in enumerate(docs):
        item = data[k]
        texts = [tokenizer.decode(run) for run in _runs(item["input_ids"], item["labels"])]
        turns = [doc["prompt"][a:b] for a, b in assistant_spans(doc["prompt"])]
        assert len(turns) >= 1 and texts == turns + [" " + doc["responses"][0]]
    plain, plain_info = encode_examples(SFTConfig(model_name_or_path="unused", task="rankacc_demo",
                                                  output_dir=str(tmp_path), max_length=4096, max_prompt_length=2048),
                                        tokenizer, docs, "hh")
    for k, doc in enumerate(docs):  # the default: the final response alone
        item = SFTDataset(plain)[k]
        assert [tokenizer.decode(r) for r in _runs(item["input_ids"], item["labels"])] == [" " + doc["responses"][0]]
    assert "assistant_turns" not in plain_info
    runs = [_runs(SFTDataset(enc)[k]["input_ids"], SFTDataset(enc)[k]["labels"]) for k in range(len(docs))]
    assert info["assistant_turns"]["tokens"] == sum(len(r) for rs in runs for r in rs[:-1])
    assert info["assistant_turns"]["examples_with_turns"] == 40


def test_a_cut_prompt_keeps_its_marks_aligned(tiny_model_dir, tmp_path):
    """The prompt is cut from the left (--max_prompt_length): the marks are cut with it."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    doc = {"id": "d", "prompt": PROMPT, "responses": ["Knock knock.", "No."], "ranks": [1, 2]}
    args = dict(model_name_or_path="unused", task="rankacc_demo", output_dir=str(tmp_path), sft_all_turns=True)
    full, _ = encode_examples(SFTConfig(**args), tokenizer, [doc], "d")
    whole = SFTDataset(full)[0]
    cut, info = encode_examples(SFTConfig(**args, max_length=40, max_prompt_length=30), tokenizer, [doc], "d")
    item = SFTDataset(cut)[0]
    assert info["truncated"] == 1 and len(cut.prompt[0]) == 30
    n_prompt = len(full.prompt[0])
    assert item["labels"][:30] == whole["labels"][n_prompt - 30:n_prompt]


def test_sft_all_turns_trains_end_to_end(tiny_model_dir, hub_mirror, monkeypatch, tmp_path):
    monkeypatch.setenv("RANKACC_DATA_DIR", str(hub_mirror))
    config = SFTConfig(model_name_or_path=str(tiny_model_dir), task="rankacc_hh_rlhf_test", output_dir=str(tmp_path),
                       max_steps=1, eval_steps=1, per_device_train_batch_size=4, learning_rate=1e-3, warmup_steps=0,
                       use_cpu=True, disable_tqdm=True, sft_all_turns=True, eval_task="holdout")
    assert train_sft(config).global_step == 1
    recorded = json.loads((tmp_path / "training_config.json").read_text())
    assert recorded["sft"]["sft_all_turns"] is True
    turns = recorded["data"]["train"].get("assistant_turns", {}) or recorded["data"]["validation"]["assistant_turns"]
    assert set(turns) >= {"examples_with_turns", "tokens", "crossing_tokens"}
