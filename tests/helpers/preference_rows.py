"""Hand-written rows in the exact hub schema of each preference dataset added
with the multi-response tasks (GPT-J pairwise, SHP, Stack Exchange,
UltraFeedback), with ties, listed-again and swapped pairs, and the fake
per-response log-likelihoods the tests score them with.

``write_mirror(root)`` lays them out for ``RANKACC_DATA_DIR``
(``<root>/<source>/<split>.jsonl``), so every new ``rankacc_*`` task runs offline.
Test data only: written into temporary folders by the tests, never committed.
"""

from __future__ import annotations

import json
from pathlib import Path

# ------------------------------------------------------------------ GPT-J pairwise
GPTJ = [
    {"prompt": "Name a fruit.", "chosen": "An apple.", "rejected": "A chair."},
    {"prompt": "Say hi.", "chosen": "Hi!", "rejected": "Hi!"},  # identical responses: kept
    {"prompt": "Name a fruit.", "chosen": "An apple.", "rejected": "A chair."},  # listed again: dropped
    {"prompt": "Count to two.", "chosen": "1, 2", "rejected": "2, 1"},
    {"prompt": "Count to two.", "chosen": "2, 1", "rejected": "1, 2"},  # swapped and contradicting: both dropped
    {"prompt": "Name a colour.", "chosen": "Blue.", "rejected": "Seven."},
]


# ------------------------------------------------------------------ SHP
def shp_row(post, a, b, labels, *, history=None, text_a=None, text_b=None):
    """One SHP row; ``a`` / ``b`` are (comment id, score, created_at_utc)."""
    (ida, sa, ta), (idb, sb, tb) = a, b
    return {
        "post_id": post,
        "domain": "askscience_test",
        "upvote_ratio": 0.97,
        "history": history if history is not None else f"Post {post}: why is the sky blue?",
        "c_root_id_A": ida,
        "c_root_id_B": idb,
        "created_at_utc_A": ta,
        "created_at_utc_B": tb,
        "score_A": sa,
        "score_B": sb,
        "human_ref_A": text_a if text_a is not None else f"Comment {ida}.",
        "human_ref_B": text_b if text_b is not None else f"Comment {idb}.",
        "labels": labels,
        "seconds_difference": float(abs(ta - tb)),
        "score_ratio": max(sa, sb) / max(1, min(sa, sb)),
    }


C1, C2, C3, C4 = ("c1", 10, 1_600_000_200), ("c2", 4, 1_600_000_100), ("c3", 2, 1_600_000_300), ("c4", 4, 1_600_000_100)
D1, D2 = ("d1", 5, 1_600_000_050), ("d2", 5, 1_600_000_050)
E1, E2 = ("e1", 9, 1_600_000_010), ("e2", 3, 1_600_000_020)
SHP = [
    shp_row("p1", C1, C2, 1),
    shp_row("p1", C3, C1, 0),
    shp_row("p1", C2, C1, 0),  # row 0 swapped, same preference: dropped in the pairs form
    shp_row("p1", C4, C3, 1),  # c4 has c2's (score, time): tied with it in the multi form
    shp_row("p2", D1, D2, 1),  # equal (score, time): the multi form drops the post
    shp_row("p3", E1, E2, 1, text_a="Same words.", text_b="Same words."),  # one text, two scores
]

# ------------------------------------------------------------------ Stack Exchange
def se_answer(answer_id, text, pm_score, selected=False):
    return {
        "answer_id": answer_id,
        "author": f"user{answer_id}",
        "author_id": answer_id * 10,
        "author_profile": f"https://cs.stackexchange.com/users/{answer_id * 10}",
        "pm_score": pm_score,
        "selected": selected,
        "text": text,
    }


def se_row(qid, question, answers):
    return {
        "qid": qid,
        "question": question,
        "answers": answers,
        "date": "2015/01/01",
        "metadata": [f"https://cs.stackexchange.com/questions/{qid}"],
    }


