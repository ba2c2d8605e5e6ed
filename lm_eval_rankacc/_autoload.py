"""What the start-up hook calls once lm-eval imports one of its modules.

The hook itself is the standalone module ``lm_eval_rankacc_autoload`` (beside
the package, imported by ``lm_eval_rankacc_autoload.pth`` at interpreter
start; it imports only ``sys``). It waits for four lm-eval modules and, right
after one of them has run, imports this module and calls :func:`run` with the
name of the install function for it:

- lm-eval's task index (``lm_eval.tasks._index``): :func:`patch_task_index`
  wraps ``TaskIndex.build`` so that the package's task folder is scanned
  first (user ``--include_path`` folders still come later and may override);
- lm-eval's model package (``lm_eval.models``): :func:`register_models`
  registers the package's backends (``hf-prefix``) lazily, by name, beside
  lm-eval's;
- lm-eval's model API (``lm_eval.api.model``): :func:`install_token_counts`
  makes every tokenizing backend report the token count of each rankacc
  request (:func:`lm_eval_rankacc.lmeval.loglikelihood.install_token_counts`, the
  unit of R~);
- lm-eval's command line (``lm_eval._cli.harness``): :func:`install_cli_errors`
  makes a rankacc data error raised while lm-eval builds or runs a task one
  line and exit code 2, and names the file and tag of a task YAML that
  lm-eval skipped (:mod:`lm_eval_rankacc.lmeval.cli_errors`).

Each is an explicit install function of the package, called by the hook and
nowhere as a side effect of an import. This module (and with it ``inspect``,
``warnings``, ``pathlib`` and the package) is imported only then, so a Python
program that never imports lm-eval never imports it.

Guarded: if lm-eval's internals are not as expected it warns once and does
nothing; an install function never breaks lm-eval's own import.

Stands aside where lm-eval finds the package itself: pyproject.toml declares
the entry points ``lm_eval.models`` (``hf-prefix``, read by lm-eval since
its PR #4013) and ``lm_eval.tasks`` (the task folder, as lm-eval's PR #4015
proposes). Where lm-eval reads a group (:func:`lm_eval_discovers`), the
install function for it does nothing, so no task is listed twice and
``hf-prefix`` is registered once, by lm-eval.
"""

from __future__ import annotations

import inspect
import sys
import warnings
from pathlib import Path

#: lm-eval's entry-point groups that pyproject.toml declares
TASK_GROUP = "lm_eval.tasks"
MODEL_GROUP = "lm_eval.models"


def _strings(code) -> set[str]:  # noqa: ANN001 - a code object
    """Every string constant of ``code`` and of the code nested in it (functions, classes)."""
    out: set[str] = set()
    stack = [code]
    while stack:
        for const in stack.pop().co_consts:
            if isinstance(const, str):
                out.add(const)
            elif inspect.iscode(const):
                stack.append(const)
    return out


def _lm_eval_core(name: str) -> bool:
    """lm-eval's own machinery (``lm_eval``, ``lm_eval.api.registry``, ``lm_eval.tasks.manager``, ...),
    not its model backends (``lm_eval.models.vllm_causallms``) or task folders' code."""
    parts = name.split(".")
    return parts[0] == "lm_eval" and (len(parts) <= 2 or (len(parts) == 3 and parts[1] in ("api", "tasks", "_cli")))


_discovering: set[str] = set()


def lm_eval_discovers(group: str) -> bool:
    """Whether lm-eval itself reads the entry-point ``group``: one of its
    already imported core modules names the group in its code. A feature
    test, not a version test; the answer True is kept, False is asked again
    (a later import may bring the feature)."""
    if group in _discovering:
        return True
    for name, module in list(sys.modules.items()):
        loader = getattr(getattr(module, "__spec__", None), "loader", None)
        if not _lm_eval_core(name) or not hasattr(loader, "get_code"):
            continue
        try:
            code = loader.get_code(name)
        except (ImportError, OSError, SyntaxError, ValueError):
            continue
        if code is not None and group in _strings(code):
            _discovering.add(group)
            return True
    return False


