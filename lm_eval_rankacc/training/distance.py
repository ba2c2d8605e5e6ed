"""Distance travelled: ``||theta_t - theta_ref||_2`` and its ratio to
``||theta_ref||_2`` (for paper Sec. 5, Fig. 4), recorded by the tracking
callbacks at every evaluation step (``docs/section5.md``, "The distance
travelled").

The measure is this project's: the paper's text says "distance travelled
by the model weights theta_t from the initialization" and its figures' axes
read ``||theta_t - theta_Ref||_2^2`` (squared); the released trainer
(``dpo_trainer.py``, ``model_weights_l2_norm``) logs ``||theta_t||_2``, the
norm of the weights themselves, not of their displacement from theta_ref
(``docs/conventions.md``, "Section 5"). We take the Euclidean norm of the
displacement, not squared, which is 0 at the start and does not depend on
the size of the weights.

How theta_ref is held (:func:`reference_weights`), cheapest first:

- streamed from the reference's ``*.safetensors`` files (a model folder, or a
  hub model already in the local cache), one tensor at a time through
  ``safe_open`` (memory-mapped): no copy of the model is kept. Each tensor is
  cast to the parameter's dtype first (the reference as the run loads it),
  so the model the files were loaded from is at distance 0 exactly. Used when
  every parameter name and shape is in the files (and, when the model is the
  reference, when the files give distance 0 at the start);
- otherwise one copy of the parameters that require gradients, on the CPU in
  their own dtype, taken when training begins (frozen parameters do not move,
  so they add nothing to the distance; they count in ``||theta_ref||``).

Squares are summed in float64, tensor by tensor (in chunks). Distributed:
where every process holds the whole model (DDP, one device) only the main
process computes; where parameters are sharded (FSDP, DeepSpeed ZeRO-3) each
process sums the squares of its own shard (against a copy of that shard) and
the sums are added with ``all_reduce``: every process must then call
:meth:`WeightDistance.distance` (the trainer's evaluation does).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger("lm_eval_rankacc.training")

#: Elements per float64 chunk (128 MiB) when summing squares.
CHUNK = 1 << 24


def _squares(a: torch.Tensor, b: torch.Tensor | None = None) -> float:
    """sum((a - b)^2) (or sum(a^2)) in float64, in chunks of :data:`CHUNK` elements."""
    a = a.detach().reshape(-1)
    b = None if b is None else b.detach().reshape(-1).to(a.device)
    total = torch.zeros((), dtype=torch.float64, device=a.device)
    for i in range(0, a.numel(), CHUNK):
        d = a[i:i + CHUNK].double()
        if b is not None:
            d = d - b[i:i + CHUNK].double()
        total += torch.dot(d, d)
    return float(total)


def is_sharded(model: Any) -> bool:
    """Whether the model's parameters are split across processes (FSDP 1 or 2,
    DeepSpeed ZeRO-3), so that each holds only a shard of each."""
    if any(type(m).__name__.startswith(("FullyShardedDataParallel", "FSDP")) for m in model.modules()):
        return True  # FSDP 1's wrapper; FSDP 2 makes each sharded module an FSDP<Name> subclass
    for p in model.parameters():
        if hasattr(p, "ds_tensor") or any(type(x).__name__ == "Shard" for x in getattr(p, "placements", ())):
            return True
    return False


def _local(p: torch.Tensor) -> torch.Tensor:
    """The part of a parameter this process holds."""
    if hasattr(p, "ds_tensor"):
        return p.ds_tensor
    if hasattr(p, "to_local"):
        return p.to_local()
    return p


def _all_reduce(value: float, device: torch.device) -> float:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t)
    return float(t.item())


class WeightDistance:
    """``||theta - theta_ref||_2`` of a model against one held reference (see the module docstring)."""

    def __init__(self, how: str, reference: dict[str, Any], ref_norm: float, sharded: bool = False):
        #: "safetensors" (streamed; ``reference`` maps names to (file, key)) or "copy" (names to tensors)
        self.how, self.reference, self.ref_norm, self.sharded = how, reference, ref_norm, sharded

    @classmethod
    def copy_of(cls, model: Any) -> WeightDistance:
        """A CPU copy of the parameters that require gradients (their local shards if sharded)."""
        sharded = is_sharded(model)
        held, norm, device = {}, 0.0, torch.device("cpu")
        for name, p in model.named_parameters():
            local = _local(p)
            device = local.device
            norm += _squares(local)
            if p.requires_grad:
                held[name] = local.detach().to("cpu", copy=True)
        if sharded:
            norm = _all_reduce(norm, device)
        return cls("copy", held, math.sqrt(norm), sharded)

    @classmethod
    def streamed(cls, model: Any, files: list[Path]) -> WeightDistance | None:
        """theta_ref read from ``files`` on demand; None (logged) when a
        parameter's name or shape is not in them."""
        from safetensors import safe_open

        where: dict[str, tuple[Path, str, tuple]] = {}
        for f in files:
            with safe_open(str(f), framework="pt") as st:
                for key in st.keys():
                    where[key] = (f, key, tuple(st.get_slice(key).get_shape()))
        prefix = getattr(model, "base_model_prefix", "") or ""
        mapping, norm = {}, 0.0
        for name, p in model.named_parameters():
            found = None
            for key in (name, name.removeprefix(f"{prefix}."), f"{prefix}.{name}"):
                if key in where and where[key][2] == tuple(p.shape):
                    found = where[key][:2]
                    break
            if found is None:
                log.info("distance travelled: parameter %s %s is not in %s: holding a copy instead",
                         name, tuple(p.shape), files[0].parent)
                return None
            mapping[name] = found
        out = cls("safetensors", mapping, 0.0)
        for name, p in model.named_parameters():
            norm += _squares(out._tensor(name, p))
        out.ref_norm = math.sqrt(norm)
        return out

    def _tensor(self, name: str, p: torch.Tensor) -> torch.Tensor:
        """The reference tensor of parameter ``name`` in ``p``'s dtype (and place)."""
        if self.how == "copy":
            return self.reference[name]
        from safetensors import safe_open

        path, key = self.reference[name]
        with safe_open(str(path), framework="pt") as st:
            return st.get_tensor(key).to(p.dtype)

    def fits(self, model: Any) -> bool:
        """Whether every trainable parameter of ``model`` has its reference
        (same name; same shape for a copy): a separate reference of another
        architecture does not."""
        for name, p in model.named_parameters():
            held = self.reference.get(name)
            if p.requires_grad and (held is None or (self.how == "copy" and held.shape != _local(p).shape)):
                return False
        return True

    def distance(self, model: Any) -> float:
        """``||theta - theta_ref||_2`` of ``model`` now (a collective when sharded)."""
        total, device = 0.0, torch.device("cpu")
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name not in self.reference:
                    continue  # frozen (a copy holds only trainable parameters): has not moved
                local = _local(p)
                device = local.device
                total += _squares(local, self._tensor(name, p).to(local.device))
        if self.sharded:
            total = _all_reduce(total, device)
        return math.sqrt(total)

    def fields(self, model: Any) -> dict[str, float | None]:
        """The summary fields: ``weight_distance`` and ``weight_distance_ratio``."""
        d = self.distance(model)
        return {"weight_distance": d, "weight_distance_ratio": d / self.ref_norm if self.ref_norm > 0 else None}


