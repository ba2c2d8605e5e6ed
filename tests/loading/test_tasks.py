"""The task lookup (loading/tasks.py): the package's tasks and their options,
a task YAML read with its ``include:`` files as lm-eval reads them, and the
defaults of YAML-only tasks."""

from __future__ import annotations

import pytest

from lm_eval_rankacc import tasks_dir
from lm_eval_rankacc.core.errors import TaskDataError
from lm_eval_rankacc.loading import tasks


def test_package_tasks_and_their_options():
    found = tasks.package_tasks()
    assert found["rankacc_hh_rlhf_train"] == {"source": "hh_rlhf", "split": "train"}
    assert found["rankacc_shp_multi_test"] == {"source": "shp", "split": "test", "form": "multi"}
    assert all(name.startswith("rankacc_") for name in found)
    assert tasks.task_kwargs("rankacc_demo") == {"source": "demo", "split": "demo", "task": "rankacc_demo"}
    with pytest.raises(TaskDataError, match="unknown task 'rankacc_nope': name a package task"):
        tasks.task_kwargs("rankacc_nope")


def test_includes_are_read_as_lm_eval_reads_them(tmp_path):
    """Relative to the file (or absolute), included keys first, the file's own keys winning, lists too."""
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "_a_yaml").write_text("output_type: multiple_choice\ndataset_kwargs:\n  split: dev\n"
                                               "task_list: [x]\nnum_fewshot: 0\n")
    (tmp_path / "_b_yaml").write_text("num_fewshot: 3\n")
    mine = tmp_path / "mine.yaml"
    mine.write_text(f"include: [base/_a_yaml, {tmp_path / '_b_yaml'}]\ntask: mine\ndataset_kwargs:\n"
                    "  prompt_field: q\n")
    config = tasks.read_task_config(mine)
    assert config == {"output_type": "multiple_choice", "num_fewshot": 3, "task": "mine",
                      "dataset_kwargs": {"prompt_field": "q"}}  # a mapping is replaced whole, as in lm-eval
    # the package's own tasks: the template's keys come in, the task's win
    hh = tasks.read_task_config(tasks_dir() / "hh_rlhf" / "rankacc_hh_rlhf_train.yaml")
    assert hh["test_split"] == "test" and hh["dataset_kwargs"] == {"source": "hh_rlhf", "split": "train"}
    assert hh["custom_dataset"] is None  # !function tags import nothing


def test_a_missing_or_circular_include_names_the_file(tmp_path):
    lost = tmp_path / "lost.yaml"
    lost.write_text("include: nowhere_yaml\ntask: lost\n")
    with pytest.raises(TaskDataError, match=r"lost\.yaml: include nowhere_yaml: no such file"):
        tasks.read_task_config(lost)
    (tmp_path / "a.yaml").write_text("include: b.yaml\n")
    (tmp_path / "b.yaml").write_text("include: a.yaml\n")
    with pytest.raises(TaskDataError, match=r"a\.yaml: includes itself \(a\.yaml -> b\.yaml -> a\.yaml\)"):
        tasks.read_task_config(tmp_path / "a.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("task: [unclosed\n")
    with pytest.raises(TaskDataError, match=r"broken\.yaml: not a readable task YAML file"):
        tasks.read_task_config(broken)


def test_a_yaml_only_task_defaults_to_the_fields_source_and_the_test_split(tmp_path):
    path = tmp_path / "my_prefs.yaml"
    path.write_text(f"include: {tasks_dir() / '_fields_template_yaml'}\ntask: my_prefs\n"
                    "dataset_kwargs:\n  prompt_field: q\n")
    assert tasks.task_kwargs(str(path)) == {"prompt_field": "q", "source": tasks.FIELDS_SOURCE,
                                            "task": "my_prefs", "split": tasks.DEFAULT_SPLIT}
    named = tmp_path / "named.yml"
    named.write_text("dataset_kwargs:\n  source: demo\n  split: demo\n")
    assert tasks.task_kwargs(str(named)) == {"source": "demo", "split": "demo", "task": "named"}
