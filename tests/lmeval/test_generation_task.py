"""The generation variants of the HH-RLHF tasks (``rankgen_hh_rlhf_test``,
``tasks/_generate_template_yaml``): lm-eval's own ``generate_until`` path on
the tiny random model, over a local file in the hub schema.

Checked against independent computations:

- the prompts lm-eval generated for are the test's own conversion of the raw
  rows (cut after the last ``\\n\\nAssistant:``, pairs with different
  prefixes left out) sampled by the documented rule (the first
  ``sample_size`` of ``numpy.random.default_rng(seed).permutation(n)``, in
  document order);
- each logged generation is plain transformers greedy decoding of that
  prompt, cut at the stop sequence, so "greedy by default" is what ran, and
  the results file records the template's ``generation_kwargs``;
- the samples file holds exactly one generation per prompt, and the metrics
  are the lengths of those generations;
- under ``--apply_chat_template`` the context is the tokenizer's own template
  over the prompt's turns (split here by the test), one request per prompt.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml
from tests.helpers.tiny_model import load_float32
from tests.helpers import paths

TASK = "rankgen_hh_rlhf_test"
TEMPLATE_YAML = paths.REPO / "tasks" / "_generate_template_yaml"
ASSISTANT = "\n\nAssistant:"
SAMPLE_SIZE, SEED = 4, 3
CHAT_TEMPLATE = (
    "{% for m in messages %}<|bos|>{{ m['role'] }}\n{{ m['content'] }}<|eos|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|bos|>assistant\n{% endif %}"
)


def _rows() -> list[dict[str, str]]:
    rows = []
    for i, (q, good, bad) in enumerate([
        ("What is the capital of France?", "Paris.", "Berlin."),
        ("How do I boil an egg?", "Boil it for ten minutes.", "Microwave it for an hour."),
        ("Say something nice.", "You are doing great!", "No."),
        ("Name a French pastry.", "A croissant \u2013 d\u00e9licieux.", "Pizza."),
        ("What is two plus two?", "Four.", "Five."),
        ("Can you help me relax?", "Breathe in slowly.", "Relaxing is a waste of time."),
        ("Which is heavier, a kilo of iron or a kilo of feathers?", "They weigh the same.", "Iron."),
    ]):
        prompt = f"\n\nHuman: {q}{ASSISTANT}"
        if i == 1:  # multi-turn
            prompt = f"\n\nHuman: {q}{ASSISTANT} Soft or hard?\n\nHuman: Hard, please.{ASSISTANT}"
        rows.append({"chosen": f"{prompt} {good}", "rejected": f"{prompt} {bad}"})
    # prefixes differ: not a pair of responses to one prompt, left out by the converter
    rows.insert(4, {"chosen": "\n\nHuman: Hi.\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hey.\n\nAssistant: What?"})
    return rows


def expected_prompts(rows: list[dict[str, str]], sample_size: int, seed: int) -> dict[str, str]:
    """{document id: prompt} by the test's own conversion and sampling rule (0: all)."""
    docs = []
    for k, row in enumerate(rows):
        prompt = row["chosen"][: row["chosen"].rfind(ASSISTANT) + len(ASSISTANT)]
        if row["rejected"][: row["rejected"].rfind(ASSISTANT) + len(ASSISTANT)] == prompt:
            docs.append((f"test/{k}", prompt))
    keep = sorted(np.random.default_rng(seed).permutation(len(docs))[: sample_size or len(docs)])
    return dict(docs[i] for i in keep)


@pytest.fixture(scope="module")
def hh_file(tmp_path_factory):
    rows = _rows()
    path = tmp_path_factory.mktemp("hh_gen") / "test.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path, rows


