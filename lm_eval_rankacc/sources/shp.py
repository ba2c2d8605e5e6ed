"""Stanford Human Preferences (SHP; Ethayarajh et al., 2022), hub dataset
``stanfordnlp/SHP`` at the revision pinned in ``HUB`` (a commit that other
public code pins for the dataset), the whole split of all 18 subreddits: one
row per pair of top-level Reddit comments on a post,
``{"post_id", "history", "c_root_id_A", "c_root_id_B", "created_at_utc_A",
"created_at_utc_B", "score_A", "score_B", "human_ref_A", "human_ref_B",
"labels", ...}`` with ``labels`` = 1 when comment A is preferred, 0 when B is.
In both forms ``post_id``, ``history`` and the two ``c_root_id`` must be
non-empty, and a row whose two comments have the same ``c_root_id`` is an
error naming the row and the field.

Option ``form``:

``pairs`` (default): one document per row. prompt = ``history``; responses =
[human_ref_A, human_ref_B]; ranks = [1, 2] if labels = 1, [2, 1] if
labels = 0 (any other label is an error naming the row).
Document id = ``<post_id>/<c_root_id_A>/<c_root_id_B>``. A comment pair listed
again (same post, same two comment ids, in either order) is dropped and
counted; if the copies disagree on the preferred comment, every copy is
dropped and counted (:class:`~lm_eval_rankacc.sources.common.PairLedger`).

``multi``: one document per post (id = ``post_id``) with every distinct
comment that appears in the post's rows. Each row describes its comment A and
comment B completely (``c_root_id``, ``human_ref``, ``score``,
``created_at_utc``); a comment is identified by its ``c_root_id``, and its
text, score and timestamp are taken from the first row that lists it. Every
later row listing the same comment must give the same text, score and
timestamp, and every row of a post the same ``history``: otherwise the row is
an error naming the field and that first row. Comments are kept in order of
first appearance and ranked by the key (score, created_at_utc), descending
(dense ranks; equal keys tied): a higher score is better, and at equal score
the later comment, which had less time to collect votes, is better. ``labels``
is not used. Identical comment texts (merged when their keys are equal, the
post dropped when one text carries two keys), posts left with fewer than two
distinct comments, and posts whose comments are all tied follow
:func:`~lm_eval_rankacc.sources.common.scored_document`; such drops are
counted in rows (every row of the post).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lm_eval_rankacc.core.schema import RowConflict, RowError, get_field, require_str
from lm_eval_rankacc.sources import Conversion, HubDataset, numbered
from lm_eval_rankacc.sources.common import (
    DROP_EMPTY, PairLedger, document, has_empty_response, require_int, scored_document,
)

HUB = HubDataset(path="stanfordnlp/SHP", revision="e94b5f32602712d78ed494fe79105b1959396686")
#: The loader may convert big splits in two passes (see :mod:`lm_eval_rankacc.sources`).
TWO_PASS = True

FORMS = ("pairs", "multi")
SIDES = ("A", "B")


def _post(record: Any, row: int) -> tuple[str, str]:
    post = require_str(get_field(record, row, "post_id"), row, "post_id", allow_empty=False)
    history = require_str(get_field(record, row, "history"), row, "history", allow_empty=False)
    return post, history


def _comment_ids(record: dict, row: int) -> tuple[str, str]:
    ids = tuple(
        require_str(get_field(record, row, f"c_root_id_{s}"), row, f"c_root_id_{s}", allow_empty=False)
        for s in SIDES
    )
    if ids[0] == ids[1]:
        raise RowError(row, "c_root_id_B", f"is the same comment as c_root_id_A ({ids[0]!r})")
    return ids


def _texts(record: dict, row: int) -> tuple[str, str]:
    return tuple(require_str(get_field(record, row, f"human_ref_{s}"), row, f"human_ref_{s}") for s in SIDES)


def _label(record: dict, row: int) -> int:
    value = get_field(record, row, "labels")
    if isinstance(value, bool) or value not in (0, 1):
        raise RowError(row, "labels", f"unknown label {value!r} (expected 1 = A preferred, 0 = B preferred)")
    return int(value)


def convert(rows: Iterable[Any], split: str, form: str = "pairs", **_: Any) -> Conversion:
    if form not in FORMS:
        raise ValueError(f"form must be one of {', '.join(FORMS)}, got {form!r}")
    return pairs(rows) if form == "pairs" else multi(rows)


def pairs(rows: Iterable[Any]) -> Conversion:
    ledger = PairLedger.of(rows)
    for i, record in numbered(rows):
        post, history = _post(record, i)
        ids = _comment_ids(record, i)
        texts = _texts(record, i)
        ranks = [1, 2] if _label(record, i) == 1 else [2, 1]
        if has_empty_response(texts):
            ledger.dropped[DROP_EMPTY] += 1
            continue
        doc = document(ledger.light, f"{post}/{ids[0]}/{ids[1]}", history, list(texts), ranks, row=i)
        # the pair: the post and its two comments in either order; the preference: the preferred comment
        ledger.add((post, *sorted(ids)), ids[ranks.index(1)], doc, i)
    return ledger.into(Conversion.of(rows))


def multi(rows: Iterable[Any]) -> Conversion:
    posts: dict[str, dict[str, Any]] = {}
    for i, record in numbered(rows):
        post_id, history = _post(record, i)
        ids = _comment_ids(record, i)
        texts = _texts(record, i)
        post = posts.setdefault(post_id, {"history": history, "row": i, "rows": [], "comments": {}})
        if history != post["history"]:
            raise RowConflict(i, "history", f"differs from the first row of the same post {post_id!r}", post["row"])
        post["rows"].append(i)
        for side, cid, text in zip(SIDES, ids, texts):
            comment = {
                "text": text,
                "score": require_int(get_field(record, i, f"score_{side}"), i, f"score_{side}"),
                "created_at_utc": require_int(
                    get_field(record, i, f"created_at_utc_{side}"), i, f"created_at_utc_{side}"
                ),
                "row": i,
            }
            first = post["comments"].setdefault(cid, comment)
            for key, field in (("text", "human_ref"), ("score", "score"), ("created_at_utc", "created_at_utc")):
                if comment[key] != first[key]:
                    differs = (
                        "a different text than" if key == "text"
                        else f"{key} {comment[key]!r} here but {first[key]!r}"
                    )
                    raise RowConflict(
                        i, f"{field}_{side}", f"comment {cid!r} has {differs} in its first row", first["row"]
                    )
    out = Conversion.of(rows)
    for post_id, post in posts.items():
        comments = list(post["comments"].values())
        doc, reason = scored_document(
            post_id,
            post["history"],
            [c["text"] for c in comments],
            [(c["score"], c["created_at_utc"]) for c in comments],
            row=post["row"],
            light=out.light,
        )
        if reason is not None:
            out.dropped[f"{reason} (every row of the post)"] += len(post["rows"])
        else:
            out.add(doc, post["row"], members=post["rows"])
    return out
