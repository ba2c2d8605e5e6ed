"""JSON text parsed by ``orjson`` where it is installed and accepts the text,
by the standard ``json`` module otherwise (which words the errors); and the
pause of Python's cycle collector that big reads run under. No I/O. Used by
the data-file reader (``harness``) and the samples reader (``runs``)."""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

try:  # about 5x faster than json; optional (the `fast` extra)
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is optional
    _orjson = None

#: What :func:`fast_loads` returns for a text orjson is missing for or refuses.
REFUSED = object()
# 19 digits or more in a row: orjson reads an integer past 64 bits as a float
# (-9223372036854775809 -> -9.223372036854776e+18), json keeps it whole
_LONG_DIGITS = re.compile(rb"\d{19}")
_LONG_DIGITS_STR = re.compile(r"\d{19}")


def fast_loads(raw: bytes | str) -> Any:
    """A JSON text (str or UTF-8 bytes) parsed by orjson, or :data:`REFUSED`
    when orjson is missing or refuses it (it refuses NaN, Infinity, integers
    past 64 bits, lone surrogates, bad UTF-8) or would read it differently
    (an integer past 64 bits becomes a float there): :func:`loads` then
    parses it, or words the error."""
    if _orjson is None or (_LONG_DIGITS if isinstance(raw, bytes) else _LONG_DIGITS_STR).search(raw):
        return REFUSED
    try:
        return _orjson.loads(raw)
    except _orjson.JSONDecodeError:
        return REFUSED


def loads(text: str) -> Any:
    """One JSON text: orjson's reading where it accepts it, else json's."""
    record = fast_loads(text)
    return json.loads(text) if record is REFUSED else record


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Python's cycle collector paused (and restored, on errors too): a big
    read builds millions of short-lived containers and no cycle, and the
    collector's passes over them cost about as much as the decoding
    (measured: samples files 20 -> 10 us a document, data files up to half
    the conversion time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
