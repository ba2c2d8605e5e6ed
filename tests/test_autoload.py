"""The start-up hook: plain lm-eval sees the tasks, other programs are untouched
(the hook imports only its own tiny module until lm-eval loads, nothing when
switched off), it can be switched off, a shadowing copy of the package prints
nothing at start, and it backs off when lm-eval's internals change."""

import os
import subprocess
import sys
import types
import warnings
import zipfile
from pathlib import Path

import pytest

from lm_eval_rankacc import _autoload, tasks_dir
from tests.helpers import paths

ROOT = paths.REPO


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


# Start Python as ``python`` does (``site.main()``, sys.path[0] set aside), optionally
# skipping our .pth file: the fair baseline, everything else processed alike
# (scripts/bench_startup.py measures the same way).
START = (
    "import sys\n"
    "_first = sys.path.pop(0)\n"
    "import site\n"
    "if {skip}:\n"
    "    _add = site.addpackage\n"
    "    site.addpackage = lambda d, n, k: k if n == 'lm_eval_rankacc_autoload.pth' else _add(d, n, k)\n"
    "site.main()\n"
    "print(' '.join(sys.modules))\n"
)


def modules_at_start(cwd: Path, skip_hook: bool, **env) -> set[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "LM_EVAL_RANKACC_AUTOLOAD"}
    out = subprocess.run([sys.executable, "-S", "-c", START.format(skip=skip_hook)], capture_output=True,
                         text=True, env={**full_env, **env}, timeout=60, cwd=cwd)
    assert out.returncode == 0 and not out.stderr, out.stderr
    return set(out.stdout.split())


@pytest.mark.parametrize("switch", [None, "0", " Off ", "false", "no"])
def test_hook_imports_only_its_own_module_until_lm_eval_loads(switch, tmp_path):
    """Issue 11, item 14: at start the hook imports its tiny standalone module
    and nothing else (not the package, inspect, warnings, pathlib); switched
    off it imports nothing at all."""
    env = {} if switch is None else {"LM_EVAL_RANKACC_AUTOLOAD": switch}
    added = modules_at_start(tmp_path, False, **env) - modules_at_start(tmp_path, True, **env)
    assert added == ({"lm_eval_rankacc_autoload"} if switch is None else set())


