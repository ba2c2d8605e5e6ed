"""The preference datasets of Chen et al. (2024) beyond HH-RLHF and Alpaca Farm,
their multi-response variants, and YAML-only task authoring.

Rows in each dataset's exact hub schema (``preference_rows``) go through
``load_docs(..., data_files=...)``; the documents, the drop counts the harness
reports, and the metrics of a deterministic fake scorer are checked against
values worked out by hand. A user YAML is run through lm-eval itself.
"""

from __future__ import annotations

import json
import math
import re

import pytest
import yaml

from tests.helpers import preference_rows as R
from lm_eval_rankacc import tasks_dir
from lm_eval_rankacc.loading import documents as loader
from lm_eval_rankacc.loading.hub import MIRROR_ENV
from lm_eval_rankacc.lmeval.dataset import load_docs, load_fields_docs
from lm_eval_rankacc.loading.documents import TaskDataError, sample_indices
from lm_eval_rankacc.lmeval.loglikelihood import Loglikelihood
from lm_eval_rankacc.lmeval.metrics import process_results
from lm_eval_rankacc.sources import common, get_source, shp

NEW_TASKS = {  # task -> (source, split, form option or None, n > 2 responses)
    "rankacc_gptj_pairwise_train": ("gptj_pairwise", "train", None, False),
    "rankacc_shp_test": ("shp", "test", "pairs", False),
    "rankacc_shp_train": ("shp", "train", "pairs", False),
    "rankacc_shp_multi_test": ("shp", "test", "multi", True),
    "rankacc_shp_multi_train": ("shp", "train", "multi", True),
    "rankacc_stack_exchange_train": ("stack_exchange", "train", None, True),
    "rankacc_ultrafeedback_train": ("ultrafeedback", "train", None, True),
}


@pytest.fixture
def drops(monkeypatch):
    """What the harness reports as dropped, per task: {task: (rows read, Counter)}."""
    seen = {}
    original = loader.report_drops

    def record(task, n_rows, conversion):
        seen[task] = (n_rows, dict(conversion.dropped))
        original(task, n_rows, conversion)

    monkeypatch.setattr(loader, "report_drops", record)
    return seen


def load(tmp_path, source, task, rows, split="train", name="rows.jsonl", **options):
    path = R.write_jsonl(tmp_path / name, rows)
    return list(load_docs(source=source, task=task, split=split, data_files=str(path), **options)["test"])


def fake_results(doc):
    """The fake model's results: fixed log-likelihood per text, n_tokens = word count."""
    return [Loglikelihood((R.LOGLIK[r], False), len(r.split())) for r in doc["responses"]]


def metrics_of(doc):
    out = process_results(doc, fake_results(doc))
    out.pop("scores")
    assert (out.pop("too_long"), out.pop("truncated")) == (0, 0)  # scored whole: nothing dropped or cut
    return out


def errors_like(tmp_path, source, task, rows, split, message):
    with pytest.raises(TaskDataError) as err:
        load(tmp_path, source, task, rows, split=split)
    text = str(err.value)
    assert text.startswith(f"{task}: "), text
    assert re.search(message, text), text


# ------------------------------------------------------------------ GPT-J pairwise
def test_gptj_pairwise_documents_drops_and_metrics(tmp_path, drops):
    docs = load(tmp_path, "gptj_pairwise", "rankacc_gptj_pairwise_train", R.GPTJ)
    assert [d["id"] for d in docs] == ["train/0", "train/1", "train/5"]
    assert drops["rankacc_gptj_pairwise_train"] == (6, {common.DROP_REPEATED: 1, common.DROP_CONTRADICTED: 2})
    fruit, hi, colour = docs
    assert fruit["prompt"] == "Name a fruit." and fruit["responses"] == ["An apple.", "A chair."]
    assert fruit["ranks"] == [1, 2] and fruit["votes"] == [] and fruit["alpha"] is None
    assert hi["responses"] == ["Hi!", "Hi!"]
    # -3 >= -5: right; identical responses score equal: right; Blue. -4 < Seven. -2: wrong (per token and byte too)
    assert metrics_of(fruit) == {"rank_acc": 1.0, "rank_acc_norm": 1.0, "rank_acc_bytes": 1.0, "invalid": 0}
    assert metrics_of(hi)["rank_acc"] == 1.0
    assert metrics_of(colour) == {"rank_acc": 0.0, "rank_acc_norm": 0.0, "rank_acc_bytes": 0.0, "invalid": 0}


