"""Start-up hook of lm-eval-rankacc: lets plain ``lm_eval --tasks 'rankacc_*'`` find the tasks.

lm-eval 0.4.13 reads no plugin entry points for external tasks or models (the
package declares them too, for the lm-eval versions that do; the install
functions then stand aside), so the package installs
``lm_eval_rankacc_autoload.pth`` beside this module. Python runs its
one line at every start: it reads ``LM_EVAL_RANKACC_AUTOLOAD`` itself (``0``,
``false``, ``no`` or ``off`` switch the hook off and nothing is imported) and
otherwise imports this module, silently skipping it if that import fails, so
that an old or broken copy on ``PYTHONPATH`` prints nothing at every start.

This module is deliberately standalone and tiny: it imports only ``sys``
(not the package, not ``inspect``, ``warnings``, ``pathlib`` or
``importlib.abc``), and puts a finder first on ``sys.meta_path`` that answers
for the lm-eval modules of :data:`MODULES` only. The finder lets the
other finders locate such a module and wraps its loader; right after the
module has run, it imports :mod:`lm_eval_rankacc._autoload` and calls the
install function named for it there. The finder removes itself when all
have been seen (a run that never uses W&B leaves it waiting for the logger
module: one dictionary look-up per later import). A Python program that
never imports lm-eval pays for reading this file and nothing else
(``scripts/bench_startup.py`` measures it).
"""

import sys

# lm-eval module -> the install function of lm_eval_rankacc._autoload to call
# right after that module has been executed
MODULES = {
    "lm_eval.tasks._index": "patch_task_index",  # scan the package's task folder
    "lm_eval.models": "register_models",  # register hf-prefix beside lm-eval's backends
    "lm_eval.api.model": "install_token_counts",  # token counts and the window of rankacc requests
    "lm_eval.loggers.wandb_logger": "install_wandb_samples",  # W&B sample tables of rankacc tasks
    "lm_eval._cli.harness": "install_cli_errors",  # rankacc's errors as one line, exit code 2
}

_pending = dict(MODULES)


def _package_hook():
    """:mod:`lm_eval_rankacc._autoload`, or None (after one warning, the hook
    then switched off) when the package on ``sys.path`` cannot provide it."""
    try:
        from lm_eval_rankacc import _autoload
    except Exception as err:  # an old or broken copy of the package: never break lm-eval
        _pending.clear()
        uninstall()
        import warnings

        warnings.warn(
            f"lm_eval_rankacc: start-up hook disabled: cannot import lm_eval_rankacc._autoload "
            f"({type(err).__name__}: {err}); is an old or broken copy of lm_eval_rankacc on "
            "PYTHONPATH? Use --include_path \"$(python -m lm_eval_rankacc tasks-dir)\" instead",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return _autoload


def _run(function: str, module) -> None:
    hook = _package_hook()
    if hook is not None:
        hook.run(function, module)


class _Finder:
    """Finds nothing itself: it lets the other finders locate the lm-eval
    module, then wraps its loader so the install function runs right after it."""

    def find_spec(self, fullname, path=None, target=None):
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
        function = _pending.pop(fullname)
        if not _pending:
            uninstall()
        exec_module = getattr(spec.loader, "exec_module", None)
        if exec_module is None:
            hook = _package_hook()
            if hook is not None:
                hook._give_up(f"{fullname} has no standard loader")
            return None

        def exec_and_install(module):
            exec_module(module)
            _run(function, module)

        spec.loader.exec_module = exec_and_install
        return spec


_finder = _Finder()


def uninstall() -> None:
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)


def install() -> None:
    """Install now for the lm-eval modules already imported, and wait for the others."""
    for name in [name for name in _pending if name in sys.modules]:
        function = _pending.pop(name, None)  # None once a failed import switched the hook off
        if function is not None:
            _run(function, sys.modules[name])
    if _pending and _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


install()
