"""rankacc's errors under lm-eval's own command line (issue 20, items 6 and 7):
one line and exit code 2, no traceback (lmeval/cli_errors.py, installed by
the start-up hook on ``lm_eval._cli.harness``).

- In process, with a stand-in for lm-eval's ``HarnessCLI``: our errors become
  one line and their exit code; lm-eval's "Tasks not found" names the task
  file under ``--include_path`` that our reader refuses (file, line, tag);
  every other exception passes untouched.
- In subprocesses (``lm_eval`` itself): scored-form data with a NaN score on
  a tiny model, a task YAML with ``!!python/object/apply`` through
  ``--include_path`` and named in ``--tasks``, and an unknown task (lm-eval's
  traceback, exit 1, unchanged). The four processes start at once.
"""

from __future__ import annotations

import subprocess
from argparse import Namespace
from pathlib import Path

import pytest

from lm_eval_rankacc import tasks_dir
from lm_eval_rankacc.core.errors import NonFiniteLossError, TaskDataError
from lm_eval_rankacc.lmeval import cli_errors
from tests.helpers.commands import command

NAN_ROWS = '{"q": "Rank these.", "answers": ["first", "second", "third"], "scores": [1, NaN, 2]}\n'
NAN_LINE = "field 'scores[1]': expected a finite number, got nan"
TAG = "tag:yaml.org,2002:python/object/apply:os.mkdir"


def _scored_task(folder: Path, data: Path, name: str = "my_scored") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(f"include: {tasks_dir() / '_fields_template_yaml'}\ntask: {name}\ndataset_kwargs:\n"
                    f"  data_files: {data}\n  prompt_field: q\n  responses_field: answers\n  score_field: scores\n")
    return path


def _evil_task(folder: Path, marker: Path, name: str = "my_evil", file: str = "evil.yaml") -> Path:
    """A task file whose ``prompt_field`` (line 5) would create ``marker`` if a YAML reader ran its tag."""
    path = folder / file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"include: {tasks_dir() / '_fields_template_yaml'}\ntask: {name}\ndataset_kwargs:\n"
                    f"  data_files: data.jsonl\n  prompt_field: !!python/object/apply:os.mkdir [{str(marker)!r}]\n"
                    "  responses_field: answers\n  score_field: scores\n")
    return path


class FakeCLI:
    """lm-eval's ``HarnessCLI`` in miniature: ``execute(args)`` calls ``args.func(args)``."""

    def execute(self, args):
        return args.func(args)


@pytest.fixture
def cli():
    class CLI(FakeCLI):
        pass

    assert cli_errors.wrap_execute(CLI) and cli_errors.wrap_execute(CLI)  # idempotent
    assert CLI.execute.__wrapped__ is FakeCLI.execute
    return CLI()


def _raise(err):
    def func(args):
        raise err
    return func