@pytest.mark.parametrize(
    "row, message",
    [
        ({"prompt": "q", "chosen": "a"}, r"line 2: field 'rejected': is missing"),
        ({"prompt": "q", "chosen": 3, "rejected": "b"}, r"line 2: field 'chosen': expected a string, got int"),
        ({"prompt": "  ", "chosen": "a", "rejected": "b"}, r"line 2: field 'prompt': is empty"),
        ("just text", r"line 2: field 'prompt': row is not an object"),
    ],
)
def test_gptj_malformed_rows(tmp_path, row, message):
    errors_like(tmp_path, "gptj_pairwise", "rankacc_gptj_pairwise_train", [R.GPTJ[0], row], "train", message)


# ------------------------------------------------------------------ SHP
def test_shp_pairs(tmp_path, drops):
    docs = load(tmp_path, "shp", "rankacc_shp_test", R.SHP, split="test", form="pairs")
    assert [d["id"] for d in docs] == ["p1/c1/c2", "p1/c3/c1", "p1/c4/c3", "p2/d1/d2", "p3/e1/e2"]
    assert drops["rankacc_shp_test"] == (6, {common.DROP_REPEATED: 1})  # row 2 = row 0 swapped
    first, second, third, _, same = docs
    assert first["prompt"] == "Post p1: why is the sky blue?"
    assert first["responses"] == ["Comment c1.", "Comment c2."] and first["ranks"] == [1, 2]
    assert second["responses"] == ["Comment c3.", "Comment c1."] and second["ranks"] == [2, 1]  # labels 0: B preferred
    assert same["responses"] == ["Same words.", "Same words."]
    # c1 -2 vs c2 -6: right; c1 -2 vs c3 -4: right; c4 -5 vs c3 -4: wrong
    assert [metrics_of(d)["rank_acc"] for d in (first, second, third)] == [1.0, 1.0, 0.0]


def test_shp_multi_reconstructs_comments(tmp_path, drops):
    docs = load(tmp_path, "shp", "rankacc_shp_multi_test", R.SHP, split="test", form="multi")
    assert drops["rankacc_shp_multi_test"] == (6, {
        f"{common.DROP_ALL_TIED} (every row of the post)": 1,  # p2: d1 and d2 have equal (score, time)
        f"{common.DROP_SAME_TEXT} (every row of the post)": 1,  # p3: one text, scores 9 and 3
    })
    (doc,) = docs
    assert doc["id"] == "p1" and doc["prompt"] == "Post p1: why is the sky blue?"
    # comments in order of first appearance; keys (10, t200) > (4, t100) = (4, t100) > (2, t300)
    assert doc["responses"] == ["Comment c1.", "Comment c2.", "Comment c3.", "Comment c4."]
    assert doc["ranks"] == [1, 2, 3, 2]
    # ordered pairs: c1>c2 ok, c1>c3 ok, c1>c4 ok, c2>c3 (-6 < -4) wrong, c4>c3 (-5 < -4) wrong; c2 ~ c4 tied
    m = metrics_of(doc)
    assert m["rank_acc"] == 0.0 and m["pair_acc"] == pytest.approx(3 / 5)
    # per token (2 words each): the same order, so the same values
    assert m["rank_acc_norm"] == 0.0 and m["pair_acc_norm"] == pytest.approx(3 / 5)


def test_shp_multi_time_breaks_score_ties():
    later, earlier = ("new", 7, 200), ("old", 7, 100)
    conv = shp.convert([R.shp_row("p", earlier, later, 0)], "test", form="multi")
    assert conv.docs[0]["responses"] == ["Comment old.", "Comment new."] and conv.docs[0]["ranks"] == [2, 1]


