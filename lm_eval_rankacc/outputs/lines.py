"""The lines of a samples file: read in blocks, split on newline bytes,
parsed as JSON; a line that is not UTF-8 named by its line and field.

A JSON string may hold U+2028 or U+0085 (lm-eval writes them raw), so lines
are split on ``\\n`` only; a leading byte-order mark and a trailing CR are
dropped. Every problem is a :class:`~lm_eval_rankacc.core.errors.RunError`
naming the file and the line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.core.jsontext import loads, utf8_error, without_bom

#: Bytes read at once by :func:`blocks` (cut at the last newline): small enough to stay in
#: the CPU cache across the passes over them (UTF-8 check, line split, decoding).
_READ_BYTES = 1 << 20


def _open(path: Path):  # noqa: ANN202 - a binary file
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise RunError(f"{path}: no such file") from None
    except OSError as err:
        raise RunError(f"{path}: cannot be read ({err.strerror or err})") from None


def blocks(path: Path) -> Iterator[tuple[bytes, int, bool]]:
    """(a block of whole lines, its byte offset, whether it is known to be
    UTF-8) of a file read in blocks of about
    :data:`_READ_BYTES`, each cut after a newline (the file's last line may
    lack one)."""
    at = 0
    with _open(path) as fh:
        while True:
            block = fh.read(_READ_BYTES)
            if not block:
                return
            cut = block.rfind(b"\n") + 1
            if 0 < cut < len(block):  # the block ends inside a line: read it again with the next block
                block = block[:cut]
                fh.seek(at + cut)
            elif not cut and len(block) == _READ_BYTES:  # one line longer than a block
                block += fh.readline()
            utf8 = block.isascii()
            if not utf8:
                try:
                    block.decode("utf-8")
                    utf8 = True
                except UnicodeDecodeError:  # the line holding it is worded by :func:`line_text`
                    pass
            yield block, at, utf8
            at += len(block)


def raw_lines(path: Path) -> Iterator[tuple[int, memoryview, bool, int, bool]]:
    """(1-based line number, its bytes without the newline (a view into its
    block), whether it is the file's last line without a newline, its byte
    offset, whether its block is known to be UTF-8) of every line of
    :func:`blocks`, split on newline bytes only."""
    line_no = 0
    for block, at, utf8 in blocks(path):
        yield from block_lines(block, at, utf8, line_no)
        line_no += block.count(b"\n") + (not block.endswith(b"\n"))


def block_lines(block: bytes, at: int, utf8: bool, line_no: int) -> Iterator[tuple[int, memoryview, bool, int, bool]]:
    """:func:`raw_lines` of one block (at byte ``at``, after ``line_no`` lines)."""
    view, start, size = memoryview(block), 0, len(block)
    while start < size:
        stop = block.find(b"\n", start)
        line_no += 1
        if stop < 0:
            yield line_no, view[start:], True, at + start, utf8
            return
        yield line_no, view[start:stop], False, at + start, utf8
        start = stop + 1


def object_line_starts(block: bytes) -> list[int] | None:
    """The offset of each line of a block of whole lines when every line
    starts with ``{`` (no blank line, no byte-order mark, no leading space),
    else None."""
    starts, start, find = [], 0, block.find
    while start < len(block):
        if block[start] != 0x7B:  # "{"
            return None
        starts.append(start)
        stop = find(b"\n", start)
        if stop < 0:
            break
        start = stop + 1
    return starts


def line_text(path: Path, line_no: int, raw: bytes | memoryview) -> str | None:
    """A raw line as text (a leading byte-order mark on line 1 and trailing
    CR dropped); None for a blank line; a line that is not UTF-8 is a
    :class:`RunError` naming it."""
    raw = without_bom(bytes(raw), line_no).rstrip(b"\r\n")
    if not raw.strip():
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RunError(f"{path}: {utf8_error(raw, err, line_no, _field_with_bad_byte(raw))}") from None


def text_lines(path: Path) -> Iterator[tuple[int, str, bool, int]]:
    """(1-based line number, text, whether it is the file's last line without
    a newline, its byte offset) of each non-blank line, streamed. Lines are split on newline bytes only
    (a JSON string may hold U+2028); a line that is not UTF-8 is a
    :class:`RunError` naming it; a leading byte-order mark is dropped."""
    for line_no, raw, last, at, _ in raw_lines(path):
        text = line_text(path, line_no, raw)
        if text is not None:
            yield line_no, text, last, at


def _field_with_bad_byte(raw: bytes) -> str | None:
    """The field whose key or text holds a line's first byte that is not
    UTF-8, when the line is JSON; None otherwise."""
    try:
        return _field_with(json.loads(raw.decode("utf-8", "surrogateescape")), "")
    except (json.JSONDecodeError, RecursionError):
        return None


def _field_with(value: Any, where: str) -> str | None:
    """The first field (``doc.responses[1]``) of parsed JSON whose key or text
    holds an undecodable byte (a lone surrogate of ``surrogateescape``)."""
    if isinstance(value, str):
        return where if any("\udc80" <= ch <= "\udcff" for ch in value) else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        name = f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}".lstrip(".")
        found = name if isinstance(key, str) and _field_with(key, name) else _field_with(item, name)
        if found:
            return found
    return None


def parsed(path: Path, line_no: int, line: str, last: bool) -> Any:
    """One samples line as JSON (``last``: the file's last line, without newline)."""
    try:
        return loads(line)
    except json.JSONDecodeError as err:
        hint = " (the file looks truncated)" if last else " (a corrupted samples file?)"
        raise RunError(f"{path}: line {line_no}: not valid JSON: {err.msg}{hint}") from None
    except RecursionError:
        raise RunError(f"{path}: line {line_no}: JSON nested too deeply") from None


def line_at(path: Path, offset: int) -> str:
    """The text of the line starting at byte ``offset`` (a byte-order mark at
    the start of the file and the newline dropped)."""
    with _open(path) as fh:
        fh.seek(offset)
        raw = without_bom(fh.readline(), 1 if offset == 0 else 2).rstrip(b"\r\n")
    return raw.decode("utf-8")
