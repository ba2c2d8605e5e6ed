"""The start-up hook: plain lm-eval sees the tasks, other programs are untouched,
it can be switched off, and it backs off when lm-eval's internals change."""

import os
import subprocess
import sys
import types
import warnings
import zipfile
from pathlib import Path

import pytest

from lm_eval_rankacc import _autoload, tasks_dir

ROOT = Path(__file__).resolve().parents[1]


def run_py(code, **env):
    full_env = {**os.environ, **env}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


LIST_TASKS = (
    "import logging; logging.disable(logging.WARNING)\n"
    "from lm_eval.tasks import TaskManager\n"
    "tm = TaskManager({})\n"
    "print(sorted(t for t in tm.all_tasks if t.startswith('rankacc')))"
)


def test_other_programs_import_nothing():
    code = "import sys; print(sorted(m for m in sys.modules if m.split('.')[0] in ('lm_eval', 'torch', 'datasets', 'transformers')))"
    assert run_py(code) == "[]"


def test_task_manager_finds_tasks_and_switch_off():
    on = run_py(LIST_TASKS.format(""))
    assert "'rankacc'" in on and "'rankacc_demo'" in on and "'rankacc_hh_rlhf_test'" in on
    assert run_py(LIST_TASKS.format(""), LM_EVAL_RANKACC_AUTOLOAD="0") == "[]"
    # the documented alternative: an explicit include path, with the hook off
    explicit = run_py(LIST_TASKS.format(f"include_path={str(tasks_dir())!r}"), LM_EVAL_RANKACC_AUTOLOAD="0")
    assert explicit == on


def test_explicit_include_path_is_not_indexed_twice(caplog):
    out = subprocess.run(
        [sys.executable, "-c", LIST_TASKS.replace("logging.disable(logging.WARNING)", "pass").format(f"include_path={str(tasks_dir())!r}")],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "overrides existing task" not in out.stderr


def test_guard_warns_once_and_does_nothing(monkeypatch):
    monkeypatch.setattr(_autoload, "_warned", False)

    class TaskIndex:
        @staticmethod
        def build(roots):  # renamed parameter: internals changed
            return {}

    module = types.SimpleNamespace(TaskIndex=TaskIndex)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _autoload.patch_task_index(module) is False
        assert _autoload.patch_task_index(types.SimpleNamespace()) is False
    assert len(caught) == 1 and "start-up hook disabled" in str(caught[0].message)
    assert TaskIndex.build([]) == {}  # untouched


def test_patch_adds_tasks_dir_first_and_once():
    seen = []

    class TaskIndex:
        @staticmethod
        def build(paths, *, resolve_includes=True):
            seen.append(list(paths))
            return {}

    module = types.SimpleNamespace(TaskIndex=TaskIndex)
    assert _autoload.patch_task_index(module) and _autoload.patch_task_index(module)
    TaskIndex.build([Path("/lm_eval/tasks")])
    TaskIndex.build([tasks_dir()])
    assert seen == [[tasks_dir().resolve(), Path("/lm_eval/tasks")], [tasks_dir()]]


@pytest.mark.slow
def test_wheel_ships_tasks_and_hook(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )
    if out.returncode != 0 and "hatchling" in out.stderr:
        pytest.skip(f"cannot fetch the build backend: {out.stderr.strip().splitlines()[-1]}")
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "lm_eval_rankacc_autoload.pth" in names
    assert "lm_eval_rankacc/tasks/rankacc.yaml" in names
    assert "lm_eval_rankacc/tasks/demo/demo_pairs.jsonl" in names
    shipped = {n.split("lm_eval_rankacc/tasks/")[1] for n in names if n.startswith("lm_eval_rankacc/tasks/")}
    in_repo = {p.relative_to(tasks_dir()).as_posix() for p in tasks_dir().rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert shipped == in_repo


def test_no_submodule_shadows_tasks_dir():
    """Regression: a module ``lm_eval_rankacc/tasks_dir.py`` replaced the function
    ``lm_eval_rankacc.tasks_dir`` once imported, and ``get_source`` then failed."""
    code = (
        "import importlib, pkgutil, lm_eval_rankacc\n"
        "for info in pkgutil.walk_packages(lm_eval_rankacc.__path__, 'lm_eval_rankacc.'):\n"
        "    if not info.name.endswith('__main__'):\n"
        "        importlib.import_module(info.name)\n"
        "from lm_eval_rankacc.sources import get_source\n"
        "from lm_eval_rankacc import analysis\n"
        "import inspect\n"
        "print(callable(lm_eval_rankacc.tasks_dir), (lm_eval_rankacc.tasks_dir() / 'rankacc.yaml').is_file(),\n"
        "      get_source('hh_rlhf').__name__,\n"
        "      all(inspect.isfunction(getattr(analysis, f)) for f in ('idealized', 'flips', 'hardness', 'leaderboard')))"
    )
    assert run_py(code) == "True True lm_eval_rankacc.sources.hh_rlhf True"
    out = subprocess.run([sys.executable, "-m", "lm_eval_rankacc", "tasks-dir"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and Path(out.stdout.strip()) == tasks_dir(), out.stderr


def test_importing_the_package_patches_nothing_in_lm_eval():
    """Importing our modules never patches lm-eval; the hook's install functions do."""
    code = (
        "import os; os.environ['LM_EVAL_RANKACC_AUTOLOAD'] = '0'\n"
        "from lm_eval.api.model import TemplateLM\n"
        "before = TemplateLM.loglikelihood\n"
        "import lm_eval_rankacc.harness, lm_eval_rankacc.metrics, lm_eval_rankacc.training.data\n"
        "unchanged = TemplateLM.loglikelihood is before\n"
        "from lm_eval_rankacc.loglikelihood import install_token_counts\n"
        "print(unchanged, install_token_counts(), TemplateLM.loglikelihood is before)"
    )
    assert run_py(code, LM_EVAL_RANKACC_AUTOLOAD="0") == "True True False"


def test_hook_installs_token_counts_when_lm_eval_loads():
    code = (
        "from lm_eval.api.model import TemplateLM\n"
        "print(getattr(TemplateLM.loglikelihood, '_rankacc_wrapped', False))"
    )
    assert run_py(code) == "True"
    assert run_py(code, LM_EVAL_RANKACC_AUTOLOAD="0") == "False"
