"""What defines a training run, and a resume that would change it. Pure
standard library.

``training_config.json`` records every option when a run starts
(:func:`.result.write_run_config`); a resume in place
(``--resume_from_checkpoint true`` or a checkpoint of ``--output_dir``)
compares the options of :data:`DEFINING` with the recorded ones before any
data or model is loaded, and stops with one line listing each difference
(``beta: 0.1 -> 0.5``), exit code 2: a changed objective, data set or model
would continue the log under the old run's name (pair ids are positions, so
other data puts new texts under old ids). ``--allow_run_changes`` lets the
resume go on; the differences are then recorded in the run
(``training_config.json``'s ``resumes``), as is every other option that
changed. The options recorded when the run started are never rewritten.

May change on resume (not in :data:`DEFINING`): when to stop
(``--max_steps``, ``--num_train_epochs``), evaluation, logging and saving
(``--eval_steps``, ``--logging_steps``, ``--save_steps``,
``--save_total_limit``, ``--report_to``), batch size of evaluation,
devices and precision flags, ``--plots`` and the other options that do not
change what is trained on or how.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: Options of both commands that define the run: models, data and sampling,
#: tokenisation limits, the optimiser and its schedule, the training batch.
COMMON = (
    "model_name_or_path", "tokenizer_name", "model_dtype",
    "task", "data_files", "split", "train_sample_size", "eval_task", "eval_data_files", "eval_split",
    "eval_fraction", "split_seed", "max_length", "max_prompt_length",
    "optim", "learning_rate", "lr_scheduler_type", "warmup_steps", "warmup_ratio", "weight_decay",
    "adam_beta1", "adam_beta2", "adam_epsilon", "per_device_train_batch_size", "gradient_accumulation_steps",
    "seed", "data_seed",
)
#: Per command: :data:`COMMON` and the objective, its parameters and the tracked set.
DEFINING = {
    "sft": COMMON + ("sft_all_turns",),
    "dpo": COMMON + ("ref_model_name_or_path", "loss", "beta", "gamma", "tau", "ipo_average_log_prob", "tracking_size",
                     "tracking_seed"),
}
#: Options whose values are paths: compared as resolved paths where they exist.
PATHS = ("model_name_or_path", "tokenizer_name", "ref_model_name_or_path", "data_files", "eval_data_files", "task")
#: Options never compared (they name the run or its folder).
IGNORED = ("output_dir", "logging_dir", "run_name", "resume_from_checkpoint", "fresh_start", "allow_run_changes")


def _plain(value: Any) -> Any:
    """A value as ``training_config.json`` stores it (JSON, ``str`` for the rest)."""
    return json.loads(json.dumps(value, default=str))


def _path(value: Any) -> Any:
    if isinstance(value, list):
        return [_path(v) for v in value]
    if isinstance(value, str) and value and Path(value).exists():
        return str(Path(value).resolve())
    return value


def recorded_options(config: dict[str, Any]) -> dict[str, Any]:
    """The options a ``training_config.json`` recorded when its run started
    (the Trainer's and the command's own, in one mapping)."""
    command = config.get("command")
    own = config.get(command) if isinstance(command, str) else None
    training = config.get("training")
    return {**(training if isinstance(training, dict) else {}), **(own if isinstance(own, dict) else {})}


def changes(old: dict[str, Any], new: dict[str, Any], names: tuple[str, ...] | None = None) -> dict[str, list]:
    """``{name: [old, new]}`` for the options of ``names`` (default: every
    option both hold, but :data:`IGNORED`) whose values differ; an option
    the old record lacks (an older release) is not compared."""
    names = tuple(n for n in old if n in new and n not in IGNORED) if names is None else names
    out = {}
    for name in names:
        if name not in old or name not in new:
            continue
        a, b = _plain(old[name]), _plain(new[name])
        if name in PATHS:
            a, b = _path(a), _path(b)
        if a != b:
            out[name] = [old[name], _plain(new[name])]
    return out


def describe(changed: dict[str, list]) -> str:
    """``beta: 0.1 -> 0.5; loss: dpo -> ipo``."""
    return "; ".join(f"{name}: {json.dumps(a, default=str)} -> {json.dumps(b, default=str)}"
                     for name, (a, b) in changed.items())


def resume_changes(command: str, recorded: dict[str, Any], options: dict[str, Any]) -> tuple[dict, dict]:
    """(the defining options that differ, the other options that differ)
    between a run's ``training_config.json`` (``recorded``) and the options of
    the command resuming it (``options``: as :func:`recorded_options` reads them)."""
    old = recorded_options(recorded)
    defining = DEFINING.get(command, COMMON)
    changed = changes(old, options, defining)
    if recorded.get("command") != command:
        changed = {"command": [recorded.get("command"), command], **changed}
    others = {k: v for k, v in changes(old, options).items() if k not in defining}
    return changed, others