@pytest.mark.parametrize(
    "row, form, message",
    [
        (R.shp_row("p1", ("c1", 11, 1_600_000_200), R.C3, 1), "multi",
         r"line 7: field 'score_A': comment 'c1' has score 11 here but 10 in its first row \(line 1\)"),
        (R.shp_row("p1", R.C2, ("c1", 10, 1_600_000_999), 0), "multi",
         r"line 7: field 'created_at_utc_B': comment 'c1' has created_at_utc 1600000999 here but 1600000200 in its first row \(line 1\)"),
        (R.shp_row("p1", R.C1, R.C3, 1, text_a="Edited."), "multi",
         r"line 7: field 'human_ref_A': comment 'c1' has a different text than in its first row \(line 1\)"),
        (R.shp_row("p1", R.C1, R.C3, 1, history="Another post."), "multi",
         r"line 7: field 'history': differs from the first row of the same post 'p1' \(line 1\)"),
        ({**R.shp_row("p9", R.C1, R.C3, 1), "score_B": "2"}, "multi", r"line 7: field 'score_B': expected a number, got str"),
        (R.shp_row("p9", R.C1, R.C3, 2), "pairs", r"line 7: field 'labels': unknown label 2"),
        (R.shp_row("p9", R.C1, R.C1, 1), "pairs", r"line 7: field 'c_root_id_B': is the same comment as c_root_id_A"),
        ({k: v for k, v in R.shp_row("p9", R.C1, R.C3, 1).items() if k != "human_ref_B"}, "pairs",
         r"line 7: field 'human_ref_B': is missing"),
    ],
)
def test_shp_malformed_rows(tmp_path, row, form, message):
    task = f"rankacc_shp{'_multi' if form == 'multi' else ''}_test"
    with pytest.raises(TaskDataError, match=rf"^{task}: .*{message}"):
        load(tmp_path, "shp", task, R.SHP + [row], split="test", form=form)


# ------------------------------------------------------------------ Stack Exchange
def test_stack_exchange_from_parquet(tmp_path, drops):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "train-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(R.STACK_EXCHANGE), path)
    docs = list(load_docs(source="stack_exchange", task="rankacc_stack_exchange_train", split="train",
                          data_files=str(path))["test"])
    assert drops["rankacc_stack_exchange_train"] == (4, {common.DROP_FEW: 1, common.DROP_ALL_TIED: 1})
    sort, o1 = docs
    assert sort["id"] == "train/0" and sort["prompt"] == "<p>How do I sort a list?</p>"
    assert sort["responses"] == ["<p>Use sorted().</p>", "<p>Use a loop.</p>", "<p>Use list.sort().</p>", "<p>No idea.</p>"]
    assert sort["ranks"] == [1, 2, 1, 3]  # pm_score 5, 2, 5, 0
    assert o1["responses"] == ["<p>Constant time.</p>", "<p>Fast.</p>"] and o1["ranks"] == [1, 2]
    # ordered pairs: sorted()>loop ok, sorted()>no idea (-1 < -0.5) wrong, sort()>loop ok,
    # sort()>no idea wrong, loop>no idea wrong; sorted() ~ sort() tied
    m = metrics_of(sort)
    assert m["rank_acc"] == 0.0 and m["pair_acc"] == pytest.approx(2 / 5)
    assert metrics_of(o1)["rank_acc"] == 0.0 and "pair_acc" not in metrics_of(o1)  # n = 2: no pair_acc


@pytest.mark.parametrize(
    "answers, message",
    [
        ([R.se_answer(1, "a", 1), {**R.se_answer(2, "b", 0), "pm_score": "5"}], r"field 'answers\[1\].pm_score': expected a number, got str"),
        ([R.se_answer(1, "a", 1), {"answer_id": 2, "pm_score": 0}], r"field 'answers\[1\].text': is missing"),
        ([R.se_answer(1, "a", 1), "b"], r"field 'answers\[1\]': expected an object, got str"),
        ({"text": "a"}, r"field 'answers': expected a list, got dict"),
    ],
)
def test_stack_exchange_malformed_rows(tmp_path, answers, message):
    rows = [R.STACK_EXCHANGE[0], R.se_row(9, "<p>Q?</p>", answers)]
    errors_like(tmp_path, "stack_exchange", "rankacc_stack_exchange_train", rows, "train", rf"line 2: {message}")


