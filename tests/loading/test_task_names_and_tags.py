"""Task files and names our loader refuses (issue 20, item 7): a YAML tag that
would construct a Python object names the file, the line and the tag; a task
name with a path separator (lm-eval names its output files after it) is refused."""

from __future__ import annotations

import pytest

from lm_eval_rankacc import tasks_dir
from lm_eval_rankacc.core.errors import TaskDataError
from lm_eval_rankacc.loading.documents import documents
from lm_eval_rankacc.loading.tasks import check_task_name, task_kwargs
from tests.helpers import preference_rows as R


@pytest.mark.parametrize("value, tag", [
    ('!!python/object/apply:os.system ["echo owned"]', "tag:yaml.org,2002:python/object/apply:os.system"),
    ("!!python/name:os.system", "tag:yaml.org,2002:python/name:os.system"),
    ("!custom 3", "!custom"),
])
def test_a_python_tag_names_the_file_the_line_and_the_tag(tmp_path, value, tag):
    path = tmp_path / "evil.yaml"
    path.write_text(f"task: evil\ndataset_kwargs:\n  data_files: {value}\n")
    with pytest.raises(TaskDataError) as err:
        task_kwargs(str(path))
    message = str(err.value)
    assert message == (f"{path}: line 3: tag {tag!r} is not allowed in a task YAML file "
                       "(only !function; nothing in a task file is run)")


def test_function_tags_still_read_and_package_tasks_load():
    assert task_kwargs("rankacc_hh_rlhf_test")["source"] == "hh_rlhf"  # the package YAML use !function


@pytest.mark.parametrize("name", ["../../x", "a/b", "a\\b", "..", ".", "nul\0"])
def test_a_task_name_with_a_path_separator_is_refused(tmp_path, name):
    with pytest.raises(TaskDataError, match="a task name holds no"):
        check_task_name(name)
    data = R.write_jsonl(tmp_path / "prefs.jsonl", [{"q": "Q?", "good": "Yes.", "bad": "No."}])
    with pytest.raises(TaskDataError, match="a task name holds no"):
        documents(task=name, source="fields", data_files=str(data), prompt_field="q", chosen_field="good",
                  rejected_field="bad")


def test_an_empty_task_name_is_refused():
    with pytest.raises(TaskDataError, match="a task name holds no"):
        check_task_name("")


def test_a_yaml_task_named_with_separators_is_refused_for_training(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(f"include: {tasks_dir() / '_fields_template_yaml'}\ntask: ../../x\ndataset_kwargs: {{}}\n")
    with pytest.raises(TaskDataError, match="task name '../../x'"):
        task_kwargs(str(path))
