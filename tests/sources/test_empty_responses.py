"""The empty-response rule (issue 20, item 4): in every source a document with
a response of nothing but whitespace is dropped and counted, wherever it
stands in the data; lm-eval, which inspects the first document's choices,
never sees one."""

from __future__ import annotations

from collections import Counter

import pytest

from lm_eval_rankacc import tasks_dir
from lm_eval_rankacc.sources import get_source
from lm_eval_rankacc.sources.common import DROP_EMPTY
from tests.helpers import preference_rows as R

HH_GOOD = {"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: go away"}


def _alpaca(instruction, out_1, out_2):
    return {"instruction": instruction, "input": "", "output_1": out_1, "output_2": out_2, "preference": 1,
            "annotator_index": 0}


def _demo(i, responses):
    return {"id": f"d{i}", "prompt": f"Prompt {i}", "responses": responses, "ranks": [1, 2]}


#: source -> (options, a good row, rows of one document each with an empty or blank response)
CASES = {
    "hh_rlhf": ({}, HH_GOOD, [
        {"chosen": "\n\nHuman: q\n\nAssistant:", "rejected": "\n\nHuman: q\n\nAssistant: no"},
        {"chosen": "\n\nHuman: q\n\nAssistant: yes", "rejected": "\n\nHuman: q\n\nAssistant:  \n "},
    ]),
    "gptj_pairwise": ({}, R.GPTJ[0], [
        {"prompt": "Say hi.", "chosen": "", "rejected": "Hi!"},
        {"prompt": "Say bye.", "chosen": "Bye.", "rejected": "\t"},
    ]),
    "shp": ({"form": "pairs"}, R.shp_row("p1", R.C1, R.C2, 1), [
        R.shp_row("p2", R.E1, R.E2, 1, text_a=""),
        R.shp_row("p3", R.E1, R.E2, 0, text_b=" "),
    ]),
    "stack_exchange": ({}, R.STACK_EXCHANGE[0], [
        R.se_row(5, "<p>Why?</p>", [R.se_answer(51, "", 3), R.se_answer(52, "<p>Because.</p>", 1)]),
    ]),
    "ultrafeedback": ({}, R.ULTRAFEEDBACK[0], [
        R.uf_row("Say it.", [("It.", 9.0), ("", 7.0), ("Said.", 5.0), ("No.", 1.0)]),
    ]),
    "alpaca_farm": ({}, _alpaca("Name a fruit.", "An apple.", "A chair."), [
        _alpaca("Name a tree.", "", "An oak."),
    ]),
    "demo": ({}, _demo(0, ["yes", "no"]), [_demo(1, ["", "no"]), _demo(2, ["yes", "\n"])]),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("empty_first", [True, False], ids=["empty first", "empty last"])
def test_a_document_with_an_empty_response_is_dropped_and_counted(name, empty_first):
    options, good, empties = CASES[name]
    rows = [*empties, good] if empty_first else [good, *empties]
    conversion = get_source(name).convert(rows, "test", **options)
    assert conversion.dropped == Counter({DROP_EMPTY: len(empties)})
    assert len(conversion.docs) == 1
    (doc,) = conversion.docs
    assert all(response.strip() for response in doc["responses"])


def test_shp_multi_drops_the_post_with_an_empty_comment():
    rows = [R.shp_row("p9", R.E1, R.E2, 1, text_a=""), R.shp_row("p1", R.C1, R.C2, 1)]
    conversion = get_source("shp").convert(rows, "test", form="multi")
    assert [doc["id"] for doc in conversion.docs] == ["p1"]
    assert conversion.dropped == Counter({f"{DROP_EMPTY} (every row of the post)": 1})


def test_lm_eval_runs_a_task_whose_first_document_had_an_empty_response(tmp_path):
    """lm-eval 0.4's task set-up reads the first document's first choice
    (``choice[0].isspace()``): an empty one was an ``IndexError`` for the whole run."""
    from lm_eval.evaluator import simple_evaluate
    from lm_eval.models.dummy import DummyLM
    from lm_eval.tasks import TaskManager

    data = R.write_jsonl(tmp_path / "data" / "prefs.jsonl", [
        {"question": "First?", "good": "", "bad": "Bad."},
        *({"question": f"Question {i}?", "good": f"Good {i}.", "bad": f"Bad {i}."} for i in range(3)),
    ])
    user = tmp_path / "user_tasks"
    user.mkdir()
    (user / "empty_first.yaml").write_text(
        f"include: {tasks_dir() / '_fields_template_yaml'}\ntask: empty_first\ndataset_kwargs:\n"
        f"  data_files: {data}\n  prompt_field: question\n  chosen_field: good\n  rejected_field: bad\n"
    )
    dummy = DummyLM()
    dummy.tokenizer = None
    out = simple_evaluate(model=dummy, tasks=["empty_first"], log_samples=True,
                          task_manager=TaskManager(include_path=[str(user), str(tasks_dir())], include_defaults=False))
    assert [sample["doc"]["id"] for sample in out["samples"]["empty_first"]] == [f"test/{i}" for i in (1, 2, 3)]