# ------------------------------------------------------------------ UltraFeedback
def test_ultrafeedback_documents_drops_and_metrics(tmp_path, drops):
    docs = load(tmp_path, "ultrafeedback", "rankacc_ultrafeedback_train", R.ULTRAFEEDBACK)
    assert drops["rankacc_ultrafeedback_train"] == (4, {common.DROP_ALL_TIED: 1, common.DROP_SAME_TEXT: 1})
    haiku, count = docs
    assert haiku["id"] == "train/0" and haiku["prompt"] == "Write a haiku about rain."
    assert haiku["ranks"] == [1, 2, 1, 3] and count["ranks"] == [1, 2, 3, 4]
    # haiku: ordered pairs (0>1) -6<-2 wrong, (0>3) ok, (2>1) wrong, (2>3) ok, (1>3) ok -> 3/5
    m = metrics_of(haiku)
    assert m["rank_acc"] == 0.0 and m["pair_acc"] == pytest.approx(3 / 5)
    # per token: -1.5, -2, -1.4, -3 -> (0>1) ok, (0>3) ok, (2>1) ok, (2>3) ok, (1>3) ok
    assert m["rank_acc_norm"] == 1.0 and m["pair_acc_norm"] == 1.0
    # count: summed -3 > -3.5 > -4 > -8, all six pairs right; per token -1, -1.75, -1.33, -8
    # and per byte -3/9, -3.5/6, -4/9, -8/8: "1, 2." falls below "3, 2, 1.", one pair of six wrong
    assert metrics_of(count) == {
        "rank_acc": 1.0, "pair_acc": 1.0, "rank_acc_norm": 0.0, "pair_acc_norm": pytest.approx(5 / 6),
        "rank_acc_bytes": 0.0, "invalid": 0,
    }


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r["completions"][2].update(overall_score=None), r"field 'completions\[2\].overall_score': expected a number, got null"),
        (lambda r: r["completions"][1].pop("response"), r"field 'completions\[1\].response': is missing"),
        (lambda r: r["completions"][0].update(response=7), r"field 'completions\[0\].response': expected a string, got int"),
        (lambda r: r.pop("instruction"), r"field 'instruction': is missing"),
    ],
)
def test_ultrafeedback_malformed_rows(tmp_path, change, message):
    bad = json.loads(json.dumps(R.ULTRAFEEDBACK[0]))
    change(bad)
    errors_like(tmp_path, "ultrafeedback", "rankacc_ultrafeedback_train", [R.ULTRAFEEDBACK[3], bad], "train",
                rf"line 2: {message}")


def test_sample_size_and_seed_work_for_the_new_tasks(tmp_path):
    rows = [R.uf_row(f"Question {i}?", [(f"good {i}", 9.0), (f"bad {i}", 1.0)]) for i in range(30)]
    path = str(R.write_jsonl(tmp_path / "uf.jsonl", rows))

    def ids(**kw):
        return load_docs(source="ultrafeedback", task="t", split="train", data_files=path, **kw)["test"]["id"]

    assert len(ids()) == 30  # the default 1,000 holds them all
    assert ids(sample_size=10) == [f"train/{i}" for i in sample_indices(30, 10, 0)]
    assert ids(sample_size=10, seed=3) == [f"train/{i}" for i in sample_indices(30, 10, 3)] != ids(sample_size=10)


# ------------------------------------------------------------------ task files, pins, hub reading
def _task_yaml(name):
    from lm_eval.tasks._yaml_loader import load_yaml

    (path,) = tasks_dir().glob(f"*/{name}.yaml")
    return load_yaml(path, resolve_func=False)


def test_task_yamls_group_and_pins():
    group = yaml.safe_load((tasks_dir() / "rankacc.yaml").read_text())["task"]
    for name, (source, split, form, multi) in NEW_TASKS.items():
        cfg = _task_yaml(name)
        kw = cfg["dataset_kwargs"]
        assert cfg["task"] == name and "task" not in kw and name in group
        assert (kw["source"], kw["split"], kw.get("form")) == (source, split, form)
        assert {"rank_acc", "pair_acc"} <= {m["metric"] for m in cfg["metric_list"]}
        hub = get_source(source).HUB
        assert cfg["dataset_path"] == hub.path
        if source != "gptj_pairwise":  # no public pin found for it
            assert re.fullmatch(r"[0-9a-f]{40}", hub.revision), (source, hub.revision)
    assert get_source("stack_exchange").HUB.data_files == "data/cs.stackexchange.com/train-00000-of-00001.parquet"


def test_base_template_declares_every_metric():
    from lm_eval.tasks._yaml_loader import load_yaml

    declared = {m["metric"] for m in load_yaml(tasks_dir() / "_default_template_yaml", resolve_func=False)["metric_list"]}
    doc = {"id": "d", "prompt": "p", "responses": ["a", "b", "c"], "ranks": [1, 2, 3], "votes": [], "alpha": None}
    emitted = process_results(doc, [Loglikelihood((-1.0, False), 1)] * 3)
    assert set(emitted) == declared


def test_read_hub_reads_only_the_pinned_file(monkeypatch):
    import datasets

    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **kw: calls.append((a, kw)) or R.STACK_EXCHANGE)
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    docs = load_docs(source="stack_exchange", task="t", split="train")["test"]
    assert len(docs) == 2
    ((args, kw),) = calls
    assert args[0] == "HuggingFaceH4/stack-exchange-preferences"
    assert kw["data_files"] == "data/cs.stackexchange.com/train-00000-of-00001.parquet"
    assert kw["revision"] == "c7bda74048748f55749cd663c3d8d1025a841fd9" and kw["split"] == "train"