STACK_EXCHANGE = [
    se_row(1, "<p>How do I sort a list?</p>", [
        se_answer(11, "<p>Use sorted().</p>", 5, True),
        se_answer(12, "<p>Use a loop.</p>", 2),
        se_answer(13, "<p>Use list.sort().</p>", 5),
        se_answer(14, "<p>No idea.</p>", 0),
    ]),
    se_row(2, "<p>What is a heap?</p>", [se_answer(21, "<p>A tree.</p>", 3)]),  # one answer: dropped
    se_row(3, "<p>Is P = NP?</p>", [se_answer(31, "<p>Yes.</p>", 3), se_answer(32, "<p>No.</p>", 3)]),  # tied: dropped
    se_row(4, "<p>What is O(1)?</p>", [  # the same text twice with the same score: one response
        se_answer(41, "<p>Constant time.</p>", 4),
        se_answer(42, "<p>Constant time.</p>", 4),
        se_answer(43, "<p>Fast.</p>", 1),
    ]),
]


# ------------------------------------------------------------------ UltraFeedback
def uf_completion(model, response, overall_score):
    rating = {"Rating": "4", "Rationale": "Fine."}
    return {
        "annotations": {
            "helpfulness": {**rating, "Rationale For Rating": "Helpful.", "Type": ["1", "2"]},
            "honesty": rating,
            "instruction_following": rating,
            "truthfulness": {**rating, "Rationale For Rating": "True.", "Type": ["0"]},
        },
        "critique": "Could be better.",
        "custom_system_prompt": "You are a helpful assistant.",
        "fine-grained_score": 4.0,
        "model": model,
        "overall_score": overall_score,
        "principle": "helpfulness",
        "response": response,
    }


def uf_row(instruction, scored, source="evol_instruct"):
    models = [f"model-{i}" for i in range(len(scored))]
    return {
        "source": source,
        "instruction": instruction,
        "models": models,
        "completions": [uf_completion(m, r, s) for m, (r, s) in zip(models, scored)],
        "correct_answers": ["None"],
        "incorrect_answers": ["None"],
    }


ULTRAFEEDBACK = [
    uf_row("Write a haiku about rain.", [("Rain taps the roof.", 8.5), ("Rain.", 6.0), ("Soft rain falls at dusk.", 8.5), ("I like cats.", 3.0)]),
    uf_row("Say yes.", [("Yes.", 7.0), ("Yes!", 7.0), ("Yes, sure.", 7.0), ("Yep.", 7.0)]),  # all tied: dropped
    uf_row("Say no.", [("No.", 9.0), ("No.", 2.0), ("Nope.", 5.0), ("Never.", 4.0)]),  # one text, two scores: dropped
    uf_row("Count to three.", [("1, 2, 3.", 9.0), ("1, 2.", 7.0), ("3, 2, 1.", 5.0), ("Banana.", 1.0)]),
]

#: The fake model: a log-likelihood per response text (tests pass n_tokens = word count).
LOGLIK = {
    "An apple.": -3.0, "A chair.": -5.0, "Hi!": -1.0, "Blue.": -4.0, "Seven.": -2.0,
    "Comment c1.": -2.0, "Comment c2.": -6.0, "Comment c3.": -4.0, "Comment c4.": -5.0,
    "Comment d1.": -1.0, "Comment d2.": -1.0, "Same words.": -3.0,
    "<p>Use sorted().</p>": -1.0, "<p>Use a loop.</p>": -3.0, "<p>Use list.sort().</p>": -2.0,
    "<p>No idea.</p>": -0.5, "<p>Constant time.</p>": -2.0, "<p>Fast.</p>": -1.0,
    "Rain taps the roof.": -6.0, "Rain.": -2.0, "Soft rain falls at dusk.": -7.0, "I like cats.": -9.0,
    "1, 2, 3.": -3.0, "1, 2.": -3.5, "3, 2, 1.": -4.0, "Banana.": -8.0,
}

#: source -> (split, rows) of the offline mirror.
MIRROR = {
    "gptj_pairwise": ("train", GPTJ),
    "shp": ("test", SHP),
    "stack_exchange": ("train", STACK_EXCHANGE),
    "ultrafeedback": ("train", ULTRAFEEDBACK),
}
#: Documents each task holds with the mirror.
MIRROR_DOCS = {
    "rankacc_gptj_pairwise_train": 3,
    "rankacc_shp_test": 5,
    "rankacc_shp_multi_test": 1,
    "rankacc_stack_exchange_train": 2,
    "rankacc_ultrafeedback_train": 2,
}


def write_jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_mirror(root: Path) -> Path:
    """``RANKACC_DATA_DIR`` layout of the rows above under ``root``."""
    for source, (split, rows) in MIRROR.items():
        write_jsonl(Path(root) / source / f"{split}.jsonl", rows)
    return Path(root)