@pytest.fixture(scope="module")
def cli_run(tiny_model_dir, hh_file, offline_env, tmp_path_factory):
    """``lm_eval --tasks rankgen_hh_rlhf_test --log_samples`` with the template's
    defaults: (results, samples)."""
    from tests.helpers.commands import command

    out = tmp_path_factory.mktemp("gen_out")
    meta = {"data_files": str(hh_file[0]), "sample_size": SAMPLE_SIZE, "seed": SEED}
    cmd = [command("lm_eval"), "--model", "hf", "--model_args", f"pretrained={tiny_model_dir}", "--tasks", TASK,
           "--metadata", json.dumps(meta), "--output_path", str(out), "--log_samples"]
    proc = subprocess.run(cmd, env=offline_env, cwd=out, capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, proc.stderr[-4000:]
    (results,) = [json.loads(p.read_text()) for p in out.rglob("results_*.json")]
    (samples_file,) = [p for p in out.rglob("samples_*.jsonl") if re.match(rf"samples_{TASK}_\d", p.name)]
    samples = [json.loads(line) for line in samples_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    return results, samples


def greedy(model, tok, prompt: str, max_new_tokens: int, until: list[str]) -> str:
    """Plain transformers greedy decoding of ``prompt``, cut at the first stop sequence."""
    import torch

    ids = torch.tensor([tok(prompt, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id)
    text = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    for stop in until:
        text = text.split(stop)[0]
    return text


def test_prompts_are_the_documented_sample(cli_run, hh_file):
    results, samples = cli_run
    expected = expected_prompts(hh_file[1], SAMPLE_SIZE, SEED)
    assert len(expected) == SAMPLE_SIZE
    got = {s["doc"]["id"]: s["arguments"]["gen_args_0"]["arg_0"] for s in samples}
    assert got == expected
    assert results["n-samples"][TASK]["effective"] == SAMPLE_SIZE
    record = results["configs"][TASK]["metadata"]["rankacc"]
    assert (record["sample_size"], record["seed"], record["documents"]) == (SAMPLE_SIZE, SEED, SAMPLE_SIZE)


def test_one_greedy_generation_per_prompt_recorded(cli_run, tiny_model_dir):
    results, samples = cli_run
    template = yaml.safe_load(TEMPLATE_YAML.read_text(encoding="utf-8").replace("!function", ""))
    kwargs = results["configs"][TASK]["generation_kwargs"]
    assert kwargs == template["generation_kwargs"] and kwargs["do_sample"] is False
    assert len({s["doc"]["id"] for s in samples}) == len(samples) == SAMPLE_SIZE
    model, tok = load_float32(tiny_model_dir)
    for s in samples:
        assert len(s["arguments"]) == 1 and len(s["resps"]) == 1 and len(s["resps"][0]) == 1
        assert s["arguments"]["gen_args_0"]["arg_1"] == kwargs
        text = s["filtered_resps"][0]
        prompt = s["arguments"]["gen_args_0"]["arg_0"]
        assert text == greedy(model, tok, prompt, kwargs["max_gen_toks"], kwargs["until"])
        assert (s["gen_chars"], s["gen_words"], s["gen_empty"]) == (
            len(text.strip()), len(text.split()), int(text.strip() == ""))
        best = s["doc"]["responses"][list(s["doc"]["ranks"]).index(1)]
        assert s["target"] == best
    values = results["results"][TASK]
    assert values["gen_chars,none"] == pytest.approx(np.mean([len(s["filtered_resps"][0].strip()) for s in samples]))
    assert values["gen_empty,none"] == sum(not s["filtered_resps"][0].strip() for s in samples)


def chat_messages(prompt: str, system: str) -> list[dict[str, str]]:
    """The test's own split of a Human/Assistant prompt into chat messages."""
    out = [{"role": "system", "content": system}]
    for chunk in re.split(r"\n\n(?=Human:|Assistant:)", prompt[: -len(ASSISTANT)])[1:]:
        speaker, _, text = chunk.partition(":")
        out.append({"role": "user" if speaker == "Human" else "assistant", "content": text.removeprefix(" ")})
    return out


def test_chat_template_context(tiny_model_dir, hh_file, tmp_path):
    """Under --apply_chat_template: one generation per prompt, from the template
    applied to the prompt's turns (lm-eval alone would send one user message)."""
    import shutil

    from lm_eval.evaluator import evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    from transformers import AutoTokenizer

    from lm_eval_rankacc import tasks_dir

    model_dir = tmp_path / "chat_model"
    shutil.copytree(tiny_model_dir, model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(model_dir)
    meta = {"data_files": str(hh_file[0]), "sample_size": 0}
    tm = TaskManager(include_defaults=False, include_path=str(tasks_dir()), metadata=meta)
    task_dict = tm.load([TASK])
    task_dict["tasks"][TASK].set_config(key="generation_kwargs", value={"max_gen_toks": 4}, update=True)
    lm = HFLM(pretrained=str(model_dir), device="cpu", batch_size=1, dtype="float32")
    system = "Be brief."
    res = evaluate(lm=lm, task_dict=task_dict, log_samples=True, bootstrap_iters=0,
                   apply_chat_template=True, system_instruction=system)
    samples = res["samples"][TASK]
    expected = expected_prompts(hh_file[1], 0, 0)
    assert sorted(s["doc"]["id"] for s in samples) == sorted(expected)
    assert any(p.count("\n\nHuman:") == 2 for p in expected.values())  # a multi-turn prompt is among them
    for s in samples:
        messages = chat_messages(expected[s["doc"]["id"]], system)
        context = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        assert len(s["arguments"]) == 1 and len(s["resps"]) == 1
        ((arg_context, arg_kwargs),) = s["arguments"]  # in-process samples: (context, generation_kwargs)
        assert arg_context == context and arg_kwargs["max_gen_toks"] == 4 and arg_kwargs["do_sample"] is False


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