def test_mirror_serves_the_new_tasks(tmp_path, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, str(R.write_mirror(tmp_path)))
    for name, count in R.MIRROR_DOCS.items():
        source, split, form, _ = NEW_TASKS[name]
        options = {"form": form} if form else {}
        assert len(load_docs(source=source, task=name, split=split, **options)["test"]) == count, name


# ------------------------------------------------------------------ the `fields` source
PAIRWISE = {"prompt_field": "question", "chosen_field": "good", "rejected_field": "bad"}
SCORED = {"prompt_field": "q", "responses_field": "answers", "score_field": "scores"}


def test_fields_pairwise_with_votes_and_ids(tmp_path):
    rows = [
        {"key": "a", "question": "Q1", "good": "yes", "bad": "no", "votes": [3, 1]},
        {"key": "b", "question": "Q2", "good": "up", "bad": "down", "votes": [2, 2]},  # a human tie
        {"key": "c", "question": "Q3", "good": "hot", "bad": "cold", "votes": 0.75},  # a share
    ]
    docs = load(tmp_path, "fields", "mine", rows, votes_field="votes", id_field="key", **PAIRWISE)
    assert [(d["id"], d["ranks"], d["votes"], d["alpha"]) for d in docs] == [
        ("a", [1, 2], [3, 1], 0.75), ("b", [1, 1], [2, 2], 0.5), ("c", [1, 2], [], 0.75),
    ]
    bad = rows + [{"key": "d", "question": "Q4", "good": "x", "bad": "y", "votes": [1, 4]}]
    with pytest.raises(TaskDataError, match=r"^mine: .*line 4: field 'votes': favours the rejected response"):
        load(tmp_path, "fields", "mine", bad, votes_field="votes", **PAIRWISE)


def test_fields_scored_strings_and_objects(tmp_path, drops):
    rows = [
        {"q": "Q1", "answers": ["a", "b", "c"], "scores": [1, 3, 2]},
        {"q": "Q2", "answers": ["a", "b"], "scores": [1, 1]},  # all tied: dropped
    ]
    docs = load(tmp_path, "fields", "mine", rows, **SCORED)
    assert [(d["responses"], d["ranks"]) for d in docs] == [(["a", "b", "c"], [3, 1, 2])]
    assert drops["mine"] == (2, {common.DROP_ALL_TIED: 1})
    objects = [{"q": "Q1", "answers": [{"t": "a", "s": 0.5}, {"t": "b", "s": 0.9}]}]
    docs = load(tmp_path, "fields", "mine", objects, prompt_field="q", responses_field="answers",
                text_field="t", score_field="s")
    assert docs[0]["responses"] == ["a", "b"] and docs[0]["ranks"] == [2, 1]
    with pytest.raises(TaskDataError, match=r"^mine: .*line 1: field 'scores': has 2 scores for 3 responses"):
        load(tmp_path, "fields", "mine", [{"q": "Q", "answers": ["a", "b", "c"], "scores": [1, 2]}], **SCORED)


@pytest.mark.parametrize(
    "mapping, message",
    [
        ({"prompt_field": "q", "chosen_field": "a"}, r"dataset_kwargs is missing 'rejected_field' \(the pairwise form"),
        ({"chosen_field": "a", "rejected_field": "b"}, r"dataset_kwargs is missing 'prompt_field'"),
        ({"prompt_field": "q", "responses_field": "r"}, r"dataset_kwargs is missing 'score_field' \(the scored form"),
        ({"prompt_field": "q"}, r"dataset_kwargs has no field mapping"),
        ({**PAIRWISE, "responses_field": "r"}, r"dataset_kwargs mixes the pairwise form"),
        ({**PAIRWISE, "chosen_field": 5}, r"dataset_kwargs 'chosen_field' must be a field name"),
    ],
)
def test_fields_mapping_errors_name_the_task(tmp_path, mapping, message):
    with pytest.raises(TaskDataError, match=rf"^my_prefs: {message}"):
        load(tmp_path, "fields", "my_prefs", [{"q": "x"}], **mapping)


