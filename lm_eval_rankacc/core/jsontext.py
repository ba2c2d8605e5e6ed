"""JSON text and JSON lines: parsed by ``orjson`` where it is installed and
accepts the text, by the standard ``json`` module otherwise (which words the
errors); the rules every JSON-lines reader follows (a byte-order mark at the
start is dropped, a line that is not UTF-8 is named with its first bad
byte); and the pause of Python's cycle collector that big reads run under.
No I/O. Used by the data-file readers (:mod:`lm_eval_rankacc.loading`) and
the samples reader (:mod:`lm_eval_rankacc.outputs`)."""

from __future__ import annotations

import codecs
import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

try:  # about 5x faster than json; optional (the `fast` extra)
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is optional
    _orjson = None

#: What :func:`fast_loads` returns for a text orjson is missing for or refuses.
REFUSED = object()
# orjson reads an integer past 64 bits as a float (-9223372036854775809 ->
# -9.223372036854776e+18) where json keeps it whole: a float this large may be one
_INT64 = 2.0 ** 63


def _may_hold_a_long_integer(value: Any) -> bool:
    """Whether a parsed value holds a float of magnitude 2**63 or more (an
    integer orjson could not keep, or a float json reads alike)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind is float and abs(item) >= _INT64:
            return True
    return False


def fast_loads(raw: bytes | str) -> Any:
    """A JSON text (str or UTF-8 bytes) parsed by orjson, or :data:`REFUSED`
    when orjson is missing or refuses it (it refuses NaN, Infinity, integers
    past 64 bits, lone surrogates, bad UTF-8) or would read it differently
    (an integer past 64 bits becomes a float there): :func:`loads` then
    parses it, or words the error."""
    if _orjson is None:
        return REFUSED
    try:
        value = _orjson.loads(raw)
    except _orjson.JSONDecodeError:
        return REFUSED
    return REFUSED if _may_hold_a_long_integer(value) else value


def loads(text: str) -> Any:
    """One JSON text: orjson's reading where it accepts it, else json's."""
    record = fast_loads(text)
    return json.loads(text) if record is REFUSED else record


#: The UTF-8 byte-order mark a text file may start with: accepted, and dropped.
BOM = codecs.BOM_UTF8


def without_bom(raw: bytes, line_no: int = 1) -> bytes:
    r"""A line's bytes without the byte-order mark, which may stand only at
    the start of the file (line 1).

    Examples:
        >>> without_bom(b"\xef\xbb\xbf{}"), without_bom(b"\xef\xbb\xbf{}", line_no=2)
        (b'{}', b'\xef\xbb\xbf{}')
    """
    return raw[len(BOM):] if line_no == 1 and raw.startswith(BOM) else raw


def utf8_error(raw: bytes, err: UnicodeDecodeError, first_line: int = 1, field: str | None = None) -> str:
    r"""Where the first byte of ``raw`` that is not UTF-8 sits (``raw`` one
    line, or a text starting at line ``first_line``), and the JSON field
    holding it when known.

    Examples:
        >>> raw = b'{"a": 1}\n{"b": "\xff"}'
        >>> try:
        ...     raw.decode("utf-8")
        ... except UnicodeDecodeError as err:
        ...     print(utf8_error(raw, err, field="b"))
        line 2: field 'b': not UTF-8 text (byte 0xff at column 8)
    """
    line = first_line + raw.count(b"\n", 0, err.start)
    column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
    where = f"field '{field}': " if field else ""
    return f"line {line}: {where}not UTF-8 text (byte 0x{raw[err.start]:02x} at column {column})"


def json_error(err: Exception) -> str:
    """Why ``json.loads`` failed: a syntax error (with its column), nesting
    beyond the recursion limit, or a number too long to convert (a ValueError)."""
    if isinstance(err, json.JSONDecodeError):
        return f"{err.msg}, column {err.colno}"
    return "nested too deeply" if isinstance(err, RecursionError) else str(err)


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


def strict_dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of ``value`` with every NaN or infinite float written as
    ``null``, so the text is strict JSON (RFC 8259 has no NaN) that any
    reader accepts.

    Examples:
        >>> strict_dumps({"p": [0.5, float("nan")], "q": float("inf")})
        '{"p": [0.5, null], "q": null}'
    """
    return json.dumps(_finite_or_none(value), allow_nan=False, **kwargs)


def _finite_or_none(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        return value if value - value == 0.0 else None
    if kind is dict:
        return {k: _finite_or_none(v) for k, v in value.items()}
    if kind in (list, tuple):
        return [_finite_or_none(v) for v in value]
    return value
