"""lm-eval-rankacc: ranking-accuracy tasks for EleutherAI's lm-evaluation-harness.

Kept import-light on purpose: ``rankacc`` and the start-up hook (once lm-eval
loads) import it, so nothing heavy (torch, lm-eval, datasets) is imported
here. The hook does not import it at interpreter start
(``lm_eval_rankacc_autoload``).
"""

from pathlib import Path

from lm_eval_rankacc import _moved

__version__ = "0.1.0"

#: The key of a rankacc task's ``metadata`` that records what produced its
#: numbers (``rankacc_version``, ``convention`` and the loader options used):
#: filled by the task loader (:func:`lm_eval_rankacc.lmeval.dataset.load_docs`),
#: written by lm-eval into ``results["configs"][task]["metadata"]``, read by
#: :mod:`lm_eval_rankacc.outputs.results`.
PROVENANCE_KEY = "rankacc"


def tasks_dir() -> Path:
    """The folder holding the package's lm-eval task YAMLs.

    Inside an installed wheel the tasks live in ``lm_eval_rankacc/tasks``; in a
    source checkout (and an editable install) they live in ``tasks/`` beside
    the package.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "tasks", here.parent / "tasks"):
        if (candidate / "rankacc.yaml").is_file():
            return candidate
    raise FileNotFoundError(
        f"lm_eval_rankacc: no task folder found next to {here} (looked for tasks/rankacc.yaml)"
    )


_moved.install()  # the module paths of release 0.1, importable with a DeprecationWarning for one release
