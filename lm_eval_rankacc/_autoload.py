"""Start-up hook that lets plain ``lm_eval --tasks 'rankacc_*'`` find the package's tasks.

lm-eval 0.4.13 has no plugin entry point for external tasks. The package
installs ``lm_eval_rankacc_autoload.pth``, which imports this module at
interpreter start. All it does then is put a finder on ``sys.meta_path`` that
answers for two module names only:

- lm-eval's task index (``lm_eval.tasks._index``): once imported, the hook
  wraps ``TaskIndex.build`` so that the package's task folder is scanned
  first (user ``--include_path`` folders still come later and may override);
- lm-eval's model package (``lm_eval.models``): once imported, the package's
  backends (``hf-prefix``) are registered lazily, by name, beside lm-eval's;
- lm-eval's model API (``lm_eval.api.model``): once imported, every
  tokenizing backend reports the token count of each rankacc request
  (:func:`lm_eval_rankacc.loglikelihood.install_token_counts`, the unit of R~).

Each is an explicit install function of the package, called here and nowhere
as a side effect of an import. The finder removes itself when all have run. Any other Python program never
imports these modules and is unaffected.

Guarded: if lm-eval's internals are not as expected it warns once and does
nothing. ``LM_EVAL_RANKACC_AUTOLOAD=0`` switches it off.
"""

from __future__ import annotations

import importlib.abc
import inspect
import os
import sys
import warnings
from pathlib import Path

ENV = "LM_EVAL_RANKACC_AUTOLOAD"
INDEX_MODULE = "lm_eval.tasks._index"
MODELS_MODULE = "lm_eval.models"
MODEL_API_MODULE = "lm_eval.api.model"


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


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
        if not any(_same_path(p, ours) for p in paths):
            paths.insert(0, ours)
        return func(paths, *args, **kwargs)

    build_with_rankacc._rankacc_wrapped = True  # type: ignore[attr-defined]
    build_with_rankacc.__wrapped__ = func  # type: ignore[attr-defined]
    task_index.build = staticmethod(build_with_rankacc)
    return True


def register_models(module) -> bool:
    """Register the package's backends lazily in lm-eval's model registry."""
    try:
        from lm_eval.api.registry import model_registry
    except ImportError as err:
        return _give_up(f"lm_eval.api.registry: {err}")
    from lm_eval_rankacc.models import MODELS

    for name, target in MODELS.items():
        if name not in model_registry:
            model_registry.register(name, target=target)
    return True


def install_token_counts(module) -> bool:
    """Make lm-eval's tokenizing backends report rankacc token counts."""
    from lm_eval_rankacc.loglikelihood import install_token_counts as install

    return install()


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


class _LmEvalFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: it lets the normal finders locate the lm-eval
    module, then wraps its loader so the module is patched right after it runs."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _pending:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        exec_module = getattr(loader, "exec_module", None)
        if exec_module is None:
            _give_up("lm-eval's task index has no standard loader")
            return None

        patch = _pending.pop(fullname)
        if not _pending:
            _uninstall()

        def exec_and_patch(module):
            exec_module(module)
            try:
                patch(module)
            except Exception as err:  # never break lm-eval itself
                _give_up(f"{type(err).__name__}: {err}")

        loader.exec_module = exec_and_patch
        return spec


_finder = _LmEvalFinder()
_pending = {
    INDEX_MODULE: patch_task_index,
    MODELS_MODULE: register_models,
    MODEL_API_MODULE: install_token_counts,
}


def _uninstall() -> None:
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)


def install() -> None:
    """Patch now if lm-eval's task index is already imported, else wait for it."""
    if not enabled():
        return
    for name in list(_pending):
        if name in sys.modules:
            _pending.pop(name)(sys.modules[name])
    if _pending and _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


install()