def test_fields_needs_a_data_source_and_reads_the_hub(monkeypatch):
    with pytest.raises(TaskDataError, match=r"^my_prefs: no data: set 'data_files'"):
        load_docs(source="fields", task="my_prefs", **PAIRWISE)
    import datasets

    calls = []
    rows = [{"question": "Q", "good": "g", "bad": "b"}]
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **kw: calls.append((a, kw)) or rows)
    docs = load_docs(source="fields", task="my_prefs", split="validation", dataset_path="me/prefs",
                     dataset_name="cfg", dataset_revision="abc123", **PAIRWISE)["test"]
    assert docs["responses"] == [["g", "b"]]
    ((args, kw),) = calls
    assert args == ("me/prefs", "cfg") and kw["revision"] == "abc123" and kw["split"] == "validation"


def test_user_task_name_comes_from_its_yaml(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("include: /x/_fields_template_yaml\ntask: my_prefs  # mine\ndataset_kwargs: {}\n")
    assert loader.task_name(str(path)) == "my_prefs"
    with pytest.raises(TaskDataError, match=r"^my_prefs: dataset_kwargs is missing 'rejected_field'"):
        load_fields_docs(config_source=str(path), version=1.0, prompt_field="q", chosen_field="c",
                            data_files=str(R.write_jsonl(tmp_path / "d.jsonl", [{"q": "x"}])))


# ------------------------------------------------------------------ through lm-eval
def test_user_yaml_and_new_tasks_run_in_lm_eval(tmp_path, monkeypatch):
    from lm_eval.evaluator import simple_evaluate
    from lm_eval.models.dummy import DummyLM
    from lm_eval.tasks import TaskManager

    data = R.write_jsonl(tmp_path / "data" / "prefs.jsonl", [
        {"question": f"Question {i}?", "good": f"A good answer {i}.", "bad": f"Bad {i}."} for i in range(5)
    ])
    scored = R.write_jsonl(tmp_path / "data" / "scored.jsonl", [
        {"q": f"Rank these {i}.", "answers": ["first", "second", "third"], "scores": [3, 2, 1]} for i in range(4)
    ])
    base = tasks_dir() / "_fields_template_yaml"
    user = tmp_path / "user_tasks"
    user.mkdir()
    (user / "my_prefs.yaml").write_text(
        f"include: {base}\ntask: my_prefs\ndataset_kwargs:\n  data_files: {data}\n"
        "  prompt_field: question\n  chosen_field: good\n  rejected_field: bad\n"
    )
    (user / "my_scored.yaml").write_text(
        f"include: {base}\ntask: my_scored\ndataset_kwargs:\n  data_files: {scored}\n"
        "  prompt_field: q\n  responses_field: answers\n  score_field: scores\n"
    )
    monkeypatch.setenv(MIRROR_ENV, str(R.write_mirror(tmp_path / "mirror")))
    builtin = ["rankacc_shp_multi_test", "rankacc_ultrafeedback_train", "rankacc_gptj_pairwise_train"]
    dummy = DummyLM()  # lm-eval's --model dummy: random log-likelihoods
    dummy.tokenizer = None  # its tokenizer, fetched from the hub only for result metadata, is not needed
    out = simple_evaluate(
        model=dummy, tasks=["my_prefs", "my_scored", *builtin], log_samples=True,
        task_manager=TaskManager(include_path=[str(user), str(tasks_dir())], include_defaults=False),
    )
    results = out["results"]
    for name in ("my_prefs", "rankacc_gptj_pairwise_train"):
        assert {"rank_acc,none", "rank_acc_bytes,none", "invalid,none", "scores,none"} <= results[name].keys()
    for name in ("my_scored", "rankacc_shp_multi_test", "rankacc_ultrafeedback_train"):
        assert {"rank_acc,none", "pair_acc,none", "rank_acc_bytes,none"} <= results[name].keys()
    expected = {"my_prefs": 5, "my_scored": 4, **R.MIRROR_DOCS}
    for name, samples in out["samples"].items():
        assert len(samples) == expected[name], name
        for sample in samples:
            logliks = sample["scores"]["loglik"]
            assert logliks == [float(r[0][0]) for r in sample["resps"]]
            again = process_results(sample["doc"], [Loglikelihood((ll, False), None) for ll in logliks])
            for key in ("rank_acc", "rank_acc_bytes", "pair_acc", "invalid"):
                assert sample.get(key) == again.get(key), (name, key)
    assert results["my_scored"]["scores,none"] == 12 and results["my_prefs"]["scores,none"] == 10
    assert math.isclose(
        results["my_prefs"]["rank_acc,none"], sum(s["rank_acc"] for s in out["samples"]["my_prefs"]) / 5
    )
