"""Training data (training/splits.py, examples.py, tokens.py, scoring.py):
documents -> pairs, validation splits, a YAML-only task read as lm-eval reads
it, tokenization identical to lm-eval's, truncation, bad data, and the two
batch layouts scoring the same log-probabilities."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
import torch

from lm_eval_rankacc import tasks_dir
from lm_eval_rankacc.core.errors import TaskDataError, TrainingDataError
from lm_eval_rankacc.lmeval import dataset
from lm_eval_rankacc.loading import documents as loader
from lm_eval_rankacc.loading import tasks
from lm_eval_rankacc.loading.hub import MIRROR_ENV
from lm_eval_rankacc.training import examples, scoring, splits, tokens


def doc(i, responses, ranks, prompt="Q?"):
    return {"id": f"d/{i}", "prompt": prompt, "responses": responses, "ranks": ranks, "votes": [], "alpha": None}


def test_pairs_from_documents():
    docs = [
        doc(0, ["a", "b"], [1, 2]),
        doc(1, ["worse", "better"], [2, 1]),  # preferred listed second
        doc(2, ["x", "y"], [1, 1]),  # a human tie: skipped, counted
        doc(3, ["r1", "r2", "r3", "r4"], [1, 2, 2, 3]),  # one tied pair among six
    ]
    pairs, skipped = examples.documents_to_pairs(docs)
    got = [(p.pair_id, p.chosen, p.rejected) for p in pairs]
    assert got[:2] == [("d/0", "a", "b"), ("d/1", "better", "worse")]
    assert [g[0] for g in got[2:]] == ["d/3:0>1", "d/3:0>2", "d/3:0>3", "d/3:1>3", "d/3:2>3"]
    assert {(p.chosen, p.rejected) for p in pairs[2:]} == {
        ("r1", "r2"), ("r1", "r3"), ("r1", "r4"), ("r2", "r4"), ("r3", "r4")}
    assert skipped == {examples.SKIP_TIES: 2}


def test_preferred_responses_for_sft():
    docs = [doc(0, ["a", "b"], [2, 1]), doc(1, ["x", "y"], [1, 1]), doc(2, ["p", "q", "p2"], [1, 2, 1])]
    got, skipped = examples.preferred_responses(docs)
    assert got == [("d/0", "Q?", "b"), ("d/2:0", "Q?", "p"), ("d/2:2", "Q?", "p2")]
    assert sum(skipped.values()) == 1


def test_validation_held_out_from_a_single_split_task():
    split = splits.load_splits("rankacc_demo")
    assert len(split.train) + len(split.validation) == 33
    assert len(split.validation) == 16  # half of the documents (seed 0)
    assert not {d["id"] for d in split.train} & {d["id"] for d in split.validation}
    again = splits.load_splits("rankacc_demo")
    assert [d["id"] for d in again.validation] == [d["id"] for d in split.validation]
    assert "held out" in split.validation_source


def test_validation_is_half_of_the_test_split(hub_mirror, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, str(hub_mirror))
    assert tasks.sibling_test_task("rankacc_hh_rlhf_train") == "rankacc_hh_rlhf_test"
    assert tasks.sibling_test_task("rankacc_shp_multi_train") == "rankacc_shp_multi_test"
    assert tasks.sibling_test_task("rankacc_hh_rlhf_test") is None
    assert tasks.sibling_test_task("rankacc_alpaca_farm_val") is None
    split = splits.load_splits("rankacc_hh_rlhf_train")
    assert len(split.train) == 2  # the third row is dropped by the converter (transcripts differ)
    assert len(split.validation) == 2 and all(d["id"].startswith("test/") for d in split.validation)
    assert "rankacc_hh_rlhf_test" in split.validation_source


def test_common_schema_files_and_bad_rows(tmp_path):
    good = tmp_path / "prefs.jsonl"
    good.write_text("".join(json.dumps({"prompt": f"P{i}", "responses": ["a", "b"], "ranks": [1, 2]}) + "\n"
                            for i in range(4)))
    split = splits.load_splits(None, data_files=str(good))
    assert split.task == splits.FILES_TASK and len(split.train) + len(split.validation) == 4
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "P", "ranks": [1, 2]}) + "\n")
    with pytest.raises(TrainingDataError) as err:
        splits.load_splits(None, data_files=str(bad))
    # the same message the eval tasks give for the same row
    with pytest.raises(TaskDataError) as eval_err:
        dataset.load_docs(source="demo", task=splits.FILES_TASK, split="train", data_files=str(bad))
    assert str(err.value) == str(eval_err.value)
    assert "bad.jsonl: line 1: field 'responses'" in str(err.value)  # the file and its 1-based line
    with pytest.raises(TrainingDataError, match="unknown task"):
        splits.load_splits("rankacc_nope")
    with pytest.raises(TrainingDataError, match="matches no file"):
        splits.load_splits("rankacc_hh_rlhf_train", data_files=str(tmp_path / "missing*.jsonl"))


def test_the_0_1_path_of_load_documents_still_reads_documents(tmp_path, monkeypatch):
    """``lm_eval_rankacc.training.data`` (release 0.1) warns and still gives
    ``load_documents``, the loader's documents with the loader's messages."""
    import importlib
    import sys

    monkeypatch.delitem(sys.modules, "lm_eval_rankacc.training.data", raising=False)  # warned on first import

    good = tmp_path / "prefs.jsonl"
    good.write_text("".join(json.dumps({"prompt": f"P{i}", "responses": ["a", "b"], "ranks": [1, 2]}) + "\n"
                            for i in range(4)))
    with pytest.warns(DeprecationWarning, match="lm_eval_rankacc.training.data is deprecated"):
        old = importlib.import_module("lm_eval_rankacc.training.data")
    task, docs = old.load_documents(data_files=str(good))
    assert task == splits.FILES_TASK and docs == loader.documents(source="demo", split="train", data_files=str(good))
    with pytest.raises(old.TrainingDataError, match="unknown task"):
        old.load_documents("rankacc_nope")
    assert old.encode_pairs is tokens.encode_pairs and old.documents_to_pairs is examples.documents_to_pairs


def test_training_and_lm_eval_read_a_yaml_only_task_alike(tmp_path):
    """A task YAML on ``_fields_template_yaml`` that names no source and no
    split: lm-eval's loader (through lm-eval's own task reading) and training
    use source ``fields`` and split ``test`` (loading.tasks' constants), and
    read the same documents."""
    from lm_eval.tasks import TaskManager

    data = tmp_path / "prefs.jsonl"
    data.write_text("".join(json.dumps({"question": f"Q{i}?", "good": f"good {i}", "bad": f"bad {i}"}) + "\n"
                            for i in range(3)))
    user = tmp_path / "user_tasks"
    user.mkdir()
    path = user / "my_prefs.yaml"
    path.write_text(f"include: {tasks_dir() / '_fields_template_yaml'}\ntask: my_prefs\ndataset_kwargs:\n"
                    f"  data_files: {data}\n  prompt_field: question\n  chosen_field: good\n  rejected_field: bad\n")
    options = splits.loader_options(str(path))
    assert (options["source"], options["split"], options["task"]) == ("fields", "test", "my_prefs")
    assert (tasks.FIELDS_SOURCE, tasks.DEFAULT_SPLIT) == ("fields", "test")
    trained_on = loader.documents(sample_size=0, **options)

    manager = TaskManager(include_path=[str(user)], include_defaults=False)
    task = manager.load(["my_prefs"])["tasks"]["my_prefs"]
    record = task.config.metadata["rankacc"]  # what lm-eval's loader used (lmeval.dataset.provenance)
    assert (record["source"], record["split"]) == (options["source"], options["split"])
    evaluated = list(task.test_docs())
    assert [d["id"] for d in evaluated] == [d["id"] for d in trained_on] == ["test/0", "test/1", "test/2"]
    assert [d["responses"] for d in evaluated] == [d["responses"] for d in trained_on]


@pytest.mark.parametrize("prompt,response", [
    ("What is the capital of France?", "Paris."),
    ("Prompt ending in spaces  ", "x y z"),
    ("Non-ASCII: caf\u00e9 \u2013", "d\u00e9licieux \u2013 oui"),
    ("\n\nHuman: hi\n\nAssistant:", "Hello! How can I help?"),
])
def test_tokens_are_lm_evals(tiny_model_dir, prompt, response):
    """Context / continuation split exactly as lm-eval's hf backend (TemplateLM._encode_pair)."""
    from lm_eval.api.model import TemplateLM
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    stub = types.SimpleNamespace(backend="causal", tok_encode=lambda s, **kw: tok.encode(s))
    ctx, cont = TemplateLM._encode_pair(stub, prompt, loader.JOIN + response)
    p_ids, r_ids = tokens.encode_pairs(tok, [prompt], [[response]])
    assert p_ids[0] == ctx and r_ids[0][0] == cont


def test_truncation_keeps_the_prompt_end_and_the_pair_aligned():
    prompt, chosen, rejected = list(range(100)), list(range(1000, 1030)), list(range(2000, 2010))
    p, (c, r), cut = tokens.truncate(prompt, [chosen, rejected], max_length=64, max_prompt_length=20)
    assert cut and p == prompt[-20:] and c == chosen and r == rejected
    p, (c, r), cut = tokens.truncate(prompt, [chosen, rejected], max_length=40, max_prompt_length=20)
    assert p == prompt[-20:] and c == chosen[:20] and r == rejected
    p, rs, cut = tokens.truncate(prompt[:5], [chosen], max_length=64, max_prompt_length=20)
    assert not cut and p == prompt[:5] and rs == [chosen]
    with pytest.raises(TrainingDataError, match="max_prompt_length"):
        tokens.encode(None, [], [], [], max_length=10, max_prompt_length=10)


def _items(tok, n=6):
    prompts = ["Hello there, how are you?", "Q", "A much longer prompt about the capital of France and Berlin.",
               "Two plus two?", "Say something nice.", "Identical answers?"][:n]
    responses = [["Fine, thanks.", "Go away."], ["A", "Another answer that is longer"],
                 ["Paris.", "Berlin, I think."], ["Four.", "Five, obviously."], ["You are great!", "No."],
                 ["Yes, the same.", "Yes, the same."]][:n]
    p, r = tokens.encode_pairs(tok, prompts, responses)
    return [{"code": 0, "index": i, "prompt_ids": p[i], "chosen_ids": r[i][0], "rejected_ids": r[i][1],
             "ref": np.array([np.nan, np.nan])} for i in range(n)]


def _independent_logps(model, item):
    out = []
    for resp in (item["chosen_ids"], item["rejected_ids"]):
        ids = torch.tensor([item["prompt_ids"] + resp])
        with torch.no_grad():
            logp = model(ids).logits.log_softmax(-1)[0]
        lp = len(item["prompt_ids"])
        out.append(sum(logp[lp - 1 + k, t].item() for k, t in enumerate(resp)))
    return out


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_and_plain_layouts_score_like_a_plain_forward(tiny_model_dir, attn):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation=attn).eval()
    items = _items(tok)
    expected = np.array([_independent_logps(model, it) for it in items])
    for packed in (True, False):
        for keep in (True, False):
            batch = scoring.PairCollator(tok.pad_token_id, packed, pad_to_multiple_of=8 if packed else None)(items)
            with torch.no_grad():
                c, r = scoring.response_logps(model, batch, len(items), keep, scoring.attention_kind(model))
            got = torch.stack([c, r], 1).numpy()
            np.testing.assert_allclose(got, expected, atol=2e-4, rtol=1e-5, err_msg=f"packed={packed} keep={keep}")
            assert got[5, 0] == got[5, 1]  # identical responses: exactly equal scores (ranked correctly)
    ok, diff = scoring.packing_agrees(model, items, tok.pad_token_id, True)
    assert ok and diff < 1e-3


