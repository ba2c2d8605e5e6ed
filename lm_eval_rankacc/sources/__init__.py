"""Converters from each dataset's own hub schema to the common schema
(:mod:`lm_eval_rankacc.schema`). Pure: they receive the rows, never read files.

Each source module defines ``HUB`` (where the real data lives, pinned) and
``convert(rows, options) -> Conversion``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class HubDataset:
    """A hub dataset read with ``datasets.load_dataset(path, name, revision=..., split=...)``."""

    path: str
    revision: str
    name: str | None = None
    data_dir: str | None = None


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

    sources = {"hh_rlhf": hh_rlhf, "alpaca_farm": alpaca_farm, "demo": demo}
    if name not in sources:
        raise ValueError(f"unknown source {name!r}; known: {', '.join(sorted(sources))}")
    return sources[name]
