"""Build hook: ship the start-up hook (``.pth`` file and its module) and, for
editable installs, not a stale copy of ``tasks/``.

A normal wheel force-includes ``tasks/`` as ``lm_eval_rankacc/tasks`` and the
``.pth`` file (pyproject.toml), and here the hook's standalone top-level
module ``lm_eval_rankacc_autoload.py``. An editable install reads ``tasks/``
and that module from the checkout (its path entry, a ``.pth`` file whose name
starts with ``_``, is processed before ``lm_eval_rankacc_autoload.pth``), so
it only needs the ``.pth`` file; after changing that file, reinstall
(``pip install -e .``).
"""

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PTH = "lm_eval_rankacc_autoload.pth"
HOOK_MODULE = "lm_eval_rankacc_autoload.py"


class EditableHook(BuildHookInterface):
    def initialize(self, version, build_data):
        if version == "editable":
            build_data["force_include_editable"] = {PTH: PTH}
        else:
            build_data["force_include"][HOOK_MODULE] = HOOK_MODULE
