"""The reference pass of a DPO run and its cache.

The reference model scores every pair once, batched and without gradients
(:meth:`.trainer.PreferenceTrainer.compute_reference_logps`), before training.
With ``--reference_cache`` (the default) the scores are kept in
``OUTPUT_DIR/reference_logps.npz`` under a key that hashes the reference
model's weight files, the scoring options and every pair's tokens; a run
whose key matches (a resumed run) reads them instead of scoring again. A
cache file that cannot be read (truncated, not an ``.npz``, arrays missing
or of the wrong shape) is a warning naming it, and the reference scores
are computed again and the file rewritten.
"""

from __future__ import annotations

import io
import logging
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lm_eval_rankacc.core.errors import TrainingDataError
from lm_eval_rankacc.training.run_folder.files import write_atomic
from lm_eval_rankacc.training.tokens import Encoded

if TYPE_CHECKING:
    from lm_eval_rankacc.training.config import DPOConfig
    from lm_eval_rankacc.training.pairs import PreferenceData
    from lm_eval_rankacc.training.trainer import PreferenceTrainer

log = logging.getLogger("lm_eval_rankacc.training")

REFERENCE_CACHE = "reference_logps.npz"


def model_signature(path: str) -> list[Any]:
    """The weight files of a local model folder (name, size, mtime): a model
    retrained into the same folder does not reuse stale reference scores."""
    folder = Path(path)
    if not folder.is_dir():
        return [path]
    files = sorted(f for f in folder.resolve().iterdir() if f.suffix in (".safetensors", ".bin", ".json"))
    return [str(folder.resolve())] + [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]


def fingerprint(*parts: Any) -> str:
    """A stable hash of token ids (:class:`.tokens.Encoded`) and options: the cache's key."""
    import hashlib

    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Encoded):
            for i, p, rs in zip(part.ids, part.prompt, part.responses):
                h.update(str(i).encode())
                h.update(np.asarray(p, dtype=np.int64).tobytes())
                for r in rs:
                    h.update(b"|")
                    h.update(np.asarray(r, dtype=np.int64).tobytes())
                h.update(b"#")
        else:
            h.update(repr(part).encode())
        h.update(b"\x00")
    return h.hexdigest()


def cache_key(config: DPOConfig, ref_path: str, packed: bool, pdata: PreferenceData) -> str:
    """What the reference scores depend on: the model, how it is run, and the pairs' tokens."""
    return fingerprint(model_signature(ref_path), config.model_dtype, config.attn_implementation, packed,
                       config.per_device_eval_batch_size, bool(config.bf16), bool(config.fp16),
                       config.tracking_size, config.tracking_seed, *pdata.encoded)


def _read_cache(path: Path) -> tuple[str, np.ndarray, np.ndarray]:
    """(key, training scores, validation scores) of a cache file; any
    unreadable file (truncated, not an ``.npz``, arrays missing or of the
    wrong kind) raises ``ValueError`` saying why."""
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz archive")
        with z:
            key, train, validation = str(z["key"]), z["train"], z["validation"]
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile, zlib.error) as err:
        raise ValueError(f"{type(err).__name__}: {err}") from None
    for name, values in (("train", train), ("validation", validation)):
        if values.dtype.kind != "f" or values.ndim != 2 or values.shape[1] != 2:
            raise ValueError(f"array {name!r} is {values.dtype} {values.shape}, not (pairs, 2) floats")
    return key, train, validation


def load_cache(path: Path, key: str, pdata: PreferenceData) -> bool:
    """Fill the reference scores from ``path`` if it holds ``key``; whether it
    did. A file that cannot be read (or holds arrays that do not fit the
    pairs) is a warning naming it, and the scores are computed again."""
    if not path.is_file():
        return False
    try:
        stored, train, validation = _read_cache(path)
    except ValueError as err:
        log.warning("%s is unreadable (%s): computing the reference log-probabilities again", path, err)
        return False
    if stored != key:
        log.info("%s is for other pairs, models or options: computing the reference log-probabilities again", path)
        return False
    if train.shape != pdata.train.ref.shape or validation.shape != pdata.validation.ref.shape:
        log.warning("%s holds %s training and %s validation scores where the pairs need %s and %s: computing "
                    "the reference log-probabilities again", path, train.shape, validation.shape,
                    pdata.train.ref.shape, pdata.validation.ref.shape)
        return False
    pdata.train.ref[:] = train
    pdata.validation.ref[:] = validation
    log.info("reference log-probabilities read from %s", path)
    return True


def save_cache(path: Path, key: str, pdata: PreferenceData) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, key=np.array(key), train=pdata.train.ref, validation=pdata.validation.ref)
    write_atomic(path, buffer.getvalue())


def check_finite(pdata: PreferenceData) -> None:
    """Stop, naming pairs, when the reference gives a non-finite log-probability."""
    bad = ~np.isfinite(pdata.train.ref).all(1)
    if bad.any() or not np.isfinite(pdata.validation.ref).all():
        raise TrainingDataError(
            f"the reference model gives non-finite log-probabilities for {int(bad.sum())} training pairs "
            f"(e.g. {[pdata.train.ids[i] for i in np.flatnonzero(bad)[:5]]})")


def fill_reference(trainer: PreferenceTrainer, pdata: PreferenceData, config: DPOConfig, ref_path: str,
                   packed: bool) -> None:
    """Every pair's reference log-probabilities, from the cache or from
    ``trainer``'s model (the reference model), then cached."""
    out = Path(config.output_dir)
    key = cache_key(config, ref_path, packed, pdata)
    cache = out / REFERENCE_CACHE
    if config.reference_cache and load_cache(cache, key, pdata):
        return
    trainer.compute_reference_logps([s for s in (pdata.tracking, pdata.rest, pdata.validation) if s is not None])
    check_finite(pdata)
    if config.reference_cache and trainer.is_world_process_zero():
        out.mkdir(parents=True, exist_ok=True)
        save_cache(cache, key, pdata)
