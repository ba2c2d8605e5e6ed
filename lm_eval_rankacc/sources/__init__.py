"""Converters from each dataset's own hub schema to the common schema
(:mod:`lm_eval_rankacc.schema`). Pure: they receive the rows, never read files.

Each source module defines ``HUB`` (where the real data lives, pinned) and
``convert(rows, options) -> Conversion``. A source whose data location is a
task option (``fields``, for YAML-only tasks) also defines
``task_hub(options, data_files)``, which the harness calls instead of reading
``HUB``. Rules shared by several converters live in :mod:`.common`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class HubDataset:
    """A hub dataset read with ``datasets.load_dataset(path, name, revision=..., split=...)``.

    ``data_files`` (a file of the hub repository, or a tuple of them) reads only
    those files, for datasets too large to load whole; ``load_dataset`` then
    names their split ``train``."""

    path: str
    revision: str
    name: str | None = None
    data_dir: str | None = None
    data_files: str | tuple[str, ...] | None = None


@dataclass(frozen=True)
class HubFile:
    """One JSON file of a hub dataset repository, read as a list of records."""

    repo: str
    filename: str
    revision: str


@dataclass
class Conversion:
    """The documents built from a source's rows, and the rows dropped by rule."""

    docs: list[dict[str, Any]] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)


def get_source(name: str):
    """The converter module for ``name`` (e.g. ``"hh_rlhf"``)."""
    from lm_eval_rankacc.sources import alpaca_farm, demo, hh_rlhf
    from lm_eval_rankacc.sources import fields, gptj_pairwise, shp, stack_exchange, ultrafeedback

    sources = {"hh_rlhf": hh_rlhf, "alpaca_farm": alpaca_farm, "demo": demo}
    sources.update(
        gptj_pairwise=gptj_pairwise, shp=shp, stack_exchange=stack_exchange,
        ultrafeedback=ultrafeedback, fields=fields,
    )
    if name not in sources:
        raise ValueError(f"unknown source {name!r}; known: {', '.join(sorted(sources))}")
    return sources[name]
