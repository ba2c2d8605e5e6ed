"""Build hook: editable installs get the start-up hook (.pth) but not a stale copy of tasks/.

A normal wheel force-includes ``tasks/`` as ``lm_eval_rankacc/tasks`` and the
``.pth`` file; an editable install reads ``tasks/`` from the checkout, so it
only needs the ``.pth`` file.
"""

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class EditableHook(BuildHookInterface):
    def initialize(self, version, build_data):
        if version == "editable":
            build_data["force_include_editable"] = {
                "lm_eval_rankacc_autoload.pth": "lm_eval_rankacc_autoload.pth"
            }