def test_packing_check_catches_a_model_that_ignores_the_mask(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    original = model.forward

    def forward(*args, attention_mask=None, position_ids=None, **kwargs):  # drops the custom mask
        return original(*args, **kwargs)

    model.forward = forward
    ok, diff = scoring.packing_agrees(model, _items(tok), tok.pad_token_id, True)
    assert not ok and diff > 1e-2


def test_an_unreadable_reference_cache_is_computed_again(tmp_path, caplog):
    """Issue 11, item 7: a truncated reference_logps.npz (or garbage, a single
    array, missing or misshapen arrays) is a warning naming the file, and the
    scores are computed again; a cache of other pairs is silently replaced."""
    import io
    import logging

    from lm_eval_rankacc.training import reference

    def pdata():
        return types.SimpleNamespace(train=types.SimpleNamespace(ref=np.zeros((3, 2))),
                                     validation=types.SimpleNamespace(ref=np.zeros((2, 2))))

    good = pdata()
    good.train.ref[:] = [[-1.0, -2.0], [-3.0, -4.0], [-5.0, -6.0]]
    good.validation.ref[:] = [[-7.0, -8.0], [-9.0, -10.0]]
    path = tmp_path / reference.REFERENCE_CACHE
    reference.save_cache(path, "key", good)
    whole = path.read_bytes()
    got = pdata()
    assert reference.load_cache(path, "key", got)
    np.testing.assert_array_equal(got.train.ref, good.train.ref)

    def npz(**arrays):
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    def npy():
        buffer = io.BytesIO()
        np.save(buffer, np.zeros(3))
        return buffer.getvalue()

    caplog.set_level(logging.INFO, logger="lm_eval_rankacc.training")
    bad = {
        "truncated": whole[: len(whole) // 2],
        "cut at the end": whole[:-10],
        "garbage": b"not a numpy file at all",
        "empty": b"",
        "a single array": npy(),
        "no validation array": npz(key=np.array("key"), train=good.train.ref),
        "text arrays": npz(key=np.array("key"), train=np.array([["a", "b"]] * 3), validation=good.validation.ref),
        "wrong shape": npz(key=np.array("key"), train=np.zeros((4, 2)), validation=good.validation.ref),
        "one column": npz(key=np.array("key"), train=np.zeros(3), validation=good.validation.ref),
    }
    for what, content in bad.items():
        path.write_bytes(content)
        caplog.clear()
        got = pdata()
        assert not reference.load_cache(path, "key", got), what
        assert (got.train.ref == 0).all(), what
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and str(path) in warnings[0].getMessage(), what
        assert "computing the reference log-probabilities again" in warnings[0].getMessage(), what
    path.write_bytes(whole)
    caplog.clear()
    assert not reference.load_cache(path, "other pairs", pdata())
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