def _same_path(a, b: Path) -> bool:
    try:
        return Path(a).resolve() == b
    except (OSError, TypeError):
        return False


def patch_task_index(module) -> bool:
    """Wrap ``module.TaskIndex.build`` to scan the package's tasks folder; False if not possible."""
    task_index = getattr(module, "TaskIndex", None)
    build = inspect.getattr_static(task_index, "build", None) if task_index else None
    func = getattr(build, "__func__", None)
    if not isinstance(build, staticmethod) or func is None:
        return _give_up("lm_eval.tasks._index.TaskIndex.build is not a staticmethod")
    params = list(inspect.signature(func).parameters)
    if not params or params[0] != "paths":
        return _give_up(f"TaskIndex.build has signature {params}, expected (paths, ...)")
    if getattr(func, "_rankacc_wrapped", False):
        return True

    from lm_eval_rankacc import tasks_dir

    ours = tasks_dir().resolve()

    def build_with_rankacc(paths, *args, **kwargs):
        paths = list(paths)
        if not lm_eval_discovers(TASK_GROUP) and not any(_same_path(p, ours) for p in paths):
            paths.insert(0, ours)
        return func(paths, *args, **kwargs)

    build_with_rankacc._rankacc_wrapped = True  # type: ignore[attr-defined]
    build_with_rankacc.__wrapped__ = func  # type: ignore[attr-defined]
    task_index.build = staticmethod(build_with_rankacc)
    return True


def register_models(module) -> bool:
    """Register the package's backends lazily in lm-eval's model registry
    (nothing where lm-eval registers them from their entry points itself)."""
    if lm_eval_discovers(MODEL_GROUP):
        return True
    try:
        from lm_eval.api.registry import model_registry
    except ImportError as err:
        return _give_up(f"lm_eval.api.registry: {err}")
    from lm_eval_rankacc.lmeval.models import MODELS

    for name, target in MODELS.items():
        if name not in model_registry:
            model_registry.register(name, target=target)
    return True


def install_token_counts(module) -> bool:
    """Make lm-eval's tokenizing backends report rankacc token counts and apply the window rule."""
    from lm_eval_rankacc.lmeval.loglikelihood import install_token_counts as install

    return install()


def install_wandb_samples(module) -> bool:
    """Let lm-eval's W&B logger build sample tables of rankacc tasks."""
    from lm_eval_rankacc.lmeval.wandb_samples import install_wandb_samples as install

    return install(module)


def install_cli_errors(module) -> bool:
    """Make lm-eval's command line print rankacc's errors as one line, exit code 2."""
    from lm_eval_rankacc.lmeval.cli_errors import wrap_execute

    cli = getattr(module, "HarnessCLI", None)
    if cli is None or not wrap_execute(cli):
        return _give_up("lm_eval._cli.harness.HarnessCLI.execute not found")
    return True


# the names the hook (lm_eval_rankacc_autoload.MODULES) calls run() with
INSTALL_FUNCTIONS = {
    "patch_task_index": patch_task_index,
    "register_models": register_models,
    "install_token_counts": install_token_counts,
    "install_wandb_samples": install_wandb_samples,
    "install_cli_errors": install_cli_errors,
}


def run(function: str, module) -> bool:
    """Call the install function named ``function`` for lm-eval's ``module``,
    which has just been imported; False (after one warning) if it fails."""
    install = INSTALL_FUNCTIONS.get(function)
    if install is None:  # the hook and this package come from different versions
        return _give_up(f"no install function {function!r}")
    try:
        return install(module)
    except Exception as err:  # never break lm-eval itself
        return _give_up(f"{type(err).__name__}: {err}")


_warned = False


def _give_up(reason: str) -> bool:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(
            f"lm_eval_rankacc: start-up hook disabled ({reason}); use "
            "--include_path \"$(python -m lm_eval_rankacc tasks-dir)\" instead",
            RuntimeWarning,
            stacklevel=2,
        )
    return False
