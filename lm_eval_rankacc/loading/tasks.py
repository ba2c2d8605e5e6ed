"""The rankacc task YAML files: the package's tasks, and a task's loader
options (its ``dataset_kwargs``) with the defaults of YAML-only tasks.

The one place that reads task YAML outside lm-eval (``rankacc sft`` and
``rankacc dpo`` name a task to train on). A file's ``include:`` is read as
lm-eval reads it: a path relative to the file (or absolute), the included
keys first and the file's own keys winning, one ``include`` or a list.
``!function`` tags are read as None (nothing is imported); any other tag
(``!!python/object/apply:...`` among them) is refused, naming the file, the
line and the tag. A task name holds no path separator (:func:`check_task_name`):
lm-eval puts it into the names of the files it writes.

A YAML-only task (one built on ``tasks/_fields_template_yaml``,
docs/new_task_guide.md) may leave out the source and the split: they are
:data:`FIELDS_SOURCE` and :data:`DEFAULT_SPLIT`, in lm-eval
(:func:`lm_eval_rankacc.lmeval.dataset.load_fields_docs`) and in training alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lm_eval_rankacc import tasks_dir
from lm_eval_rankacc.core.errors import TaskDataError

#: The source of a YAML-only task whose ``dataset_kwargs`` name none: the field mapping
#: (:mod:`lm_eval_rankacc.sources.fields`).
FIELDS_SOURCE = "fields"
#: The split a task reads when its ``dataset_kwargs`` name none.
DEFAULT_SPLIT = "test"
#: Suffixes of a task file named by its path.
YAML_SUFFIXES = (".yaml", ".yml")


def check_task_name(name: str) -> str:
    """``name`` when it can be a task name: a non-empty string without a path
    separator or NUL, not ``.`` or ``..``; else TaskDataError."""
    if not isinstance(name, str) or not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise TaskDataError(f"task name {name!r}: a task name holds no '/', '\\' or NUL and is not '.' or '..' "
                            "(lm-eval writes files named after it)")
    return name


def _read_yaml(path: Path) -> dict[str, Any]:
    """One YAML file's mapping ({} for anything else), ``!function`` tags as None."""
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    def refuse(loader, suffix, node):  # noqa: ANN001 - yaml's constructor signature
        line = node.start_mark.line + 1
        raise TaskDataError(f"{path}: line {line}: tag {node.tag!r} is not allowed in a task YAML file "
                            "(only !function; nothing in a task file is run)")

    _Loader.add_constructor("!function", lambda loader, node: None)
    _Loader.add_multi_constructor("!", refuse)
    _Loader.add_multi_constructor("tag:yaml.org,2002:python/", refuse)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        reason = " ".join(str(err).split())  # one line
        raise TaskDataError(f"{path}: not a readable task YAML file ({reason})") from None
    return data if isinstance(data, dict) else {}


def read_task_config(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A task file's configuration with its ``include:`` files read in (see
    the module docstring); a missing or circular include names the file."""
    path = Path(path).resolve()
    if path in _chain:
        cycle = " -> ".join(p.name for p in (*_chain[_chain.index(path):], path))
        raise TaskDataError(f"{path}: includes itself ({cycle})")
    config = _read_yaml(path)
    includes = config.pop("include", None)
    if includes is None:
        return config
    merged: dict[str, Any] = {}
    for include in includes if isinstance(includes, list) else [includes]:
        target = Path(str(include))
        target = target if target.is_absolute() else path.parent / target
        if not target.is_file():
            raise TaskDataError(f"{path}: include {include}: no such file")
        included = read_task_config(target, (*_chain, path))
        included.pop("task_list", None)  # lm-eval: a task_list names the included file's own tasks
        merged.update(included)
    merged.update(config)  # the file's own keys win
    return merged


def package_tasks() -> dict[str, dict[str, Any]]:
    """{task name: its dataset_kwargs} for the package's ``rankacc_*`` tasks."""
    out = {}
    for path in sorted(tasks_dir().rglob("rankacc_*.yaml")):
        config = read_task_config(path)
        kwargs = config.get("dataset_kwargs")
        if isinstance(config.get("task"), str) and isinstance(kwargs, dict) and "source" in kwargs:
            out[config["task"]] = dict(kwargs)
    return out


def task_kwargs(task: str) -> dict[str, Any]:
    """The loader options (:func:`lm_eval_rankacc.loading.documents.documents`)
    of a task: a package task name, or the path of a task YAML (e.g. one built
    on ``_fields_template_yaml``: source :data:`FIELDS_SOURCE` unless it names
    one); ``task`` and ``split`` (default :data:`DEFAULT_SPLIT`) always set."""
    tasks = package_tasks()
    if task in tasks:
        kwargs = dict(tasks[task])
    elif task.endswith(YAML_SUFFIXES) and Path(task).is_file():
        config = read_task_config(task)
        kwargs = dict(config.get("dataset_kwargs") or {})
        kwargs.setdefault("source", FIELDS_SOURCE)
        kwargs.setdefault("task", config.get("task") or Path(task).stem)
    else:
        raise TaskDataError(
            f"unknown task {task!r}: name a package task ({', '.join(tasks)}) or a task YAML file"
        )
    kwargs.setdefault("task", task)
    kwargs.setdefault("split", DEFAULT_SPLIT)
    check_task_name(kwargs["task"])
    return kwargs


def sibling_test_task(task: str) -> str | None:
    """The package task reading the same source and options from split ``test``
    (the paper validates on half of the test split, App. D.1), or None."""
    tasks = package_tasks()
    if task not in tasks or tasks[task].get("split") == "test":
        return None

    def options(kwargs: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in kwargs.items() if k not in ("task", "split")}

    mine = options(tasks[task])
    for name, kwargs in tasks.items():
        if kwargs.get("split") == "test" and options(kwargs) == mine:
            return name
    return None
