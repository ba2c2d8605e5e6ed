"""Converters from each dataset's own hub schema to the common schema
(:mod:`lm_eval_rankacc.core.schema`). Pure: they receive the rows, never read files.

Each source module defines ``HUB`` (where the real data lives, pinned) and
``convert(rows, split, **options) -> Conversion``. A bad row is a
:class:`~lm_eval_rankacc.core.errors.RowError` naming its index in ``rows`` and the
field as the source spells it (``instruction``, not ``prompt``); the loader
turns the index into the file and line the row came from. A source whose
data location is a task option (``fields``, for YAML-only tasks) also
defines ``task_hub(options, data_files)``, which the loader (:mod:`lm_eval_rankacc.loading.hub`) calls instead of
reading ``HUB``. A source whose prompts are multi-turn transcripts may define
``chat_messages(prompt)``, the chat messages of a prompt under
``--apply_chat_template`` (:mod:`lm_eval_rankacc.lmeval.chat`; otherwise a prompt is
one user message). Rules shared by several converters live in :mod:`.common`.

Big splits (:mod:`lm_eval_rankacc.loading.documents`, "Loading big splits" in
docs/tasks.md): a converter iterates its rows with :func:`numbered` and builds
its :class:`Conversion` with :meth:`Conversion.of`, so the loader can run it
once over every row keeping only document ids (``rows.light``), then again
over the rows of the sampled documents only, which keep their indices.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol


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
    """The documents built from a source's rows, and the rows dropped by rule.

    ``rows[k]`` is the index (in the rows the converter got) of the row
    document ``k`` was built from (its first row, for a document built from
    several): :meth:`add` keeps the two aligned, so that the loader can say
    where a document came from."""

    docs: list[dict[str, Any]] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    rows: list[int] = field(default_factory=list)
    #: Only each document's id is kept, in ``docs`` (the loader's first pass).
    light: bool = False
    #: Every row document ``k`` was built from, where it is several (``add``'s ``members``).
    members: dict[int, list[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: Any) -> "Conversion":
        """An empty conversion, light when ``rows`` asks for it (:func:`is_light`)."""
        return cls(light=is_light(rows))

    def add(self, doc: dict[str, Any] | str, row: int, members: list[int] | None = None) -> None:
        """Document ``doc`` built from row ``row`` (and ``members``); when light, ``doc`` may be its id."""
        self.docs.append((doc if isinstance(doc, str) else doc["id"]) if self.light else doc)
        self.rows.append(row)
        if members is not None:
            self.members[len(self.docs) - 1] = members

    def ids(self) -> list[str]:
        """The documents' ids, in order."""
        return self.docs if self.light else [doc["id"] for doc in self.docs]


def numbered(rows: Any):
    """``(index, record)`` of each row. The loader may hand a converter a
    selection of rows that knows each row's index in the whole input (its
    ``numbered()``); for any other iterable the index is the position."""
    items = getattr(rows, "numbered", None)
    return items() if callable(items) else enumerate(rows)


def is_light(rows: Any) -> bool:
    """Whether the loader asks for document ids only (its first pass over a big split)."""
    return getattr(rows, "light", False) is True


class Source(Protocol):
    """What a source module defines (:func:`get_source`): ``HUB``, where the
    real data lives (pinned), and ``convert``. Optional: ``TWO_PASS = True``
    (big splits sampled in two passes, see above), ``task_hub(options,
    data_files)`` (a source whose location is a task option, called instead
    of reading ``HUB``) and ``chat_messages(prompt)`` (the chat messages of a
    prompt under ``--apply_chat_template``)."""

    HUB: HubDataset | HubFile | Any

    def convert(self, rows: Iterable[Any], split: str, **options: Any) -> Conversion: ...


#: Source name (``source:`` in a task's ``dataset_kwargs``) -> its module, imported on first use.
SOURCES = {
    name: f"{__name__}.{name}"
    for name in ("alpaca_farm", "demo", "fields", "gptj_pairwise", "hh_rlhf", "shp", "stack_exchange", "ultrafeedback")
}


def get_source(name: str) -> Source:
    """The converter module for ``name`` (e.g. ``"hh_rlhf"``)."""
    if name not in SOURCES:
        raise ValueError(f"unknown source {name!r}; known: {', '.join(sorted(SOURCES))}")
    return importlib.import_module(SOURCES[name])