def safetensors_files(path: str | Path | None) -> list[Path]:
    """The ``*.safetensors`` files of a model folder, or of a hub model in the
    local cache (never downloaded here); [] when there are none."""
    if not path:
        return []
    folder = Path(path)
    if not folder.is_dir():
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(str(path), allow_patterns=["*.safetensors"], local_files_only=True))
        except Exception:  # noqa: BLE001 - not a hub name, not cached, offline: hold a copy instead
            return []
    return sorted(folder.glob("*.safetensors"))


def reference_weights(model: Any, path: str | Path | None = None, *, is_reference: bool = True
                      ) -> WeightDistance | None:
    """theta_ref for ``model``: streamed from ``path``'s safetensors files when
    they hold every parameter (and, when ``model`` is the reference itself,
    when they equal it); else a copy of ``model`` when it is the reference;
    else None (a warning: the distance is not recorded)."""
    held = None
    files = [] if is_sharded(model) else safetensors_files(path)
    if files:
        held = WeightDistance.streamed(model, files)
        if held is not None and is_reference:
            moved = held.distance(model)
            if moved != 0:
                log.info("distance travelled: the weights in %s differ from the model's (by %.3g): holding a "
                         "copy instead", path, moved)
                held = None
    if held is None and is_reference:
        held = WeightDistance.copy_of(model)
    if held is None:
        log.warning("distance travelled is not recorded: the reference weights %s are not safetensors files "
                    "holding this model's parameters", path)
    else:
        log.info("distance travelled: reference weights %s (norm %.6g)",
                 f"streamed from {files[0].parent}" if held.how == "safetensors" else "copied on the CPU",
                 held.ref_norm)
    return held
