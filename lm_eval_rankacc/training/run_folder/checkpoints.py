"""Which checkpoint a resumed run starts from. Pure standard library.

A ``checkpoint-<step>`` folder is **complete** when it holds everything the
Trainer writes into it, in the order it writes them:

- the weights: ``model.safetensors``, ``pytorch_model.bin`` (or their
  ``.index.json`` with every shard it lists), or a PEFT adapter's;
- the optimizer and scheduler state: ``optimizer.pt`` (or ``optimizer.bin``)
  and ``scheduler.pt``; not required with ``--save_only_model`` (nothing to
  resume the optimizer from) nor under DeepSpeed or FSDP (their own layouts,
  which the Trainer checks itself);
- ``trainer_state.json``, written last: a save killed half-way leaves a
  folder without it (or with a cut one);

and every file the resume reads opens: JSON files parse, a ``.safetensors``
file is as long as its header says, a torch file (``.pt``, ``.pth``,
``.bin``) is a whole zip archive. This reads headers only, never the weights.

``--resume_from_checkpoint true`` (or ``last``, ``latest``) resumes from the
newest complete checkpoint of ``--output_dir`` and logs which one and which
incomplete ones it skipped; a named checkpoint that is not complete stops the
run with one line naming the folder and what is missing or unreadable.
"""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path

from lm_eval_rankacc.core import checkpoint_names
from lm_eval_rankacc.core.errors import TrainingDataError

log = logging.getLogger("lm_eval_rankacc.training")

#: The values of ``--resume_from_checkpoint`` that mean "the newest complete checkpoint".
LATEST = ("true", "last", "latest")
#: The Trainer's state, the last file of a checkpoint it writes.
TRAINER_STATE = "trainer_state.json"
WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
           "adapter_model.safetensors", "adapter_model.bin")
OPTIMIZER = ("optimizer.pt", "optimizer.bin")
SCHEDULER = ("scheduler.pt",)
#: The files of a checkpoint whose contents are checked (by suffix).
CHECKED_SUFFIXES = (".json", ".safetensors", ".pt", ".pth", ".bin")



