"""What a training run leaves behind and returns, the same for ``train_sft``
and ``train_dpo``: ``training_config.json`` (the run's id, every option,
the data counts), the best checkpoint marked (:func:`.marks.mark_best`)
and a :class:`RunResult`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lm_eval_rankacc.training.run_folder.files import CONFIG_FILE, write_json
from lm_eval_rankacc.training.run_folder.marks import mark_best
from lm_eval_rankacc.training.stop_on_signal import StopOnSignal

if TYPE_CHECKING:
    from transformers import Trainer

    from lm_eval_rankacc.training.config import TrainingConfig
    from lm_eval_rankacc.training.run_folder.start import RunStart


@dataclass
class RunResult:
    """What a training call did."""

    output_dir: Path
    global_step: int
    best_checkpoint: Path | None
    stopped_by_signal: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    #: What the run could not write after training (e.g. the figures on a full disk): the run exits non-zero.
    incomplete: list[str] = field(default_factory=list)


@contextmanager
def timed(timings: dict[str, float], key: str) -> Iterator[None]:
    """Store the seconds the block takes in ``timings[key]``."""
    start = time.perf_counter()
    yield
    timings[key] = time.perf_counter() - start


def write_run_config(command: str, config: TrainingConfig, start: RunStart, **sections: Any) -> Path:
    """``training_config.json``: ``{"command": command, "run_id": run_id,
    command: our options, "training": the TrainingArguments, **sections}``
    (``run_id`` names the run: :mod:`.start`). A resumed run keeps what its
    run recorded when it started and appends what the resume changed to
    ``resumes`` (:func:`.start.check_resume`)."""
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if start.recorded is not None and start.resumed is not None:
        payload = dict(start.recorded)
        payload["resumes"] = [*payload.get("resumes", []), start.resumed]
    else:
        payload = {"command": command, "run_id": start.run_id, command: config.own_options(),
                   "training": config.trainer_options(), **sections}
    return write_json(out / CONFIG_FILE, payload)


def finish_run(trainer: Trainer, stopper: StopOnSignal, train_output: Any, timings: dict[str, float]) -> RunResult:
    """Mark the best checkpoint (on the main process) and say what the run did."""
    out = Path(trainer.args.output_dir)
    best = mark_best(out, trainer.state) if trainer.is_world_process_zero() else None
    return RunResult(out, trainer.state.global_step, best, stopper.received is not None,
                     dict(train_output.metrics), timings)