def test_our_errors_are_one_line_and_their_exit_code(cli, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.execute(Namespace(func=_raise(TaskDataError("my_task: data.jsonl: line 3: field 'x': bad\nmore"))))
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "lm_eval: error: my_task: data.jsonl: line 3: field 'x': bad more\n"
    with pytest.raises(SystemExit) as exit_:
        cli.execute(Namespace(func=_raise(NonFiniteLossError("nan loss"))))
    assert exit_.value.code == 1
    assert cli.execute(Namespace(func=lambda args: "done")) == "done"


@pytest.mark.parametrize("err", [ValueError("Tasks not found: nothing_here"), KeyError("x"), RuntimeError("y")])
def test_other_exceptions_pass_untouched(cli, tmp_path, capsys, err):
    _scored_task(tmp_path, tmp_path / "data.jsonl", "nothing_here")  # found, and readable: not the cause
    with pytest.raises(type(err)) as raised:
        cli.execute(Namespace(func=_raise(err), include_path=str(tmp_path), tasks="nothing_here"))
    assert raised.value is err and capsys.readouterr().err == ""


@pytest.mark.parametrize("file", ["evil.yaml", "my_evil.yaml", "sub/other_name.yaml"])
def test_tasks_not_found_names_the_refused_file_and_its_tag(cli, tmp_path, capsys, file):
    marker = tmp_path / "ran"
    path = _evil_task(tmp_path / "tasks", marker, file=file)
    (tmp_path / "tasks" / "unrelated.yaml").write_text("task: other\nx: !!python/name:os.system\n")
    err = ValueError("Tasks not found: rankacc_demo, my_evil")
    with pytest.raises(SystemExit) as exit_:
        cli.execute(Namespace(func=_raise(err), include_path=str(tmp_path / "tasks"), tasks="my_evil"))
    assert exit_.value.code == 2 and not marker.exists()
    line = capsys.readouterr().err
    assert line.count("\n") == 1 and line.startswith("lm_eval: error: task 'my_evil' not found: lm-eval skipped")
    assert f"{path.resolve()}: line 5: tag {TAG!r} is not allowed in a task YAML file" in line


def test_a_tagged_file_named_in_tasks_is_named(cli, tmp_path, capsys):
    import yaml

    path = _evil_task(tmp_path, tmp_path / "ran")
    err = yaml.constructor.ConstructorError(None, None, f"could not determine a constructor for the tag {TAG!r}")
    with pytest.raises(SystemExit) as exit_:
        cli.execute(Namespace(func=_raise(err), include_path=None, tasks=f"rankacc_demo,{path}"))
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (f"lm_eval: error: {path.resolve()}: line 5: tag {TAG!r} is not allowed in a "
                                       "task YAML file (only !function; nothing in a task file is run)\n")
    with pytest.raises(yaml.YAMLError):  # a file our reader accepts: lm-eval's error stands
        good = _scored_task(tmp_path / "good", tmp_path / "data.jsonl")
        cli.execute(Namespace(func=_raise(err), include_path=None, tasks=str(good)))


# ------------------------------------------------------------------ through lm_eval itself
TIMEOUT_S = 300


@pytest.fixture(scope="module")
def lm_eval_runs(tiny_model_dir, offline_env, tmp_path_factory):
    """name -> (the finished process, the marker file the evil YAML would create)."""
    work = tmp_path_factory.mktemp("lm-eval-errors")
    lm_eval = command("lm_eval")
    data = work / "scored.jsonl"
    data.write_text('{"q": "Fine.", "answers": ["a", "bb"], "scores": [2, 1]}\n' + NAN_ROWS)
    _scored_task(work / "scored", data)
    evil = _evil_task(work / "evil", work / "ran")
    dummy = [lm_eval, "--model", "dummy", "--tasks"]
    cmds = {
        "nan": [lm_eval, "--model", "hf", "--model_args", f"pretrained={tiny_model_dir}", "--tasks", "my_scored",
                "--include_path", str(work / "scored")],
        "include": [*dummy, "my_evil", "--include_path", str(work / "evil")],
        "named": [*dummy, str(evil)],
        "unknown": [*dummy, "no_such_task_anywhere"],
    }
    procs = {name: subprocess.Popen(cmd, env=offline_env, cwd=work, stdin=subprocess.DEVNULL, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE) for name, cmd in cmds.items()}
    try:
        yield {name: (proc, *proc.communicate(timeout=TIMEOUT_S)) for name, proc in procs.items()}, work, evil
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.slow
def test_lm_eval_nan_score_is_one_line_exit_2(lm_eval_runs):
    runs, work, _ = lm_eval_runs
    proc, _, err = runs["nan"]
    assert proc.returncode == 2, err[-3000:]
    assert "Traceback" not in err
    assert err.splitlines()[-1] == f"lm_eval: error: my_scored: {work / 'scored.jsonl'}: line 2: {NAN_LINE}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["include", "named"])
def test_lm_eval_names_the_tagged_task_file(lm_eval_runs, name):
    runs, work, evil = lm_eval_runs
    proc, _, err = runs[name]
    assert proc.returncode == 2, err[-3000:]
    assert "Traceback" not in err and not (work / "ran").exists()
    last = err.splitlines()[-1]
    assert last.startswith("lm_eval: error: ") and f"{evil}: line 5: tag {TAG!r} is not allowed" in last
    assert ("task 'my_evil' not found" in last) == (name == "include")


@pytest.mark.slow
def test_lm_eval_keeps_its_own_errors(lm_eval_runs):
    proc, _, err = lm_eval_runs[0]["unknown"]
    assert proc.returncode == 1 and "Traceback" in err
    assert err.splitlines()[-1] == "ValueError: Tasks not found: no_such_task_anywhere"