def _safetensors_problem(path: Path) -> str | None:
    """Why a ``.safetensors`` file is unreadable: its 8-byte header length,
    its JSON header and the data offsets it lists must fit the file's size."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 0 < length <= size - 8:
            return f"{path.name} is cut or not a safetensors file ({size} bytes)"
        try:
            header = json.loads(f.read(length))
            end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return f"{path.name} is not a safetensors file (unreadable header)"
    if 8 + length + end != size:
        return f"{path.name} is cut ({size} bytes where its header describes {8 + length + end})"
    return None


def _torch_file_problem(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as z:
            z.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError):
        return f"{path.name} is cut or not a torch file (not a whole zip archive)"
    return None


def _json_problem(path: Path, folder: Path) -> str | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError):
        return f"{path.name} is cut or not JSON"
    if path.name == TRAINER_STATE and not (isinstance(value, dict) and isinstance(value.get("global_step"), int)):
        return f"{path.name} has no global_step"
    if path.name.endswith(".index.json"):
        weight_map = value.get("weight_map") if isinstance(value, dict) else None
        shards = list(weight_map.values()) if isinstance(weight_map, dict) else []
        missing = sorted({s for s in shards if isinstance(s, str) and not (folder / s).is_file()})
        if missing or not shards:
            return f"{path.name} lists missing shards {missing}" if missing else f"{path.name} lists no shards"
    return None


def file_problem(path: Path) -> str | None:
    """Why one file of a checkpoint cannot be read (None when it can)."""
    try:
        if path.suffix == ".safetensors":
            return _safetensors_problem(path)
        if path.suffix in (".pt", ".pth", ".bin"):
            return _torch_file_problem(path)
        if path.suffix == ".json":
            return _json_problem(path, path.parent)
    except OSError as err:
        return f"{path.name} is unreadable ({err.strerror or err})"
    return None


def checkpoint_problems(folder: str | Path, full_state: bool = True) -> list[str]:
    """What keeps ``folder`` from being a complete checkpoint (see the module
    docstring); [] when it is one. ``full_state``: the optimizer and
    scheduler state are required too."""
    folder = Path(folder)
    if not folder.is_dir():
        return ["no such folder" if not folder.exists() else "not a folder"]
    required = [("weights", WEIGHTS)]
    if full_state:
        required += [("optimizer state", OPTIMIZER), ("scheduler state", SCHEDULER)]
    required.append(("trainer state", (TRAINER_STATE,)))
    problems = [f"no {what} ({' or '.join(names[:2])})" for what, names in required
                if not any((folder / n).is_file() for n in names)]
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix in CHECKED_SUFFIXES:
            problem = file_problem(path)
            if problem:
                problems.append(problem)
    return problems


def checkpoint_step(folder: Path) -> int | None:
    """The step of a ``checkpoint-<step>`` folder name (None for another name)."""
    return checkpoint_names.checkpoint_step(folder.name)


def run_checkpoints(output_dir: str | Path) -> list[Path]:
    """The ``checkpoint-<step>`` folders of ``output_dir``, newest (highest step) first."""
    out = Path(output_dir)
    if not out.is_dir():
        return []
    found = [p for p in out.iterdir() if p.is_dir() and checkpoint_step(p) is not None]
    return sorted(found, key=checkpoint_step, reverse=True)


def newest_complete(output_dir: str | Path, full_state: bool = True) -> tuple[Path | None, dict[Path, list[str]]]:
    """(the newest complete checkpoint of ``output_dir`` or None, the newer
    incomplete ones with their problems)."""
    skipped: dict[Path, list[str]] = {}
    for folder in run_checkpoints(output_dir):
        problems = checkpoint_problems(folder, full_state)
        if not problems:
            return folder, skipped
        skipped[folder] = problems
    return None, skipped


def describe(skipped: dict[Path, list[str]]) -> str:
    """``checkpoint-6 (no trainer state (trainer_state.json), ...); ...``."""
    return "; ".join(f"{folder.name} ({', '.join(problems)})" for folder, problems in skipped.items())


def resume_point(value: str | bool | None, output_dir: str | Path, full_state: bool = True,
                 restart_allowed: bool = False) -> Path | None:
    """The checkpoint to resume from for ``--resume_from_checkpoint value``:
    None for no resume; for ``true``/``last``/``latest``, the newest complete
    checkpoint of ``output_dir`` (logged, with the incomplete ones skipped);
    else the named folder, which must be complete. When ``output_dir`` has no
    complete checkpoint, ``restart_allowed`` (the folder holds a run of ours
    that saved none yet) starts that run again from step 0 (None); otherwise
    it is an error."""
    if value is None or value is False or value == "":
        return None
    if value is True or (isinstance(value, str) and value.lower() in LATEST):
        found, skipped = newest_complete(output_dir, full_state)
        if skipped:
            log.warning("--resume_from_checkpoint: skipped incomplete checkpoints of %s: %s", output_dir,
                        describe(skipped))
        if found is not None:
            log.info("--resume_from_checkpoint: resuming from %s, the newest complete checkpoint", found)
            return found
        if restart_allowed:
            log.warning("--resume_from_checkpoint: %s has no complete checkpoint: its run starts again from step 0",
                        output_dir)
            return None
        raise TrainingDataError(f"--resume_from_checkpoint {value}: no complete checkpoint in {output_dir}"
                                + (f" ({describe(skipped)})" if skipped else "")
                                + ": nothing to resume; start the run without --resume_from_checkpoint (with "
                                  "--fresh_start where the folder holds files of an earlier rankacc run)")
    folder = Path(value)
    problems = checkpoint_problems(folder, full_state)
    if problems:
        raise TrainingDataError(f"cannot resume from {folder}: {'; '.join(problems)}")
    log.info("--resume_from_checkpoint: resuming from %s", folder)
    return folder
