"""The module paths of release 0.1 that moved into packages by role
(docs/architecture.md), kept importable for one release.

``import lm_eval_rankacc.theory`` (or ``!function
lm_eval_rankacc.harness.load_docs`` in a task YAML) still works: a finder on
``sys.meta_path`` answers for the old names of :data:`MOVED` only, warns
once per old module with a :class:`DeprecationWarning` naming the new
place, and gives a module whose attributes are read from the new modules
(the first that has the name; :data:`RENAMED` where a name changed too).
Nothing is imported until an old name is asked for. Standard library only.
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from importlib.machinery import ModuleSpec

_PKG = "lm_eval_rankacc"

#: old module (under the package) -> the new modules its names now live in, searched in order
MOVED: dict[str, tuple[str, ...]] = {
    "harness": ("lmeval.dataset", "loading.documents", "loading.files", "loading.hub", "loading.rows", "core.errors"),
    "authoring": ("lmeval.dataset",),
    "errors": ("core.errors",),
    "schema": ("core.schema",),
    "theory": ("core.theory",),
    "released": ("core.released",),
    "stats": ("core.stats",),
    "packing": ("core.packing",),
    "verdicts": ("core.verdicts",),
    "jsontext": ("core.jsontext",),
    "steps": ("core.checkpoint_names",),
    "chat": ("lmeval.chat", "lmeval.tasks"),
    "metrics": ("lmeval.metrics",),
    "loglikelihood": ("lmeval.loglikelihood",),
    "loggers": ("lmeval.wandb_samples",),
    "models": ("lmeval.models",),
    "models.prefix": ("lmeval.models.prefix",),
    "results": ("outputs.results", "outputs.names"),
    "runs": ("outputs.runs", "outputs.samples", "outputs.columns", "outputs.matching", "outputs.parallel",
             "outputs.validation", "outputs.lines", "outputs.names"),
    "smollm2": ("loading.demo_model",),
    "training.data": ("training.splits", "training.examples", "training.tokens", "training.reference",
                      "loading.tasks", "training._deprecated", "core.errors"),
    "training.tracking": ("training.tracking_log",),
    "training.tracker": ("training.ranking_tracker",),
    "training.callbacks": ("training.tracking_callback", "training.stop_on_signal", "training.run_folder.marks"),
    "training.files": ("training.run_folder.files", "core.checkpoint_names"),
    "training.rundir": ("training.run_folder.start",),
    "training.outputs": ("training.run_folder.result",),
    "training.checkpoints": ("training.run_folder.checkpoints",),
}

#: (old module, old name) -> "new.module:new_name", for names that changed as they moved
RENAMED: dict[tuple[str, str], str] = {
    ("authoring", "load_docs"): "lmeval.dataset:load_fields_docs",
}


class _MovedModule(types.ModuleType):
    """An old module path: each attribute read from where it lives now."""

    def __getattr__(self, name: str):
        if name.startswith("__"):  # the import system's own attributes (__path__, ...) are never forwarded
            raise AttributeError(name)
        old = self.__name__.removeprefix(f"{_PKG}.")
        renamed = RENAMED.get((old, name))
        if renamed is not None:
            module, _, attr = renamed.partition(":")
            return getattr(importlib.import_module(f"{_PKG}.{module}"), attr)
        for module in MOVED[old]:
            new = importlib.import_module(f"{_PKG}.{module}")
            if hasattr(new, name):
                return getattr(new, name)
        raise AttributeError(f"module {self.__name__!r} (moved to {', '.join(MOVED[old])}) has no attribute {name!r}")

    def __dir__(self):
        names: set[str] = set()
        for module in MOVED[self.__name__.removeprefix(f"{_PKG}.")]:
            names.update(dir(importlib.import_module(f"{_PKG}.{module}")))
        return sorted(names)


class _Finder:
    """Answers for the old module paths of :data:`MOVED` only."""

    def find_spec(self, fullname: str, path=None, target=None):  # noqa: ANN001 - importlib's signature
        old = fullname.removeprefix(f"{_PKG}.")
        if fullname == old or old not in MOVED:
            return None
        return ModuleSpec(fullname, self, is_package=any(k.startswith(f"{old}.") for k in MOVED))

    def create_module(self, spec: ModuleSpec) -> types.ModuleType:
        return _MovedModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        old = module.__name__.removeprefix(f"{_PKG}.")
        new = " and ".join(f"{_PKG}.{m}" for i, m in enumerate(MOVED[old]) if i == 0 or m != "core.errors")
        warnings.warn(f"{module.__name__} is deprecated and will be removed in the next release: use {new}",
                      DeprecationWarning, stacklevel=2)


_finder = _Finder()


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once)."""
    if _finder not in sys.meta_path:
        sys.meta_path.append(_finder)