def write_files(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


FAKE_LM_EVAL = {"lm_eval/__init__.py": "", "lm_eval/tasks/__init__.py": "", "lm_eval/tasks/_index.py": ""}


@pytest.mark.parametrize("shadow", [
    {"lm_eval_rankacc/__init__.py": ""},  # an old checkout: no _autoload
    {"lm_eval_rankacc/__init__.py": "raise ImportError('half-installed')"},  # a broken one
    {"lm_eval_rankacc/__init__.py": "", "lm_eval_rankacc/_autoload.py": "def (:"},
    {"lm_eval_rankacc_autoload.py": "raise RuntimeError('broken hook module')"},
])
def test_shadowing_copy_prints_nothing_at_start(tmp_path, shadow):
    """Issue 11, item 14: a shadowing copy on PYTHONPATH never prints an error
    at every start; only a process that imports lm-eval hears of it, once."""
    write_files(tmp_path, {**shadow, **FAKE_LM_EVAL})
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("LM_EVAL_RANKACC_AUTOLOAD", None)
    start = subprocess.run([sys.executable, "-c", "pass"], capture_output=True, text=True, env=env, timeout=60,
                           cwd=tmp_path)
    assert start.returncode == 0 and start.stderr == ""
    lm_eval = subprocess.run([sys.executable, "-c", "import lm_eval.tasks._index; import lm_eval.tasks._index"],
                             capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert lm_eval.returncode == 0, lm_eval.stderr
    if "lm_eval_rankacc_autoload.py" not in shadow:
        assert lm_eval.stderr.count("RuntimeWarning") == 1, lm_eval.stderr
        assert "start-up hook disabled: cannot import lm_eval_rankacc._autoload" in lm_eval.stderr
    else:  # the hook itself is broken: it never loaded (docs/tasks.md says how to see why)
        assert lm_eval.stderr == ""


def test_hook_calls_the_install_function_right_after_the_module_runs(tmp_path):
    """With a stand-in for lm-eval: the task index's build gets the package's
    task folder first, and the finder leaves sys.meta_path once all are seen."""
    write_files(tmp_path, {
        **FAKE_LM_EVAL,
        "lm_eval/tasks/_index.py": (
            "class TaskIndex:\n"
            "    @staticmethod\n"
            "    def build(paths):\n"
            "        return [str(p) for p in paths]\n"
        ),
    })
    code = (
        "import sys, lm_eval.tasks, lm_eval_rankacc_autoload as hook\n"
        "before = sorted(m for m in sys.modules if m.startswith('lm_eval_rankacc') or m == 'inspect')\n"
        "from lm_eval.tasks._index import TaskIndex\n"
        "print(before, TaskIndex.build(['x'])[0], sorted(hook._pending), hook._finder in sys.meta_path)\n"
    )
    out = run_py(code, PYTHONPATH=str(tmp_path))
    assert out == f"['lm_eval_rankacc_autoload'] {tasks_dir().resolve()} ['lm_eval._cli.harness', 'lm_eval.api.model', 'lm_eval.loggers.wandb_logger', 'lm_eval.models'] True"


def test_run_never_breaks_lm_eval(monkeypatch):
    monkeypatch.setattr(_autoload, "_warned", False)

    def broken(module):
        raise KeyError("internals")

    monkeypatch.setitem(_autoload.INSTALL_FUNCTIONS, "register_models", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _autoload.run("register_models", None) is False
        assert _autoload.run("from_a_newer_hook", None) is False
    assert len(caught) == 1 and "KeyError" in str(caught[0].message)


def test_installed_hook_is_this_checkouts():
    """The subprocess tests run the installed hook: it must be this checkout's
    (after changing the .pth file, reinstall: pip install -e .)."""
    import importlib.util
    import site

    module = importlib.util.find_spec("lm_eval_rankacc_autoload")  # found, not imported (it installs a finder)
    assert module is not None, "the start-up hook's module is not installed: pip install -e ."
    assert Path(module.origin).read_text() == (ROOT / "lm_eval_rankacc_autoload.py").read_text()
    dirs = [*site.getsitepackages(), site.getusersitepackages()]
    installed = [Path(d) / "lm_eval_rankacc_autoload.pth" for d in dirs if (Path(d) / "lm_eval_rankacc_autoload.pth").is_file()]
    if not installed:
        pytest.skip("the package is not installed in this interpreter's site-packages")
    assert installed[0].read_text() == (ROOT / "lm_eval_rankacc_autoload.pth").read_text()


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
    assert "lm_eval_rankacc_autoload.py" in names  # the hook's standalone module, top level
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
        "import lm_eval_rankacc.loading.documents, lm_eval_rankacc.lmeval.metrics, lm_eval_rankacc.training.splits\n"
        "unchanged = TemplateLM.loglikelihood is before\n"
        "from lm_eval_rankacc.lmeval.loglikelihood import install_token_counts\n"
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


# ------------------------------------------------------------------ entry points (issue 13, item 5)
def test_entry_points_are_declared():
    """pyproject.toml declares lm-eval's plugin groups: hf-prefix (lm_eval.models)
    and the task folder (lm_eval.tasks), which resolves in this checkout too."""
    from importlib.metadata import entry_points

    from lm_eval_rankacc.lmeval.models import MODELS

    models = {ep.name: ep.value for ep in entry_points(group=_autoload.MODEL_GROUP)}
    assert models.get("hf-prefix") == MODELS["hf-prefix"], "pip install -e . after changing pyproject.toml"
    (task_ep,) = [ep for ep in entry_points(group=_autoload.TASK_GROUP) if ep.name == "rankacc"]
    folder = task_ep.load()()
    assert folder == tasks_dir() and (folder / "rankacc.yaml").is_file()


# A stand-in for an lm-eval that discovers tasks and models by entry point
# itself (its PRs #4015 and #4013), through importlib.metadata.
DISCOVERING_LM_EVAL = {
    **FAKE_LM_EVAL,
    "lm_eval/tasks/_index.py": (
        "from importlib.metadata import entry_points\n"
        "from pathlib import Path\n"
        "def plugin_folders():\n"
        "    found = []\n"
        "    for ep in entry_points(group='lm_eval.tasks'):\n"
        "        target = ep.load()\n"
        "        found.append(Path(target() if callable(target) else target))\n"
        "    return found\n"
        "class TaskIndex:\n"
        "    @staticmethod\n"
        "    def build(paths):\n"
        "        return [str(p) for p in [*plugin_folders(), *paths]]\n"
    ),
    "lm_eval/api/__init__.py": "",
    "lm_eval/api/registry.py": (
        "from importlib.metadata import entry_points\n"
        "class Registry(dict):\n"
        "    def register(self, name, target=None):\n"
        "        if name in self:\n"
        "            raise ValueError(f'{name} registered twice')\n"
        "        self[name] = target\n"
        "model_registry = Registry()\n"
        "def load_plugins(group, registry):\n"
        "    for ep in entry_points(group=group):\n"
        "        registry.register(ep.name, ep.value)\n"
    ),
    "lm_eval/models/__init__.py": (
        "from lm_eval.api.registry import load_plugins, model_registry\n"
        "load_plugins('lm_eval.models', model_registry)\n"
    ),
}

LIST_INDEX_AND_MODELS = (
    "from lm_eval.tasks._index import TaskIndex\n"
    "import lm_eval.models\n"
    "from lm_eval.api.registry import model_registry\n"
    "print(TaskIndex.build(['x']))\n"
    "print(dict(model_registry))\n"
)


def test_hook_stands_aside_when_lm_eval_discovers_entry_points(tmp_path):
    """With an lm-eval that reads the entry points itself, the hook adds
    nothing: the task folder is listed once and hf-prefix registered once,
    both by lm-eval (before the entry points, both came twice)."""
    write_files(tmp_path, DISCOVERING_LM_EVAL)
    out = run_py(LIST_INDEX_AND_MODELS, PYTHONPATH=str(tmp_path))
    folders, models = out.splitlines()
    assert folders == str([str(tasks_dir()), "x"])
    assert models == str({"hf-prefix": "lm_eval_rankacc.lmeval.models.prefix:HFPrefixLM"})


def test_hook_adds_tasks_and_models_where_lm_eval_does_not_discover(tmp_path):
    """The same stand-in without entry-point discovery (lm-eval 0.4.x): the
    hook puts the task folder first, once, and registers hf-prefix, once."""
    files = dict(DISCOVERING_LM_EVAL)
    files["lm_eval/tasks/_index.py"] = (
        "class TaskIndex:\n"
        "    @staticmethod\n"
        "    def build(paths):\n"
        "        return [str(p) for p in paths]\n"
    )
    files["lm_eval/models/__init__.py"] = "import lm_eval.api.registry\n"
    files["lm_eval/api/registry.py"] = files["lm_eval/api/registry.py"].split("def load_plugins")[0]
    write_files(tmp_path, files)
    folders, models = run_py(LIST_INDEX_AND_MODELS, PYTHONPATH=str(tmp_path)).splitlines()
    assert folders == str([str(tasks_dir().resolve()), "x"])
    assert models == str({"hf-prefix": "lm_eval_rankacc.lmeval.models.prefix:HFPrefixLM"})


def test_real_lm_eval_does_not_discover_yet():
    """lm-eval 0.4.13 reads neither group: the hook does the work (the feature
    test finds no false positive in lm-eval's own modules)."""
    code = (
        "import lm_eval.tasks, lm_eval.models\n"
        "from lm_eval_rankacc import _autoload as a\n"
        "print(a.lm_eval_discovers(a.TASK_GROUP), a.lm_eval_discovers(a.MODEL_GROUP))"
    )
    assert run_py(code) == "False False"
