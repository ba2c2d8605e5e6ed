"""The explorer page of :func:`lm_eval_rankacc.analysis.explore.explore` as one
self-contained HTML file: the CSS and JavaScript beside this module
(``explore.css``, ``explore.js``) inlined, the data embedded in ``<script>`` blocks.

Safety: every text reaches the page as JSON with ``<``, ``>``, ``&``, U+2028
and U+2029 written as ``\\uXXXX`` escapes (:func:`json_block`), in a
``<script type="application/json">`` block or gzip-compressed and
base64-encoded (:func:`packed_block`, an alphabet without ``<``), so no text
can close its block or start a tag; the script sets every text with
``textContent``. Scale: ``#explore-data`` holds runs, tasks and notes,
``#rows-data`` one compact row per document, ``#chunk-K`` the texts and
scores of :data:`CHUNK_SIZE` documents, inflated only when one of them is
opened or searched; the list is shown :data:`PAGE_SIZE` rows at a time.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from html import escape
from importlib import resources
from typing import Any

from lm_eval_rankacc.analysis.explore import Exploration
from lm_eval_rankacc.core import theory

#: Documents per block of texts (parsed on demand).
CHUNK_SIZE = 500
#: Rows of the list shown at a time.
PAGE_SIZE = 100

_UNSAFE = re.compile("[<>&\u2028\u2029\ud800-\udfff]")


def json_block(value: Any) -> str:
    """``value`` as JSON safe inside a ``<script>`` block: ``<``, ``>``, ``&``,
    U+2028/2029 and lone surrogates written as ``\\uXXXX`` escapes.

    Examples:
        >>> json_block({"a": "</script><b>&"})
        '{"a": "\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e\\\\u0026"}'
    """
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _bit(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _compact(row: dict[str, Any], tasks: dict[str, int]) -> list:
    """The list's fields of one row (the order :file:`explore.js` reads)."""
    runs = row["runs"]
    categories = [None if c is None else theory.CATEGORIES.index(c) for c in row["flips"]]
    ideal = row["ideal"]
    ideal = None if ideal is None else [_bit(ideal["correct"]), ideal["c"], ideal["threshold"],
                                        int(ideal["could_flip"])]
    return [tasks[row["task"]], row["id"], row["first_line"], row["n"], int(row["tie"]), row["alpha"], row["length"],
            [_bit(r["R"]) for r in runs], [_bit(r["R_norm"]) for r in runs], [r["margin"] for r in runs],
            categories, ideal, row["ranks"]]


def _details(ex: Exploration, k: int) -> dict[str, Any]:
    """Texts and per-response scores of row ``k``: what the document view shows."""
    row = ex.rows[k]
    keys = ("loglik", "n_tokens", "n_bytes", "per_token", "per_byte", "model_ranks")
    texts = ex.texts(k)
    if texts["turns"]:  # a transcript: its turns hold the prompt's text once
        texts["prompt"] = ""
    scores = [{key: r[key] for key in keys} for r in row["runs"]]
    for run in scores:  # shown to 4 decimals: 6 significant digits keep the page small
        for key in ("per_token", "per_byte"):
            run[key] = [None if v is None else float(f"{v:.6g}") for v in run[key]]
    return {**texts, "ranks": row["ranks"], "votes": row["votes"]}, scores


def packed_block(value: Any) -> str:
    """``value`` as :func:`json_block`, gzip-compressed and base64-encoded
    (an alphabet without ``<``, ``>`` or ``&``); the page inflates it with
    the browser's ``DecompressionStream``.

    Examples:
        >>> import base64, gzip, json
        >>> json.loads(gzip.decompress(base64.b64decode(packed_block(["</script>"]))))
        ['</script>']
    """
    return base64.b64encode(gzip.compress(json_block(value).encode("utf-8"), 9, mtime=0)).decode("ascii")


def _asset(name: str) -> str:
    return resources.files("lm_eval_rankacc.report").joinpath(name).read_text(encoding="utf-8")


def page_data(ex: Exploration, chunk_size: int = CHUNK_SIZE) -> tuple[dict[str, Any], list[list]]:
    """The JSON of ``#explore-data`` (runs, compared pairs, tasks, notes) and of ``#rows`` (one compact row
    per document)."""
    tasks = {t: i for i, t in enumerate(dict.fromkeys(r["task"] for r in ex.rows))}
    return ({"title": ex.title, "runs": ex.runs, "compared": ex.compared, "reference": ex.reference,
             "beta": ex.beta, "tasks": list(tasks), "categories": list(theory.CATEGORIES), "notes": ex.notes,
             "page_size": PAGE_SIZE, "chunk_size": chunk_size}, [_compact(r, tasks) for r in ex.rows])


def render_explore(ex: Exploration, chunk_size: int = CHUNK_SIZE) -> str:
    """The explorer page of ``ex``, one self-contained HTML document (texts in blocks of ``chunk_size``)."""
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{escape(ex.title)}</title>", f"<style>{_asset('explore.css')}</style>", "</head>", "<body>",
           '<h1 id="title"></h1>',
           '<p class="hint">Filter and sort the documents; click a row (or press j / k, Escape) to read it; '
           'a link to a document is <code>#doc=ID</code>.</p>',
           '<div id="controls"></div>', '<div id="counts"></div>', '<div id="main">',
           '<div id="list"><div id="pager"><button id="prev" type="button">previous page</button> '
           '<span id="page-info"></span> <button id="next" type="button">next page</button></div>',
           '<table><thead><tr id="head"></tr></thead><tbody id="rows"></tbody></table></div>',
           '<div id="detail"></div>', "</div>", "<h2>Notes</h2>", '<ul class="notes" id="notes"></ul>']
    meta, rows = page_data(ex, chunk_size)
    out += [f'<script type="application/json" id="explore-data">{json_block(meta)}</script>',
            f'<script type="application/gzip+base64" id="rows-data">{packed_block(rows)}</script>']
    for start in range(0, len(ex.rows), chunk_size):
        texts, scores = zip(*(_details(ex, k) for k in range(start, min(start + chunk_size, len(ex.rows)))))
        out.append(f'<script type="application/gzip+base64" id="chunk-{start // chunk_size}">'
                   f'{packed_block({"texts": texts, "scores": scores})}</script>')
    out += [f"<script>{_asset('explore.js')}</script>", "</body>", "</html>"]
    return "\n".join(out) + "\n"
