"""lm-eval's command line on rankacc's errors: one line and exit code 2, no traceback.

The start-up hook (:func:`lm_eval_rankacc._autoload.install_cli_errors`)
calls :func:`wrap_execute` once lm-eval's command-line module
(``lm_eval._cli.harness``) is imported. It wraps ``HarnessCLI.execute``, the
one method that ``lm_eval``, ``lm-eval``, ``python -m lm_eval`` and
``accelerate launch -m lm_eval`` call with the parsed options, so that:

- a :class:`~lm_eval_rankacc.core.errors.RankAccError` raised while lm-eval
  builds or runs a rankacc task (a data row with a NaN score, a missing data
  file, a bad task option) prints ``lm_eval: error: <message>`` on stderr
  and exits with its exit code (2), as ``rankacc`` does;
- lm-eval's ``ValueError: Tasks not found: NAME`` becomes that one line too
  when a YAML file under ``--include_path`` defines task NAME (or is named
  NAME.yaml) and the package's task reader
  (:func:`lm_eval_rankacc.loading.tasks.read_task_config`) refuses it: the
  line names the file, the line and the tag (``!!python/object/apply`` ...),
  or the YAML error or missing include. lm-eval's task index skips such a
  file silently (it logs the reason at DEBUG level only), so the task is
  merely "not found". Looked for only after lm-eval failed: nothing is read
  on a run that works;
- a YAML error lm-eval raises reading a task file named in ``--tasks``
  (``--tasks my_task.yaml``) becomes the package reader's one line about it.

Every other exception passes untouched: its traceback and exit code are
lm-eval's. Only the command line is changed; a Python program calling
lm-eval (``simple_evaluate``) gets the exceptions as before.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lm_eval_rankacc.core.errors import RankAccError, TaskDataError

#: The start of each line printed for an error.
PREFIX = "lm_eval: error: "
#: lm-eval 0.4's message for task names that its index does not hold.
NOT_FOUND = re.compile(r"Tasks not found: (?P<names>.+)")


def one_line(message: str) -> str:
    """``message`` on one line (line breaks turned into spaces)."""
    return " ".join(message.splitlines()).strip()


def _roots(include_path: Any) -> list[Path]:
    """The folders of ``--include_path`` (a path, or a list of paths from a config file)."""
    if not include_path:
        return []
    paths = include_path if isinstance(include_path, (list, tuple)) else [include_path]
    return [Path(str(p)) for p in paths if Path(str(p)).is_dir()]


def _yaml_files(roots: Iterable[Path]) -> list[Path]:
    """The ``*.yaml`` files under ``roots``, as lm-eval's task index walks them."""
    return [p for root in roots for p in sorted(root.glob("**/*.yaml"), key=lambda p: p.as_posix())]


def _defined_task(path: Path, names: set[str]) -> str | None:
    """The one of ``names`` that the task file ``path`` defines (its ``task:``,
    read with every tag as null, so nothing is run), or is named after; else None."""
    import yaml

    if path.stem in names:
        return path.stem
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not any(name in text for name in names):  # cheap: most files name none of them
        return None

    class _Inert(yaml.SafeLoader):
        pass

    _Inert.add_multi_constructor("", lambda loader, suffix, node: None)
    try:
        data = yaml.load(text, Loader=_Inert)
    except yaml.YAMLError:
        return None
    task = data.get("task") if isinstance(data, dict) else None
    return task if isinstance(task, str) and task in names else None


def skipped_task_file(err: BaseException, include_path: Any) -> str | None:
    """For lm-eval's "Tasks not found" error ``err``: one line naming the
    YAML file under ``include_path`` that defines a missing task and that the
    package's task reader refuses (its reason: the file, line and tag); None
    when ``err`` is another error or no such file is found."""
    from lm_eval_rankacc.loading.tasks import read_task_config

    found = NOT_FOUND.fullmatch(str(err).strip()) if isinstance(err, ValueError) else None
    if found is None:
        return None
    names = {name.strip() for name in found["names"].split(",") if name.strip()}
    for path in _yaml_files(_roots(include_path)):
        name = _defined_task(path, names)
        if name is None:
            continue
        try:
            read_task_config(path)
        except TaskDataError as refused:
            return (f"task {name!r} not found: lm-eval skipped its file because it cannot be read as a task: "
                    f"{one_line(str(refused))}")
    return None


def named_task_file(err: BaseException, tasks: Any) -> str | None:
    """For a YAML error ``err`` of lm-eval reading a file named in ``--tasks``:
    the package reader's one line about the first such file it refuses; else None."""
    import glob

    import yaml

    from lm_eval_rankacc.loading.tasks import read_task_config

    if not isinstance(err, yaml.YAMLError) or not tasks:
        return None
    entries = [t for task in (tasks if isinstance(tasks, (list, tuple)) else [tasks]) for t in str(task).split(",")]
    for entry in entries:
        if not entry.strip().endswith((".yaml", ".yml")):
            continue
        for path in sorted(glob.glob(entry.strip())):
            try:
                read_task_config(path)
            except TaskDataError as refused:
                return one_line(str(refused))
    return None


def _explain(err: BaseException, args: Any) -> str | None:
    """The one line for lm-eval's own error ``err`` about a task file (see the module docstring), or None."""
    return (skipped_task_file(err, getattr(args, "include_path", None))
            or named_task_file(err, getattr(args, "tasks", None)))


def _fail(message: str, code: int) -> None:
    sys.stderr.write(PREFIX + one_line(message) + "\n")
    sys.stderr.flush()
    raise SystemExit(code)


def wrap_execute(cli: type) -> bool:
    """Wrap ``cli.execute`` (lm-eval's ``HarnessCLI``) as the module
    docstring says; idempotent. False when ``cli`` has no ``execute``."""
    execute = getattr(cli, "execute", None)
    if not callable(execute):
        return False
    if getattr(execute, "_rankacc_wrapped", False):
        return True

    @functools.wraps(execute)
    def execute_with_one_line_errors(self, args, *rest, **kwargs):  # noqa: ANN001, ANN202 - lm-eval's signature
        try:
            return execute(self, args, *rest, **kwargs)
        except RankAccError as err:
            _fail(str(err), err.exit_code)
        except Exception as err:
            message = _explain(err, args)
            if message is None:
                raise
            _fail(message, TaskDataError.exit_code)

    execute_with_one_line_errors._rankacc_wrapped = True  # type: ignore[attr-defined]
    cli.execute = execute_with_one_line_errors
    return True
